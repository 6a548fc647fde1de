"""Which pages to show while a pianist plays: the automatic page turner (pure, no Qt).

The view holds one page, or two pages side by side. It turns **ahead**: when the player reaches the
last ``lead_systems`` systems of a page, the next page is shown before its first bar is needed.

- One page per view: ``(p,)`` becomes ``(p + 1,)`` when the player reaches the lead systems of ``p``.
- Two pages per view: a **half-page turn**. The spread ``(p - 1, p)`` becomes ``(p, p + 1)`` when the
  player reaches the lead systems of ``p``: the page being played stays visible (it moves to the
  left) and the next one appears on the right, so the next bars are on screen before they are needed.
- A view that already shows everything needed is kept (no flicker, and a manual turn that still shows
  the current bar is respected). After a jump (a repeat, a restart, a re-identification) the view
  moves to the page holding the current bar.

Manual turns (:func:`turn_pages`, arrow keys and PageUp/PageDown, which Bluetooth page-turner pedals
send) move the view by one page and are clamped to the score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

__all__ = ["Layout", "PageLayout", "pages_to_show", "turn_pages", "first_view"]


class Layout(Protocol):
    """What the page turner needs to know about a laid-out score."""

    @property
    def n_pages(self) -> int: ...

    def systems_on_page(self, page: int) -> int: ...

    def locate(self, measure_id: str) -> tuple[int, int] | None: ...


@dataclass(frozen=True)
class PageLayout:
    """A laid-out score as plain data: ``pages[p][s]`` lists the measure ids of system ``s`` of page ``p``.

    :class:`companion.score.render.ScoreRenderer` offers the same three members, computed lazily.
    """

    pages: tuple[tuple[tuple[str, ...], ...], ...]

    @classmethod
    def from_lists(cls, pages: Sequence[Sequence[Sequence[str]]]) -> "PageLayout":
        return cls(tuple(tuple(tuple(s) for s in p) for p in pages))

    @property
    def n_pages(self) -> int:
        return len(self.pages)

    def systems_on_page(self, page: int) -> int:
        return len(self.pages[page])

    def locate(self, measure_id: str) -> tuple[int, int] | None:
        for p, page in enumerate(self.pages):
            for s, system in enumerate(page):
                if measure_id in system:
                    return p, s
        return None


def first_view(layout: Layout, pages_per_view: int) -> tuple[int, ...]:
    """The view at the start of the score: ``(0,)`` or ``(0, 1)`` (fewer when the score is shorter)."""
    return _view_at(layout, 0, pages_per_view)


def _view_at(layout: Layout, first: int, pages_per_view: int) -> tuple[int, ...]:
    n = layout.n_pages
    if n <= 0:
        return ()
    k = max(1, min(int(pages_per_view), n))
    first = min(max(int(first), 0), n - k)
    return tuple(range(first, first + k))


def _valid(view: Sequence[int] | None, layout: Layout, pages_per_view: int) -> bool:
    if not view:
        return False
    k = max(1, min(int(pages_per_view), layout.n_pages))
    return len(view) == k and all(0 <= p < layout.n_pages for p in view) and \
        all(b == a + 1 for a, b in zip(view, view[1:]))


def pages_to_show(layout: Layout, measure_id: str | None, pages_per_view: int,
                  shown: Sequence[int] | None = None, *, lead_systems: int = 1) -> tuple[int, ...]:
    """The pages to show while the player is in ``measure_id``.

    Parameters
    ----------
    layout : Layout
        The laid-out score (:class:`PageLayout` or a :class:`~companion.score.render.ScoreRenderer`).
    measure_id : str or None
        The notated measure id of the current bar (``Piece.bars["measure_id"]``); None or an id not in
        the layout keeps the current view.
    pages_per_view : int
        1 or 2.
    shown : sequence of int, optional
        The pages on screen now (consecutive, ascending). None or an invalid view means "nothing yet".
    lead_systems : int
        Turn when the player reaches the last ``lead_systems`` systems of a page (1: the last system;
        0: only when the player is already on the next page).

    Returns
    -------
    tuple of int
        Consecutive page indices, ascending, ``min(pages_per_view, n_pages)`` of them (empty for a
        score with no pages).
    """
    k = max(1, min(int(pages_per_view), 2))
    if layout.n_pages <= 0:
        return ()
    have = tuple(shown) if _valid(shown, layout, k) else None
    where = layout.locate(measure_id) if measure_id else None
    if where is None:
        return have if have is not None else first_view(layout, k)
    page, system = where
    near_end = system >= layout.systems_on_page(page) - max(int(lead_systems), 0)
    needed = {page, page + 1} if near_end and page + 1 < layout.n_pages else {page}
    if have is not None and needed <= set(have):
        return have
    if k == 1:
        return (max(needed),)
    # two pages: the current page on the left, the next on the right (a half-page turn from (p-1, p))
    return _view_at(layout, page, k)


def turn_pages(layout: Layout, shown: Sequence[int] | None, pages_per_view: int, step: int) -> tuple[int, ...]:
    """A manual turn: move the view by ``step`` pages (negative: back), clamped to the score."""
    k = max(1, min(int(pages_per_view), 2))
    if layout.n_pages <= 0:
        return ()
    first = shown[0] if _valid(shown, layout, k) else 0
    return _view_at(layout, first + int(step), k)
