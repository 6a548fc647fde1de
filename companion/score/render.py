"""Render a score's pages with verovio, and read its page/system/bar layout (no Qt here).

Verovio lays the score out into pages whose size follows the window (:meth:`ScoreRenderer.relayout`).
Each page is an SVG string; :func:`qt_svg` rewrites it so that QtSvg can draw it (QtSvg implements
SVG Tiny 1.2 and draws verovio's nested ``<svg class="definition-scale">`` blank; with
``svgViewBox: True`` that inner ``<svg>`` is replaced by an equivalent ``<g transform="scale(...)">``).

Ids are stable and equal to the score model's: the toolkit loads the file with
:data:`companion.score.load.VEROVIO_OPTIONS` (``xmlIdSeed``), the same options :func:`load_score` uses,
so ``Piece.bars["measure_id"]`` and ``Piece.notes["note_id"]`` name elements of the rendered SVG.

Pages are numbered from 0 here (verovio counts from 1). Pages are rendered lazily and cached; a
layout change drops the cache.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from companion.score.load import VEROVIO_OPTIONS
from companion.score.model import ScoreError

__all__ = ["PageGeometry", "ScoreRenderer", "qt_svg", "svg_systems"]

log = logging.getLogger(__name__)

_OUTER_VIEWBOX = re.compile(r'<svg\b[^>]*?\bviewBox="0 0 ([\d.]+) ([\d.]+)"')
_INNER_SVG = re.compile(r'<svg\b([^>]*?)\bclass="definition-scale"([^>]*?)\bviewBox="0 0 ([\d.]+) ([\d.]+)"([^>]*)>')
_TEXT = re.compile(r"<text\b([^>]*)(?<!/)>(.*?)</text>", re.S)  # not self-closing <text/>
_TEXT_TOKEN = re.compile(r"<tspan\b([^>]*)>|</tspan>|[^<]+")
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_SYSTEM_OR_MEASURE = re.compile(r'<g\b[^>]*?\bid="([^"]+)"[^>]*?\bclass="(system|measure)\b[^"]*"')


def qt_svg(svg: str) -> str:
    """Make a verovio page (rendered with ``svgViewBox: True``) drawable by QtSvg.

    The nested ``<svg class="definition-scale" viewBox="0 0 W H">`` becomes
    ``<g class="definition-scale" transform="scale(w/W, h/H)">`` where ``w h`` is the outer viewBox,
    and its closing tag (the second-last ``</svg>``) becomes ``</g>``. Other attributes (colour, font)
    are kept. A string without a nested svg is returned unchanged.

    Parameters
    ----------
    svg : str
        One page as verovio's ``renderToSVG`` returns it.

    Returns
    -------
    str
    """
    outer = _OUTER_VIEWBOX.search(svg)
    inner = _INNER_SVG.search(svg, outer.end() if outer else 0)
    if outer is None or inner is None:
        return svg
    sx = float(outer.group(1)) / float(inner.group(3))
    sy = float(outer.group(2)) / float(inner.group(4))
    attrs = " ".join(a.strip() for a in (inner.group(1), inner.group(2), inner.group(5)) if a.strip())
    g_open = f'<g class="definition-scale" {attrs} transform="scale({sx:.8g},{sy:.8g})">'
    head, tail = svg[: inner.start()], svg[inner.end():]
    close = tail.rfind("</svg>", 0, tail.rfind("</svg>"))
    if close < 0:
        return svg
    return _flatten_tspans(head + g_open + tail[:close] + "</g>" + tail[close + len("</svg>"):])


def _flatten_text(m: re.Match) -> str:
    """One ``<text>`` element with its nested ``<tspan>``s replaced by leaf spans (ancestors' attributes
    inherited, the innermost winning; ancestors' ids dropped so that ids stay unique)."""
    inner = m.group(2)
    if "<tspan" not in inner:
        return m.group(0)
    out: list[str] = []
    stack: list[dict[str, str]] = []
    for tok in _TEXT_TOKEN.finditer(inner):
        if tok.group(1) is not None:  # <tspan ...>
            stack.append(dict(_ATTR.findall(tok.group(1))))
        elif tok.group(0) == "</tspan>":
            if stack:
                stack.pop()
        elif tok.group(0).strip():
            attrs: dict[str, str] = {}
            for level, a in enumerate(stack):
                attrs.update({k: v for k, v in a.items() if k != "id" or level == len(stack) - 1})
            text = tok.group(0)
            if "Leipzig" in attrs.get("font-family", "") or "Bravura" in attrs.get("font-family", ""):
                text, attrs = _smufl_as_text(text, attrs)
                if not text:
                    continue
            joined = " ".join(f'{k}="{v}"' for k, v in attrs.items())
            out.append(f"<tspan {joined}>{text}</tspan>" if attrs else text)
    return f"<text{m.group(1)}>{''.join(out)}</text>"


#: SMuFL dynamics (U+E520..E526) as the letters they draw; QtSvg has no music font for the glyphs
_SMUFL_DYNAMICS = {"\ue520": "p", "\ue521": "m", "\ue522": "f", "\ue523": "r", "\ue524": "s", "\ue525": "z",
                   "\ue526": "n"}


def _smufl_as_text(text: str, attrs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Text in verovio's music font, for QtSvg: dynamics become bold italic serif letters, other music
    glyphs are left out (they would be drawn as empty boxes)."""
    letters = "".join(_SMUFL_DYNAMICS.get(c, "") for c in text if c in _SMUFL_DYNAMICS or not c.isspace())
    if not letters or len(letters) != len(text.strip()):
        return "", attrs
    size = re.match(r"([\d.]+)px", attrs.get("font-size", ""))
    out = {k: v for k, v in attrs.items() if k not in ("font-family", "font-style", "letter-spacing", "font-size")}
    out.update({"font-family": "Times, serif", "font-style": "italic", "font-weight": "bold"})
    if size:
        out["font-size"] = f"{float(size.group(1)) * 0.6:.0f}px"
    return letters, out


def _flatten_tspans(svg: str) -> str:
    """Flatten nested ``<tspan>`` elements: QtSvg rejects a tspan inside a tspan ("Could not add child
    element"), drops the text, and the bounds of elements after it come out empty."""
    return _TEXT.sub(_flatten_text, svg)


def svg_systems(svg: str) -> list[list[str]]:
    """Measure ids of each system of one page, top to bottom, in document order.

    Parameters
    ----------
    svg : str
        A verovio page.

    Returns
    -------
    list of list of str
        ``systems[i]`` holds the ids of the ``<g class="measure">`` elements of the page's i-th system.
    """
    systems: list[list[str]] = []
    for m in _SYSTEM_OR_MEASURE.finditer(svg):
        if m.group(2) == "system":
            systems.append([])
        elif systems:
            systems[-1].append(m.group(1))
    return systems


@dataclass(frozen=True)
class PageGeometry:
    """Verovio page size and zoom, derived from the pixel size of one page slot of the window.

    Parameters
    ----------
    width_px, height_px : int
        Pixel size of one page slot.
    zoom : float
        Verovio ``scale`` in percent; the page's SVG is ``page_width * zoom / 100`` px wide, so a page
        of ``width_px * 100 / zoom`` verovio units fills the slot at one SVG unit per pixel.
    """

    width_px: int
    height_px: int
    zoom: float = 40.0

    def options(self) -> dict:
        """Verovio options for this geometry (page size clamped to verovio's accepted range)."""
        k = 100.0 / max(self.zoom, 1.0)
        return {
            "pageWidth": int(min(max(self.width_px * k, 100), 60000)),
            "pageHeight": int(min(max(self.height_px * k, 100), 60000)),
            "scale": int(round(self.zoom)),
            "svgViewBox": True,
            "adjustPageHeight": False,
            "pageMarginTop": 40,
            "pageMarginBottom": 40,
            "pageMarginLeft": 40,
            "pageMarginRight": 40,
            "header": "none",  # the window shows title and composer; QtSvg misplaces anchored header text
            "footer": "none",
            "breaks": "auto",
        }


class ScoreRenderer:
    """A score loaded into verovio, laid out into pages, with lazily rendered page SVGs.

    Parameters
    ----------
    source : str or PathLike
        A score file verovio reads (``.musicxml .xml .mxl .mei .krn .abc``).
    geometry : PageGeometry
        Initial page size and zoom.
    validate : bool
        Check the file before verovio reads it (:func:`companion.score.validate.check_score_file`;
        verovio aborts the process on some broken files). Pieces from a database were checked when
        it was built, so the GUI skips this for them.

    Raises
    ------
    ScoreError
        When the file is missing or verovio cannot read it.
    """

    def __init__(self, source: str | os.PathLike, *, geometry: PageGeometry, validate: bool = True) -> None:
        import verovio

        verovio.enableLog(verovio.LOG_OFF)
        from companion.score.load import NOTATED_SUFFIXES
        from companion.score.validate import check_score_file

        path = Path(source).expanduser()
        if not path.is_file():
            raise ScoreError(f"{path}: no such file")
        if path.suffix.lower() not in NOTATED_SUFFIXES:
            raise ScoreError(f"{path.name}: a {path.suffix} file has no notation to show "
                             f"(the companion can still follow it; bars are shown in the status bar)")
        try:
            if validate:
                check_score_file(path)  # verovio aborts on some broken files: keep those away from it
        except ScoreError as exc:
            raise ScoreError(f"{path}: {exc}") from None
        self.source = str(path)
        self.geometry = geometry
        self._tk = verovio.toolkit()
        self._tk.setOptions({**VEROVIO_OPTIONS, **geometry.options()})
        try:
            ok = self._tk.loadFile(str(path))
        except Exception as exc:  # verovio raises on some malformed input
            raise ScoreError(f"{path}: verovio could not read it ({exc})") from exc
        if not ok or self._tk.getPageCount() < 1:
            raise ScoreError(f"{path}: verovio could not render it (corrupt or not a notated score)")
        self._svg: dict[int, str] = {}
        self._systems: dict[int, list[list[str]]] = {}
        self._page_of: dict[str, int] = {}

    @property
    def n_pages(self) -> int:
        return int(self._tk.getPageCount())

    def relayout(self, geometry: PageGeometry) -> bool:
        """Lay the score out again for a new page size or zoom; returns False when nothing changed."""
        if geometry == self.geometry:
            return False
        self.geometry = geometry
        self._tk.setOptions(geometry.options())
        self._tk.redoLayout()
        self._svg.clear()
        self._systems.clear()
        self._page_of.clear()
        return True

    def page_svg(self, page: int) -> str:
        """The QtSvg-ready SVG of ``page`` (0-based), rendered on first use."""
        got = self._svg.get(page)
        if got is None:
            if not 0 <= page < self.n_pages:
                raise IndexError(f"page {page} out of range (0..{self.n_pages - 1})")
            raw = self._tk.renderToSVG(page + 1)
            self._systems[page] = svg_systems(raw)
            for s in self._systems[page]:
                for mid in s:
                    self._page_of.setdefault(mid, page)
            got = self._svg[page] = qt_svg(raw)
        return got

    def is_rendered(self, page: int) -> bool:
        return page in self._svg

    def page_systems(self, page: int) -> list[list[str]]:
        """Measure ids per system of ``page`` (see :func:`svg_systems`)."""
        if page not in self._systems:
            self.page_svg(page)
        return self._systems[page]

    def systems_on_page(self, page: int) -> int:
        return len(self.page_systems(page))

    def page_of(self, measure_id: str) -> int:
        """Page (0-based) holding ``measure_id``, or -1 when the score has no such measure."""
        got = self._page_of.get(measure_id)
        if got is None:
            if not measure_id:
                return -1
            got = int(self._tk.getPageWithElement(measure_id)) - 1
            if got < 0:
                return -1
            self._page_of[measure_id] = got
        return got

    def locate(self, measure_id: str) -> tuple[int, int] | None:
        """``(page, system)`` of a measure, or None when it is not in the score."""
        page = self.page_of(measure_id)
        if page < 0:
            return None
        for i, system in enumerate(self.page_systems(page)):
            if measure_id in system:
                return page, i
        return None
