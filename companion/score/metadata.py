"""Title and composer of a score, from the file's own metadata where it has any, else from its path.

Sources, in order:

1. MusicXML: ``work/work-title`` (+ ``movement-title``), ``identification/creator[@type=composer]``;
   else the page-1 ``credit``s: ``credit-type`` where present, otherwise the largest centred credit is
   the title (the next centred one a subtitle) and a right-justified one the composer (life dates
   dropped).
2. MEI (verovio's export, which also carries Humdrum ``!!!OTL``/``!!!COM`` and ABC ``T:``/``C:``):
   ``meiHead`` ``title`` and ``persName[@role=composer]``/``composer``.
3. The path: music21's corpus (``mozart/k545/movement1_exposition.mxl`` -> "k545 movement1
   exposition", composer "Mozart"), ASAP-style folders (``Chopin/Etudes_op_10/3/xml_score.mxl`` ->
   "Etudes op 10 3", composer "Chopin"), else the file name.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from companion.score.model import PieceMeta

__all__ = ["read_metadata", "musicxml_metadata", "mei_metadata", "title_from_path", "composer_from_path"]

log = logging.getLogger(__name__)

_MEI_NS = "{http://www.music-encoding.org/ns/mei}"
#: file stems that say nothing about the piece (ASAP's ``xml_score``, exported ``score``...)
_GENERIC_STEMS = {"xml_score", "score", "midi_score", "musicxml", "piece", "main"}
_LIFE_DATES = re.compile(r"\s*[\(\[]?\s*(c\.\s*)?\d{4}\s*[-–—]\s*\d{4}\s*[\)\]]?\s*$")


_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _fix_mojibake(text: str) -> str:
    """Undo UTF-8 that was once decoded as Korean CP949 (``"Fr챕d챕ric"`` -> ``"Frédéric"``).

    Some MuseScore files in the wild (several of ASAP's Chopin scores) carry such titles. The repair
    is applied only where it round-trips exactly, so real Korean text stays as it is.
    """
    if not _HANGUL.search(text):
        return text
    try:
        fixed = text.encode("cp949").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    return fixed if not _HANGUL.search(fixed) else text


def _text(el) -> str:
    return _fix_mojibake(" ".join("".join(el.itertext()).split())) if el is not None else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _float(s: str | None, default: float = 0.0) -> float:
    try:
        return float(s) if s is not None else default
    except ValueError:
        return default


def musicxml_metadata(root: ET.Element) -> tuple[str, str]:
    """``(title, composer)`` from a MusicXML root element (either may be ``""``)."""
    work_title = _text(root.find("work/work-title"))
    movement = _text(root.find("movement-title"))
    if work_title and movement and movement != work_title:
        title = f"{work_title}: {movement}"
    else:
        title = work_title or movement
    composer = ""
    for c in root.iterfind("identification/creator"):
        if c.get("type", "composer") == "composer" and _text(c):
            composer = _text(c)
            break
    if title and composer:
        return title, _clean_person(composer)

    # credits on the first page
    typed: dict[str, str] = {}
    centred: list[tuple[float, float, str]] = []  # (-font size, -y, text)
    right: list[str] = []
    for credit in root.iterfind("credit"):
        if credit.get("page", "1") != "1":
            continue
        ctype = _text(credit.find("credit-type")).lower()
        words = [w for w in credit.iterfind("credit-words") if _text(w)]
        if not words:
            continue
        first = words[0]
        text = _text(first)
        if ctype:
            typed.setdefault(ctype, text)
            continue
        just = first.get("justify") or first.get("halign") or ""
        if just == "center":
            centred.append((-_float(first.get("font-size"), 12.0), -_float(first.get("default-y")), text))
        elif just == "right" and not text.isdigit():
            right.append(text)
    if not title:
        title = typed.get("title", "")
        if not title and centred:
            centred.sort()
            title = centred[0][2]
            sub = [t for size, _, t in centred[1:] if size == centred[0][0] or size < -12.5]
            if typed.get("subtitle"):
                title = f"{title}: {typed['subtitle']}"
            elif sub and sub[0] not in title:
                title = f"{title}: {sub[0]}"
    if not composer:
        composer = typed.get("composer", "") or (right[0] if right else "")
    return title, _clean_person(composer)


def _clean_person(name: str) -> str:
    """``"Johann Sebastian Bach (1685 - 1750)"`` -> ``"Johann Sebastian Bach"``."""
    return _LIFE_DATES.sub("", name).strip(" ,;")


def mei_metadata(root: ET.Element) -> tuple[str, str]:
    """``(title, composer)`` from an MEI root element's ``meiHead`` (either may be ``""``)."""
    title = composer = ""
    head = root.find(f"{_MEI_NS}meiHead")
    if head is None:
        return "", ""
    for t in head.iter(f"{_MEI_NS}title"):
        if _text(t):
            title = _text(t)
            break
    for pers in head.iter(f"{_MEI_NS}persName"):
        if pers.get("role", "composer") == "composer" and _text(pers):
            composer = _text(pers)
            break
    if not composer:
        for c in head.iter(f"{_MEI_NS}composer"):
            if _text(c):
                composer = _text(c)
                break
    return title, _clean_person(composer)


def read_metadata(
    path: Path,
    sha256: str,
    *,
    musicxml_root: ET.Element | None = None,
    mei_root: ET.Element | None = None,
) -> PieceMeta:
    """Best-effort title and composer for the score at ``path``; never raises.

    Parameters
    ----------
    path : Path
        The score file (absolute).
    sha256 : str
        Its hash (stored in the result).
    musicxml_root, mei_root : Element, optional
        The parsed MusicXML file and/or verovio's MEI export of it.
    """
    title = composer = ""
    for root, reader in ((musicxml_root, musicxml_metadata), (mei_root, mei_metadata)):
        if root is None:
            continue
        try:
            t, c = reader(root)
        except Exception as exc:  # metadata is optional; never fail a load for it
            log.debug("metadata of %s: %s", path, exc)
            continue
        title = title or t
        composer = composer or c
    return PieceMeta(
        source=str(path),
        title=title or title_from_path(path),
        composer=composer or composer_from_path(path),
        sha256=sha256,
    )


def _corpus_parts(path: Path) -> list[str] | None:
    """Folders and stem below music21's ``corpus`` folder, or ``None`` when not in it."""
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "corpus" and parts[i - 1] == "music21":
            return list(parts[i + 1:-1]) + [path.stem]
    return None


def _words(s: str) -> str:
    return re.sub(r"[_]+", " ", s).strip()


def title_from_path(path: Path) -> str:
    """``.../Chopin/Etudes_op_10/3/xml_score.mxl`` -> ``Etudes op 10 3``; ``k545.mxl`` -> ``k545``;
    music21's ``mozart/k545/movement1_exposition.mxl`` -> ``k545 movement1 exposition``."""
    corpus = _corpus_parts(path)
    if corpus is not None and len(corpus) > 1:
        return _words(" ".join(corpus[1:]))
    parts = [path.stem]
    if path.stem.lower() in _GENERIC_STEMS:
        parts = [path.parent.parent.name, path.parent.name]
    return _words(" ".join(p for p in parts if p))


def composer_from_path(path: Path) -> str:
    """The composer folder of music21's corpus (``mozart`` -> ``Mozart``, ``schumann_clara`` ->
    ``Clara Schumann``), else a folder named like a composer (a capitalised word) two or three levels
    above a generic file name, else ``""``."""
    corpus = _corpus_parts(path)
    if corpus is not None and len(corpus) > 1:
        words = corpus[0].split("_")
        if len(words) == 2:  # music21 names some folders surname_firstname
            words = words[::-1]
        return " ".join(w.capitalize() for w in words)
    if path.stem.lower() in _GENERIC_STEMS and len(path.parents) > 3:
        for anc in (path.parents[2], path.parents[3]):
            if re.fullmatch(r"[A-Z][a-z]+", anc.name):
                return anc.name
    return ""
