"""The score view: verovio pages drawn with QtSvg, a calm moving bar highlight, automatic page turns.

The widget lays the score out for its own size (one or two page slots side by side), re-lays it out
when it is resized (debounced), draws each visible page from a cached image, and draws the current
bar's highlight on top: a translucent rounded rectangle spanning the bar's width and its system's
height, which glides to the next bar in a short animation, with an optional thin beat marker.

Page turns come from the pure :func:`companion.score.pageturn.pages_to_show`. A manual turn
(:meth:`ScoreView.turn`) holds the view until the player moves on to another system.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import (QByteArray, QEasingCurve, QPointF, QRectF, QSize, Qt, QTimer, QVariantAnimation,
                            Signal)
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QSizePolicy, QWidget

from companion.score.model import Piece
from companion.score.pageturn import first_view, pages_to_show, turn_pages
from companion.score.render import PageGeometry, ScoreRenderer

__all__ = ["ScoreView", "bar_of_quarters"]

log = logging.getLogger(__name__)

MARGIN_PX = 14
BACKGROUND = QColor("#e9e6e0")
PAPER = QColor("#fffdf8")
HIGHLIGHT_FILL = QColor(66, 133, 244, 46)
HIGHLIGHT_EDGE = QColor(66, 133, 244, 150)
DIMMED_FILL = QColor(120, 120, 120, 30)  # searching / lost: where the player was last seen
DIMMED_EDGE = QColor(120, 120, 120, 110)
BEAT_MARK = QColor(230, 120, 30, 150)


class _Page:
    """One rendered page: its QSvgRenderer, cached image and the highlight rectangles of its bars."""

    def __init__(self, svg: str, systems: list[list[str]]) -> None:
        self.svg = QSvgRenderer(QByteArray(svg.encode("utf-8")))
        self.view_box = self.svg.viewBoxF()
        self.image: QImage | None = None
        self.bar_rects: dict[str, QRectF] = {}
        for system in systems:
            rects = {}
            for mid in system:
                r = self.svg.transformForElement(mid).mapRect(self.svg.boundsOnElement(mid))
                if r.isValid() and not r.isEmpty():
                    rects[mid] = r
            if not rects:
                continue
            top = min(r.top() for r in rects.values())
            bottom = max(r.bottom() for r in rects.values())
            for mid, r in rects.items():  # bar width x system height: calm, equal-height highlights
                self.bar_rects[mid] = QRectF(r.left(), top, r.width(), bottom - top)

    def image_for(self, size: QSize, dpr: float) -> QImage:
        if self.image is None or self.image.size() != size * dpr:
            img = QImage(size * dpr, QImage.Format.Format_ARGB32_Premultiplied)
            img.setDevicePixelRatio(dpr)
            img.fill(PAPER)
            p = QPainter(img)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            self.svg.render(p, QRectF(0, 0, size.width(), size.height()))
            p.end()
            self.image = img
        return self.image


class ScoreView(QWidget):
    """Shows a score and follows a position in it.

    Parameters
    ----------
    pages_per_view : int
        1 or 2 pages side by side.
    zoom : float
        Verovio scale in percent (staff size).
    lead_systems : int
        Turn ahead when the player reaches the last ``lead_systems`` systems of a page.
    animate_ms : int
        Duration of the highlight's glide to the next bar (0: jump).
    """

    pagesChanged = Signal(tuple)
    barChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, pages_per_view: int = 2, zoom: float = 40.0,
                 lead_systems: int = 1, animate_ms: int = 140) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.pages_per_view = max(1, min(int(pages_per_view), 2))
        self.zoom = float(zoom)
        self.lead_systems = int(lead_systems)
        self.show_beat = True
        self.renderer: ScoreRenderer | None = None
        self.piece: Piece | None = None
        self.view_pages: tuple[int, ...] = ()
        self.highlighted_id: str = ""
        self.message = "Pick a piece in the library."
        self.dimmed = False
        self._pages: dict[int, _Page] = {}
        self._bar = -1
        self._beat_frac: float | None = None
        self._where: tuple[int, int] | None = None
        self._hold: tuple[int, int] | None = None  # manual turn: held until the player leaves this system
        self._rect = QRectF()  # highlight rectangle in widget coordinates (animated)
        self._anim = QVariantAnimation(self)
        self._anim.setDuration(int(animate_ms))
        self._anim.setEasingCurve(QEasingCurve.Type.OutCubic)
        self._anim.valueChanged.connect(self._on_anim)
        self._relayout_timer = QTimer(self)
        self._relayout_timer.setSingleShot(True)
        self._relayout_timer.setInterval(200)
        self._relayout_timer.timeout.connect(self._relayout)
        self._prefetch_timer = QTimer(self)  # render the page after the view while the player reads
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(0)
        self._prefetch_timer.timeout.connect(self._prefetch)

    # ------------------------------------------------------------------------------ loading & layout
    def geometry_for_size(self, size: QSize) -> PageGeometry:
        k = self.pages_per_view
        w = max((size.width() - MARGIN_PX * (k + 1)) // k, 100)
        h = max(size.height() - 2 * MARGIN_PX, 100)
        return PageGeometry(int(w), int(h), self.zoom)

    def load(self, source: str, piece: Piece | None = None, *, validate: bool = True) -> None:
        """Lay out and show the score file ``source``; ``piece`` maps positions to its bars.

        ``validate=False`` skips the pre-check of the file (for database pieces, checked at build).

        Raises
        ------
        ScoreError
            When verovio cannot read the file.
        """
        self.renderer = ScoreRenderer(source, geometry=self.geometry_for_size(self.size()), validate=validate)
        self.piece = piece
        self._pages.clear()
        self._bar, self._where, self._hold, self.highlighted_id = -1, None, None, ""
        self._beat_frac = None
        self._anim.stop()
        self._rect = QRectF()
        self._set_view(first_view(self.renderer, self.pages_per_view))

    def clear(self, message: str = "") -> None:
        self.renderer, self.piece = None, None
        self._pages.clear()
        self.view_pages, self.highlighted_id, self._bar = (), "", -1
        self.message = message
        self.update()

    def set_pages_per_view(self, k: int) -> None:
        k = max(1, min(int(k), 2))
        if k != self.pages_per_view:
            self.pages_per_view = k
            self._relayout(force=True)

    def set_zoom(self, zoom: float) -> None:
        zoom = float(min(max(zoom, 15.0), 120.0))
        if zoom != self.zoom:
            self.zoom = zoom
            self._relayout(force=True)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.renderer is not None:
            self._relayout_timer.start()  # debounced: lay out once the user stops resizing
            self._place_highlight(animate=False)

    def flush_layout(self) -> None:
        """Apply a pending (debounced) re-layout now."""
        if self._relayout_timer.isActive():
            self._relayout_timer.stop()
            self._relayout()

    def _relayout(self, force: bool = False) -> None:
        if self.renderer is None:
            return
        geometry = self.geometry_for_size(self.size())
        if self.renderer.relayout(geometry) or force:
            self._pages.clear()
            self._where, self._hold = None, None
            mid = self.highlighted_id or None
            self.view_pages = ()
            self._set_view(pages_to_show(self.renderer, mid, self.pages_per_view, None,
                                         lead_systems=self.lead_systems))
            if mid:
                self._where = self.renderer.locate(mid)
            self._place_highlight(animate=False)

    def _page(self, page: int) -> _Page:
        got = self._pages.get(page)
        if got is None:
            svg = self.renderer.page_svg(page)
            got = self._pages[page] = _Page(svg, self.renderer.page_systems(page))
        return got

    def _set_view(self, pages: tuple[int, ...]) -> None:
        pages = tuple(pages)
        if pages != self.view_pages:
            self.view_pages = pages
            if pages:
                # the page holding the current bar (else the first) now; the others right after the
                # first paint (blank paper until then), so the first page shows as soon as possible
                where = self._where[0] if self._where and self._where[0] in pages else pages[0]
                self._page(where)
            self.pagesChanged.emit(pages)
            self._prefetch_timer.start()
        self.update()

    def ensure_rendered(self) -> None:
        """Render every visible page now (before a screenshot)."""
        for p in self.view_pages:
            self._page(p)
        self._place_highlight(animate=False)

    def _prefetch(self) -> None:
        """Render the visible pages not rendered yet, then the page after the view (one per call)."""
        if self.renderer is None or not self.view_pages:
            return
        missing = [p for p in self.view_pages if p not in self._pages]
        if missing:
            self._page(missing[0])
            self._place_highlight(animate=False)
            self._prefetch_timer.start()  # next one after this paint
            return
        nxt = self.view_pages[-1] + 1
        if nxt < self.renderer.n_pages and nxt not in self._pages:
            slot = self.page_rect(0)
            self._page(nxt).image_for(slot.size().toSize(), self.devicePixelRatioF())

    # ------------------------------------------------------------------------------------ following
    def set_bar(self, bar: int, measure_offset: float | None = None) -> None:
        """Highlight bar ``bar`` (index into ``piece.bars``, performance order) and turn pages as needed."""
        if self.renderer is None or self.piece is None or not 0 <= bar < len(self.piece.bars):
            return
        bars = self.piece.bars
        mid = str(bars["measure_id"][bar])
        if measure_offset is not None and bar + 1 < len(bars):
            length = float(bars["start_quarters"][bar + 1] - bars["start_quarters"][bar])
            self._beat_frac = float(np.clip(measure_offset / length, 0.0, 1.0)) if length > 0 else None
        else:
            self._beat_frac = None
        if bar == self._bar:
            self._update_around(self._rect)  # the beat marker moved
            return
        self._bar = bar
        self.set_measure(mid)

    def set_measure(self, measure_id: str) -> None:
        """Highlight the notated measure ``measure_id`` and turn pages as needed."""
        if self.renderer is None:
            return
        where = self.renderer.locate(measure_id)
        changed = measure_id != self.highlighted_id
        self.highlighted_id = measure_id
        if where is not None and where != self._where:
            self._where = where
            if self._hold is not None and self._hold != where:
                self._hold = None  # the player moved on: automatic turning resumes
            if self._hold is None:
                self._set_view(pages_to_show(self.renderer, measure_id, self.pages_per_view, self.view_pages,
                                             lead_systems=self.lead_systems))
        if changed:
            self.barChanged.emit(measure_id)
        self._place_highlight(animate=True)

    def set_dimmed(self, dimmed: bool) -> None:
        """Grey the highlight while the follower is searching or lost."""
        if bool(dimmed) != self.dimmed:
            self.dimmed = bool(dimmed)
            self._update_around(self._rect)

    def turn(self, step: int) -> None:
        """Manual page turn by ``step`` pages (keys, pedals); holds until the player changes system."""
        if self.renderer is None:
            return
        self._hold = self._where or (-1, -1)
        self._set_view(turn_pages(self.renderer, self.view_pages, self.pages_per_view, step))
        self._place_highlight(animate=False)

    # ------------------------------------------------------------------------------------- geometry
    def page_rect(self, slot: int) -> QRectF:
        """Widget rectangle of page slot ``slot`` (page drawn at one SVG unit per pixel, centred)."""
        k = max(len(self.view_pages), 1)
        g = self.renderer.geometry if self.renderer else self.geometry_for_size(self.size())
        page = self._pages.get(self.view_pages[slot]) if slot < len(self.view_pages) else None
        w, h = (page.view_box.width(), page.view_box.height()) if page else (g.width_px, g.height_px)
        total_w = k * w + (k - 1) * MARGIN_PX
        x0 = max((self.width() - total_w) / 2, MARGIN_PX / 2)
        y0 = max((self.height() - h) / 2, MARGIN_PX / 2)
        return QRectF(x0 + slot * (w + MARGIN_PX), y0, w, h)

    def bar_rect(self, measure_id: str) -> QRectF | None:
        """Widget rectangle of a bar's highlight, or None when the bar is not on a visible page."""
        for slot, p in enumerate(self.view_pages):
            page = self._pages.get(p)
            r = page.bar_rects.get(measure_id) if page else None
            if r is not None:
                pr = self.page_rect(slot)
                sx = pr.width() / page.view_box.width()
                sy = pr.height() / page.view_box.height()
                return QRectF(pr.left() + r.left() * sx, pr.top() + r.top() * sy, r.width() * sx, r.height() * sy)
        return None

    def _update_around(self, *rects: QRectF) -> None:
        """Repaint only where the highlight was and is (a small part of the pages: cheap)."""
        area = QRectF()
        for r in rects + (self._rect,):
            if r.isValid():
                area = area.united(r) if area.isValid() else QRectF(r)
        if area.isValid():
            self.update(area.adjusted(-8, -10, 8, 10).toAlignedRect())

    def _place_highlight(self, *, animate: bool) -> None:
        old = QRectF(self._rect)
        target = self.bar_rect(self.highlighted_id) if self.highlighted_id else None
        if target is None:
            self._anim.stop()
            self._rect = QRectF()
        elif animate and self._rect.isValid() and self._anim.duration() > 0 and \
                abs(target.top() - self._rect.top()) < 1.0:  # glide along a system, jump between systems
            self._anim.stop()
            self._anim.setStartValue(QRectF(self._rect))
            self._anim.setEndValue(target)
            self._anim.start()
        else:
            self._anim.stop()
            self._rect = target
        self._update_around(old, target if target is not None else QRectF())

    def _on_anim(self, value) -> None:
        old = QRectF(self._rect)
        self._rect = QRectF(value)
        self._update_around(old)

    def highlight_rect(self) -> QRectF:
        """Where the highlight is drawn now (widget coordinates; invalid when none)."""
        return QRectF(self._rect)

    # ---------------------------------------------------------------------------------------- paint
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self.renderer is None or not self.view_pages:
            p.setPen(QColor("#6b665e"))
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.3)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        dpr = self.devicePixelRatioF()
        for slot, page_no in enumerate(self.view_pages):
            page = self._pages.get(page_no)  # None: rendered right after this paint (see _prefetch)
            r = self.page_rect(slot)
            p.fillRect(r.translated(2, 3), QColor(0, 0, 0, 28))  # soft shadow
            if page is None:
                p.fillRect(r, PAPER)
            else:
                p.drawImage(r.topLeft(), page.image_for(r.size().toSize(), dpr))
            p.setPen(QColor("#9a958c"))
            p.drawText(QRectF(r.left(), r.bottom() - 22, r.width(), 18), Qt.AlignmentFlag.AlignCenter,
                       f"{page_no + 1} / {self.renderer.n_pages}")
        if self._rect.isValid():
            path = QPainterPath()
            hr = self._rect.adjusted(-3, -5, 3, 5)
            path.addRoundedRect(hr, 7, 7)
            p.setPen(QPen(DIMMED_EDGE if self.dimmed else HIGHLIGHT_EDGE, 1.5))
            p.fillPath(path, DIMMED_FILL if self.dimmed else HIGHLIGHT_FILL)
            p.drawPath(path)
            if self.show_beat and not self.dimmed and self._beat_frac is not None and \
                    self._anim.state() != QVariantAnimation.State.Running:
                x = self._rect.left() + self._beat_frac * self._rect.width()
                p.setPen(QPen(BEAT_MARK, 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
                p.drawLine(QPointF(x, hr.top() + 4), QPointF(x, hr.bottom() - 4))
        p.end()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(1100, 760)


def bar_of_quarters(piece: Piece, score_quarters: float | None) -> int:
    """Index of the bar at ``score_quarters`` along the unfolded score (-1 when unknown)."""
    if score_quarters is None or piece is None or len(piece.bars) == 0:
        return -1
    return piece.bar_at(float(score_quarters))

