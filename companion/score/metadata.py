"""Title and composer of a score, from the file's own metadata where it has any, else from its path."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from companion.score.model import PieceMeta

log = logging.getLogger(__name__)

_MEI_NS = "{http://www.music-encoding.org/ns/mei}"
#: file stems that say nothing about the piece (ASAP's ``xml_score``, exported ``score``...)
_GENERIC_STEMS = {"xml_score", "score", "midi_score", "musicxml", "piece"}


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def read_metadata(path: Path, tk, sha256: str) -> PieceMeta:
    """Best-effort title and composer for a score loaded in verovio toolkit ``tk``."""
    title = composer = ""
    try:
        root = ET.fromstring(tk.getMEI({"removeIds": False}))
        head = root.find(f"{_MEI_NS}meiHead")
        if head is not None:
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
    except Exception as exc:  # metadata is optional; never fail a load for it
        log.debug("no MEI header for %s: %s", path, exc)
    return PieceMeta(
        source=str(path),
        title=title or title_from_path(path),
        composer=composer or composer_from_path(path),
        sha256=sha256,
    )


def title_from_path(path: Path) -> str:
    """``.../Chopin/Etudes_op_10/3/xml_score.mxl`` -> ``Etudes op 10 3``; ``k545.mxl`` -> ``k545``."""
    parts = [path.stem]
    if path.stem.lower() in _GENERIC_STEMS:
        parts = [path.parent.parent.name, path.parent.name]
    return re.sub(r"[_]+", " ", " ".join(p for p in parts if p)).strip()


def composer_from_path(path: Path) -> str:
    """A folder named like a composer (a capitalised word) two or three levels up, else ``""``."""
    if path.stem.lower() in _GENERIC_STEMS:
        for anc in (path.parents[2], path.parents[3]) if len(path.parents) > 3 else ():
            if re.fullmatch(r"[A-Z][a-z]+", anc.name):
                return anc.name
    return ""
