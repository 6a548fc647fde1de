"""The page turner is a pure function: tested on plain layouts with 1 and 2 pages per view."""

from __future__ import annotations

import pytest

from companion.score.pageturn import PageLayout, first_view, pages_to_show, turn_pages


def _layout(n_pages: int, systems: int = 3, measures: int = 4) -> PageLayout:
    """``n_pages`` pages of ``systems`` systems of ``measures`` bars, ids ``m0, m1, ...`` in order."""
    pages, k = [], 0
    for _ in range(n_pages):
        page = []
        for _ in range(systems):
            page.append([f"m{k + i}" for i in range(measures)])
            k += measures
        pages.append(page)
    return PageLayout.from_lists(pages)


def _play(layout: PageLayout, per_view: int, *, lead: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """Play every bar in order; return (bar, view) after each bar."""
    view = first_view(layout, per_view)
    out = []
    for page in layout.pages:
        for system in page:
            for mid in system:
                view = pages_to_show(layout, mid, per_view, view, lead_systems=lead)
                out.append((mid, view))
    return out


def test_layout_locate():
    lay = _layout(3)
    assert lay.locate("m0") == (0, 0)
    assert lay.locate("m13") == (1, 0)
    assert lay.locate("m35") == (2, 2)
    assert lay.locate("nope") is None


def test_one_page_turns_ahead_on_last_system():
    lay = _layout(3)  # 12 bars per page, last system = bars 8..11
    views = dict(_play(lay, 1))
    assert views["m7"] == (0,)
    assert views["m8"] == (1,)  # the last system of page 0 reached: page 1 is shown
    assert views["m12"] == (1,)
    assert views["m19"] == (1,)
    assert views["m20"] == (2,)
    assert views["m35"] == (2,)  # no page after the last one


def test_one_page_lead_zero_turns_on_arrival():
    lay = _layout(2)
    views = dict(_play(lay, 1, lead=0))
    assert views["m11"] == (0,)
    assert views["m12"] == (1,)


def test_lead_two_systems():
    lay = _layout(2)
    views = dict(_play(lay, 1, lead=2))
    assert views["m3"] == (0,)
    assert views["m4"] == (1,)


@pytest.mark.parametrize("n_pages", [4, 5])
def test_two_pages_half_page_turns_keep_next_bars_visible(n_pages):
    lay = _layout(n_pages)
    played = _play(lay, 2)
    assert played[0][1] == (0, 1)
    bars = [mid for mid, _ in played]
    for i, (mid, view) in enumerate(played):
        page, _ = lay.locate(mid)
        assert len(view) == 2 and view[1] == view[0] + 1
        assert page in view, f"{mid} played while {view} shown"
        if i + 1 < len(bars):  # the next bar is always on screen before it is played
            assert lay.locate(bars[i + 1])[0] in view
    views = dict(played)
    assert views["m8"] == (0, 1)  # the right page already shows what follows page 0
    assert views["m19"] == (0, 1)
    assert views["m20"] == (1, 2)  # last system of page 1: half-page turn
    assert views[f"m{12 * n_pages - 1}"] == (n_pages - 2, n_pages - 1)


def test_one_page_next_bar_visible_except_across_the_turn_system():
    """With one page, turning ahead hides the last system: the next bar is shown before needed."""
    lay = _layout(3)
    played = _play(lay, 1)
    for (mid, view), (nxt, _) in zip(played, played[1:]):
        page, system = lay.locate(mid)
        if system == lay.systems_on_page(page) - 1 and page + 1 < lay.n_pages:
            assert lay.locate(nxt)[0] in view or view == (page + 1,)


def test_jump_back_moves_the_view():
    lay = _layout(5)
    assert pages_to_show(lay, "m50", 1, (4,)) == (4,)
    assert pages_to_show(lay, "m1", 1, (4,)) == (0,)
    assert pages_to_show(lay, "m1", 2, (3, 4)) == (0, 1)
    assert pages_to_show(lay, "m30", 2, (0, 1)) == (2, 3)


def test_manual_turn_is_kept_while_it_shows_the_current_bar():
    lay = _layout(4)
    view = pages_to_show(lay, "m13", 2, None)
    assert view == (1, 2)
    back = turn_pages(lay, view, 2, -1)
    assert back == (0, 1)
    assert pages_to_show(lay, "m14", 2, back) == (0, 1)  # bar 14 is on page 1, still visible
    assert turn_pages(lay, (2, 3), 2, +1) == (2, 3)  # clamped at the end
    assert turn_pages(lay, (0,), 1, -1) == (0,)
    assert turn_pages(lay, (0,), 1, +3) == (3,)


def test_unknown_bar_and_bad_views():
    lay = _layout(3)
    assert pages_to_show(lay, None, 2, None) == (0, 1)
    assert pages_to_show(lay, "zzz", 1, (2,)) == (2,)
    assert pages_to_show(lay, "m0", 2, (7, 8)) == (0, 1)  # out-of-range view replaced
    assert pages_to_show(lay, "m0", 2, (0, 2)) == (0, 1)  # non-consecutive view replaced
    assert pages_to_show(_layout(1), "m11", 2, None) == (0,)  # two per view, one page in the score
    assert pages_to_show(PageLayout.from_lists([]), "m0", 2, None) == ()
