"""Checks that run before a file reaches verovio.

Verovio (6.4.1) is a native library and does not survive all bad input: on this machine a truncated
``.mxl`` or a file with a zip signature and garbage after it aborts the process (``SIGABRT`` in its
unzip code), and an ABC file with an ``X:`` line but no ``K:`` line crashes it (``SIGSEGV``). It also
reads truncated MusicXML leniently, returning the first part of the piece without a word. These checks
turn all of that into a :class:`~companion.score.model.ScoreError` with the reason, in Python.

:func:`check_score_file` returns the parsed MusicXML root element where the file is MusicXML, so the
metadata reader can use the file's own ``work-title``/``creator``/``credit`` elements.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from companion.score.model import ScoreError

__all__ = ["check_score_file", "MUSICXML_ROOTS"]

MUSICXML_ROOTS = ("score-partwise", "score-timewise")
_CONTAINER = "META-INF/container.xml"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(data: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ScoreError(f"{what} is not well-formed XML ({exc})") from None


def _check_musicxml_root(root: ET.Element, what: str) -> ET.Element:
    tag = _local(root.tag)
    if tag not in MUSICXML_ROOTS:
        raise ScoreError(f"{what} is XML but not MusicXML (root element <{tag}>)")
    if root.find(".//part") is None:
        raise ScoreError(f"{what} has no <part>: the score is empty")
    return root


def _check_mxl(p: Path) -> ET.Element:
    if not zipfile.is_zipfile(p):
        raise ScoreError("not a compressed MusicXML file (not a zip archive)")
    try:
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
            if bad is not None:
                raise ScoreError(f"the archive is corrupt (bad member {bad!r})")
            names = z.namelist()
            root_name = None
            if _CONTAINER in names:
                container = _parse_xml(z.read(_CONTAINER), _CONTAINER)
                for el in container.iter():
                    if _local(el.tag) == "rootfile" and el.get("full-path"):
                        root_name = el.get("full-path")
                        break
            if root_name is None:
                cands = [n for n in names if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))]
                if not cands:
                    raise ScoreError("the archive holds no MusicXML file")
                root_name = cands[0]
            if root_name not in names:
                raise ScoreError(f"the archive's container names {root_name!r}, which it does not hold")
            data = z.read(root_name)
    except ScoreError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise ScoreError(f"the archive is corrupt ({exc})") from None
    return _check_musicxml_root(_parse_xml(data, root_name), root_name)


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    if b"\x00" in data[:4096]:
        raise ScoreError("binary data in a text score format")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _check_abc(p: Path) -> None:
    text = _read_text(p)
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        x = next(i for i, ln in enumerate(lines) if re.match(r"X:\s*\d", ln))
    except StopIteration:
        raise ScoreError("not an ABC tune (no 'X:' reference line)") from None
    k = next((i for i, ln in enumerate(lines[x:], x) if ln.startswith("K:")), None)
    if k is None:
        raise ScoreError("ABC tune without a 'K:' (key) line after its 'X:' line")
    body = [ln for ln in lines[k + 1:] if ln and not ln.startswith("%")]
    if not body or re.match(r"X:", body[0]):
        raise ScoreError("ABC tune without a body (no music after its 'K:' line)")
    n_tunes = sum(1 for ln in lines if re.match(r"X:\s*\d", ln))
    if n_tunes > 1:  # verovio would silently read the first tune only
        raise ScoreError(f"an ABC tune collection ({n_tunes} tunes); give one tune per file")


def _check_kern(p: Path) -> None:
    text = _read_text(p)
    if not re.search(r"^\*\*\w+", text, flags=re.M):
        raise ScoreError("not a Humdrum file (no '**kern'-style exclusive interpretation line)")


def check_score_file(p: Path) -> ET.Element | None:
    """Validate a notated score file before verovio reads it.

    Parameters
    ----------
    p : Path
        An existing file with a notated suffix (``.musicxml .xml .mxl .mei .krn .abc``).

    Returns
    -------
    xml.etree.ElementTree.Element or None
        The MusicXML root element (``.musicxml``, ``.xml``, ``.mxl``), else ``None``.

    Raises
    ------
    ScoreError
        With the reason (without the path) when the file is empty, corrupt or not of its type.
    """
    suffix = p.suffix.lower()
    try:
        if p.stat().st_size == 0:
            raise ScoreError("empty file")
        if suffix == ".mxl":
            return _check_mxl(p)
        if suffix in (".musicxml", ".xml"):
            root = _parse_xml(p.read_bytes(), "the file")
            if _local(root.tag) == "mei":
                return None  # MEI saved as .xml: verovio reads it
            return _check_musicxml_root(root, "the file")
        if suffix == ".mei":
            root = _parse_xml(p.read_bytes(), "the file")
            if _local(root.tag) not in ("mei", "meiCorpus", "music"):
                raise ScoreError(f"the file is XML but not MEI (root element <{_local(root.tag)}>)")
            return None
        if suffix == ".abc":
            _check_abc(p)
        elif suffix == ".krn":
            _check_kern(p)
    except OSError as exc:
        raise ScoreError(f"cannot read ({exc.strerror or exc})") from None
    return None
