"""Verovio page rendering for QtSvg: the nested-svg fix, systems, and every bar on exactly one page."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest

from companion.score.model import ScoreError
from companion.score.render import PageGeometry, ScoreRenderer, qt_svg, svg_systems

TINY = (
    '<svg viewBox="0 0 840 1188" version="1.1" xmlns="http://www.w3.org/2000/svg" id="x">'
    "<defs><g id=\"E050\"><path d=\"M0 0\"/></g></defs>"
    '<svg class="definition-scale" color="black" font-family="Times, serif" viewBox="0 0 21000 29700">'
    '<g class="page-margin" transform="translate(500, 500)">'
    '<g id="s1" class="system"><g id="mA" class="measure"><g id="st" class="staff"/></g>'
    '<g id="mB" class="measure"/></g>'
    '<g id="s2" class="system"><g id="mC" class="measure bogus"/></g>'
    '<text x="1" y="2"><tspan id="t1" class="rend"><tspan id="t2" class="text">'
    '<tspan font-size="405px">Allegro</tspan></tspan></tspan></text>'
    '<text x="5" y="6" font-size="0px">\n<tspan id="r1" class="rend">\n<tspan id="a" class="text" font-size="405px">D.C. '
    '</tspan>\n<tspan id="b" class="text" x="9" font-size="405px">al Fine</tspan>\n</tspan>\n</text>'
    '<text x="7" y="8" font-size="0px" />'
    "</g></svg></svg>"
)


def _corpus_piece(work: str = "bach/bwv846.mxl") -> Path:
    music21 = pytest.importorskip("music21")
    path = Path(music21.__file__).parent / "corpus" / work
    if not path.is_file():
        pytest.skip(f"music21's corpus has no {work}")
    return path


def test_qt_svg_replaces_the_nested_svg_by_a_scaled_group():
    out = qt_svg(TINY)
    assert out.count("<svg") == 1 and out.count("</svg>") == 1
    assert '<g class="definition-scale" color="black" font-family="Times, serif" transform="scale(0.04,0.04)">' in out
    assert out.endswith("</g></g></svg>")
    assert qt_svg("<svg viewBox='0 0 1 1'></svg>") == "<svg viewBox='0 0 1 1'></svg>"  # nothing to fix


def test_qt_svg_flattens_nested_text_spans():
    """QtSvg rejects a tspan inside a tspan, and then loses the bounds of the elements after it."""
    import re

    out = qt_svg(TINY)
    for text in re.findall(r"<text\b[^>]*(?<!/)>(.*?)</text>", out, re.S):
        depth = 0
        for tok in re.findall(r"<tspan\b|</tspan>", text):
            depth += 1 if tok == "<tspan" else -1
            assert depth <= 1, text  # no tspan inside a tspan
    assert '<tspan class="text" font-size="405px">Allegro</tspan>' in out  # inherited, innermost wins
    assert '<tspan class="text" id="a" font-size="405px">D.C. </tspan>' in out
    assert '<tspan class="text" id="b" x="9" font-size="405px">al Fine</tspan>' in out
    assert 'id="t1"' not in out and 'id="r1"' not in out  # ancestors' ids are not duplicated
    assert '<text x="7" y="8" font-size="0px" />' in out  # self-closing text untouched


def test_qt_svg_writes_music_font_dynamics_as_letters():
    """QtSvg has no SMuFL font: a "p" dynamic glyph becomes a bold italic p, other glyphs are left out."""
    svg = ('<svg viewBox="0 0 10 10"><svg class="definition-scale" viewBox="0 0 100 100">'
           '<text x="1" y="2" font-size="0px"><tspan class="text"><tspan font-family="Leipzig" '
           'font-size="720px" letter-spacing="90px">\ue520\ue522</tspan><tspan font-size="405px"> espressivo</tspan>'
           '</tspan></text><text x="3" y="4"><tspan font-family="Leipzig">\ue4e5</tspan></text></svg></svg>')
    out = qt_svg(svg)
    assert ('<tspan class="text" font-family="Times, serif" font-style="italic" font-weight="bold" '
            'font-size="432px">pf</tspan><tspan class="text" font-size="405px"> espressivo</tspan>') in out
    assert "\ue4e5" not in out and "\ue520" not in out and 'letter-spacing' not in out


def test_svg_systems_lists_measures_per_system():
    assert svg_systems(TINY) == [["mA", "mB"], ["mC"]]
    assert svg_systems("<svg/>") == []


def test_geometry_options_follow_the_slot_size():
    o = PageGeometry(800, 1000, 40.0).options()
    assert (o["pageWidth"], o["pageHeight"], o["scale"]) == (2000, 2500, 40)
    assert o["svgViewBox"] is True and o["adjustPageHeight"] is False
    tiny = PageGeometry(1, 1, 40.0).options()
    assert tiny["pageWidth"] >= 100 and tiny["pageHeight"] >= 100


def test_bad_files_raise_score_error(tmp_path):
    with pytest.raises(ScoreError, match="no such file"):
        ScoreRenderer(tmp_path / "missing.mxl", geometry=PageGeometry(600, 800))
    mid = tmp_path / "x.mid"
    mid.write_bytes(b"MThd")
    with pytest.raises(ScoreError, match="no notation"):
        ScoreRenderer(mid, geometry=PageGeometry(600, 800))
    bad = tmp_path / "bad.mxl"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ScoreError):
        ScoreRenderer(bad, geometry=PageGeometry(600, 800))


@pytest.mark.parametrize("work", ["bach/bwv846.mxl", "schumann_clara/polonaise_op1n2.mxl"])
def test_every_bar_has_a_rectangle_on_exactly_one_page(work):
    """The ids of the score model and of the rendered SVG agree; QtSvg finds each bar's rectangle
    (the polonaise has a "D.C. al Fine" text of nested spans that used to hide the bars after it)."""
    from PySide6.QtCore import QByteArray
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    from companion.score.load import load_score

    app = QApplication.instance() or QApplication([])  # noqa: F841 - QtSvg needs an application
    path = _corpus_piece(work)
    piece = load_score(path)
    r = ScoreRenderer(path, geometry=PageGeometry(700, 900, 40.0))
    assert r.n_pages >= 2
    measure_ids = set(piece.bars["measure_id"])
    found: dict[str, list[int]] = {m: [] for m in measure_ids}
    for page in range(r.n_pages):
        svg = r.page_svg(page)
        qs = QSvgRenderer(QByteArray(svg.encode()))
        assert qs.isValid()
        for system in r.page_systems(page):
            for mid in system:
                rect = qs.transformForElement(mid).mapRect(qs.boundsOnElement(mid))
                if mid in found and rect.width() > 1 and rect.height() > 1:
                    assert qs.viewBoxF().contains(rect.center())
                    found[mid].append(page)
        if page == 0:  # the page is drawn (not blank, as QtSvg draws verovio's nested svg)
            img = QImage(200, 260, QImage.Format.Format_RGB32)
            img.fill(QColor("white"))
            p = QPainter(img)
            qs.render(p)
            p.end()
            gray = np.frombuffer(img.constBits(), np.uint8).reshape(260, -1)[:, : 200 * 4]
            assert (gray < 128).mean() > 0.005
    assert all(len(pages) == 1 for pages in found.values()), {m: p for m, p in found.items() if len(p) != 1}
    for mid, pages in found.items():
        assert r.page_of(mid) == pages[0]
        assert r.locate(mid)[0] == pages[0]
    assert r.locate("no-such-measure") is None and r.page_of("") == -1


def test_relayout_follows_the_window():
    path = _corpus_piece()
    r = ScoreRenderer(path, geometry=PageGeometry(700, 900, 40.0))
    n = r.n_pages
    r.page_svg(0)
    assert r.is_rendered(0)
    assert r.relayout(PageGeometry(700, 900, 40.0)) is False
    assert r.relayout(PageGeometry(1400, 1800, 40.0)) is True
    assert not r.is_rendered(0)
    assert r.n_pages < n  # larger pages: fewer of them
    with pytest.raises(IndexError):
        r.page_svg(r.n_pages)
