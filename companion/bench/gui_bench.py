"""Benchmark of the score view (offscreen): opening a piece, highlight updates, event-to-repaint latency.

Run::

    QT_QPA_PLATFORM=offscreen nice -n 10 .venv/bin/python -m companion.bench.gui_bench [--piece SCORE] [--repeats 3]

Measured, for a long ASAP score (default: Beethoven op. 53 i, ``Piano_Sonatas/21-1``, ~30 pages at the
default window size; a music21 corpus piece when ASAP is absent):

* **open**: :meth:`MainWindow.open_score` until the first page is painted (verovio load and layout,
  page SVG, QtSvg parse, bar rectangles, first paint), cold (a new toolkit each time). Wall time and
  the process's CPU time: on a shared machine the difference is time spent waiting for a core.
* **highlight update**: :meth:`ScoreView.set_bar` for the next bar, to the end of the paint event Qt
  then runs (only the region the highlight left and entered is repainted; after a page turn, the whole
  view), over a ground-truth position stream of a real performance. Events are
  processed (untimed) between updates, as between positions in the app, so the page after the view
  is prefetched before a turn needs it.
* **event to repaint**: from a position put into the keep-latest queue by another thread to the end
  of the paint event that shows it (the bridge's 16 ms timer included).
* **live**: the demo recording followed in real time by the chroma tracker in the worker thread, as
  in the app; the intervals of a 10 ms timer in the GUI thread show how long the window ever waits.

Also here: :func:`ground_truth_positions`, the position stream that ASAP's note alignment implies
(used by the GUI tests when no tracker is available and to drive this benchmark).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["ground_truth_positions", "ground_truth_bar", "main"]

log = logging.getLogger(__name__)

DEFAULT_ASAP_PIECE = "Beethoven/Piano_Sonatas/21-1"


def ground_truth_bar(piece, alignment: np.ndarray, t: float) -> int:
    """Bar index (into ``piece.bars``) of the last aligned score note played at or before ``t``.

    Parameters
    ----------
    piece : Piece
        The score, loaded with :func:`companion.score.load.load_score`.
    alignment : np.ndarray
        :data:`companion.bench.asap.ALIGN_DTYPE` rows, sorted by performed onset.
    t : float
        Performance time, seconds.

    Returns
    -------
    int
        -1 before the first note or when the note is not in the score.
    """
    k = int(np.searchsorted(alignment["onset_s"], t, side="right")) - 1
    if k < 0:
        return -1
    idx = np.flatnonzero(piece.notes["note_id"] == alignment["note_id"][k])
    if len(idx) == 0:
        return -1
    rep = int(alignment["repeat"][k])
    return int(piece.notes["bar"][idx[min(max(rep, 1) - 1, len(idx) - 1)]])


def ground_truth_positions(piece, alignment: np.ndarray, *, until_s: float, step_s: float = 0.1) -> list[dict]:
    """Positions (``companion follow --json`` objects) that the alignment implies, every ``step_s``.

    The position at ``t`` is the score onset of the last aligned note played at or before ``t``.
    """
    out = []
    by_id: dict[str, np.ndarray] = {}
    for t in np.arange(step_s, until_s + 1e-9, step_s):
        k = int(np.searchsorted(alignment["onset_s"], t, side="right")) - 1
        if k < 0:
            out.append({"t": round(float(t), 3), "state": "searching", "source": piece.meta.source, "measure": None,
                        "measure_offset": None, "score_quarters": None, "tempo": 1.0, "confidence": 0.0})
            continue
        nid = str(alignment["note_id"][k])
        idx = by_id.get(nid)
        if idx is None:
            idx = by_id[nid] = np.flatnonzero(piece.notes["note_id"] == nid)
        if len(idx) == 0:
            continue
        n = piece.notes[idx[min(max(int(alignment["repeat"][k]), 1) - 1, len(idx) - 1)]]
        bar = int(n["bar"])
        out.append({"t": round(float(t), 3), "state": "tracking", "source": piece.meta.source,
                    "measure": str(piece.bars["number"][bar]), "measure_offset": float(n["measure_offset"]),
                    "score_quarters": float(n["onset_quarters"]), "tempo": 1.0, "confidence": 1.0})
    return out


def _default_piece() -> tuple[Path, object]:
    from companion.bench.asap import asap_root, performances

    root = asap_root()
    if root is not None:
        perfs = [p for p in performances(root) if str(p.folder).endswith(DEFAULT_ASAP_PIECE)]
        if perfs:
            return perfs[0].score, perfs[0]
    import music21

    return Path(music21.__file__).parent / "corpus" / "joplin" / "maple_leaf_rag.mxl", None


def _ms(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"{1000 * statistics.median(xs):.1f} / {1000 * p95:.1f} / {1000 * xs[-1]:.1f}"


def _live_stalls(win, app, seconds: float):
    """Follow ``assets/demo.ogg`` in BWV 846 in real time (as the app does, played to the speakers when
    there are any) and record the intervals of a 10 ms timer in the GUI thread."""
    import music21
    from PySide6.QtCore import QEventLoop, QTimer

    from companion.gui.worker import warm_up
    from companion.score.load import load_score

    demo = Path(__file__).resolve().parents[2] / "assets" / "demo.ogg"
    warm_up()
    win.open_score(load_score(Path(music21.__file__).parent / "corpus" / "bach" / "bwv846.mxl"))
    gaps: list[float] = []
    shown = [0]
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    win.bridge.position.connect(lambda _p: shown.__setitem__(0, shown[0] + 1))
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    win.follow_file(str(demo), play=True, realtime=True)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    timer.stop()
    win.bridge.stop()
    return gaps, shown[0], f"assets/demo.ogg followed in BWV 846 for {seconds:.0f} s in real time"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--piece", help="score file (default: ASAP Beethoven op. 53 i, else a music21 piece)")
    ap.add_argument("--repeats", type=int, default=3, help="cold opens to time")
    ap.add_argument("--pages", type=int, default=2, choices=(1, 2), help="pages per view")
    ap.add_argument("--size", default="1400x900", help="window size WxH")
    ap.add_argument("--live-seconds", type=float, default=20.0,
                    help="follow the demo recording in real time for this long and time the event loop's "
                         "stalls (0: skip)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from companion.gui.app import make_app
    from companion.gui.settings import Settings
    from companion.gui.window import MainWindow
    from companion.score.load import load_score

    perf = None
    if args.piece:
        score = Path(args.piece)
    else:
        score, perf = _default_piece()
    piece = load_score(score)
    app = make_app()
    w_px, h_px = (int(x) for x in args.size.lower().split("x"))
    store = QSettings(str(Path(os.environ.get("TMPDIR", "/tmp")) / "companion-gui-bench.ini"),
                      QSettings.Format.IniFormat)
    store.clear()
    win = MainWindow(Settings(store), interactive=False, animate_ms=0)
    win.view.set_pages_per_view(args.pages)
    win.resize(w_px, h_px)
    win.show()
    app.processEvents()

    painted: list[float] = []
    orig_paint = win.view.paintEvent

    def timed_paint(event):
        orig_paint(event)
        painted.append(time.perf_counter())

    win.view.paintEvent = timed_paint

    open_s: list[float] = []
    open_cpu_s: list[float] = []
    spread_s: list[float] = []
    for _ in range(max(args.repeats, 1)):
        win.view.clear()
        app.processEvents()
        t0, c0 = time.perf_counter(), time.process_time()
        win.open_score(piece, validate=False)
        win.view.repaint()
        open_s.append(time.perf_counter() - t0)
        open_cpu_s.append(time.process_time() - c0)
        while any(p not in win.view._pages for p in win.view.view_pages):  # the rest of the spread
            app.processEvents()
        win.view.repaint()
        spread_s.append(time.perf_counter() - t0)
    n_pages = win.view.renderer.n_pages if win.view.renderer else 0

    # positions: the performance's ground truth when there is one, else every bar in order
    if perf is not None:
        from companion.bench.asap import load_alignment

        al = load_alignment(perf)
        positions = ground_truth_positions(piece, al, until_s=float(al["onset_s"][-1]), step_s=0.1)
    else:
        positions = [{"t": i * 0.5, "state": "tracking", "source": piece.meta.source, "measure": None,
                      "measure_offset": 0.0, "score_quarters": float(q), "tempo": 1.0, "confidence": 1.0}
                     for i, q in enumerate(piece.bars["start_quarters"])]
    positions = [p for p in positions if p["score_quarters"] is not None]

    # highlight update: set_bar + synchronous repaint, for each change of bar
    update_s: list[float] = []
    update_cpu_s: list[float] = []
    turn_s: list[float] = []
    missed_paint = 0
    last_bar = -1
    for pos in positions:
        bar = piece.bar_at(pos["score_quarters"])
        if bar == last_bar:
            continue
        last_bar = bar
        pages_before = win.view.view_pages
        painted.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        win.view.set_bar(bar, pos["measure_offset"])
        app.processEvents()  # the repaint Qt scheduled: only the region the highlight left and entered
        dt = (painted[0] if painted else time.perf_counter()) - t0
        dc = time.process_time() - c0
        missed_paint += not painted
        if win.view.view_pages != pages_before:
            turn_s.append(dt)
        else:
            update_s.append(dt)
            update_cpu_s.append(dc)
        app.processEvents()  # idle time between positions: the next page is prefetched here, untimed

    # event -> repaint: a thread puts positions into the bridge's keep-latest queue; time to the paint
    win.view.set_bar(0)
    latency: list[float] = []
    stamps: list[float] = []
    sample = positions[:: max(len(positions) // 150, 1)][:150]

    def producer(stop):
        for pos in sample:
            if stop.is_set():
                return
            stamps.append(time.perf_counter())
            yield pos
            time.sleep(0.05)

    loop = QEventLoop()
    win.bridge.finished.connect(lambda _n: QTimer.singleShot(100, loop.quit))
    painted.clear()
    win.follow_positions(producer(threading.Event()), label="bench")
    loop.exec()
    for ts in stamps:
        after = [p for p in painted if p >= ts]
        if after:
            latency.append(after[0] - ts)

    live = _live_stalls(win, app, args.live_seconds) if args.live_seconds > 0 else None

    name = str(score)
    if "asap" in name:
        name = name[name.index("asap"):]
    print(f"## GUI benchmark\n\npiece: `{name}` ({len(piece.bars)} bars unfolded, {n_pages} pages at "
          f"{w_px}x{h_px}, {args.pages} page(s) per view); positions: "
          f"{'ASAP ground truth of ' + perf.name if perf else 'every bar in order'}\n")
    print("| measure | median / p95 / max (ms) | n | target |")
    print("|---|---|---|---|")
    print(f"| open piece -> first page painted (cold), wall | {_ms(open_s)} | {len(open_s)} | <= 1000 |")
    print(f"| same, CPU time of the process | {_ms(open_cpu_s)} | {len(open_cpu_s)} | |")
    print(f"| open piece -> whole spread painted, wall | {_ms(spread_s)} | {len(spread_s)} | |")
    print(f"| highlight update (set_bar -> paint done), no page turn | {_ms(update_s)} | {len(update_s)} | <= 16 |")
    print(f"| same, CPU time (set_bar + events + paint) | {_ms(update_cpu_s)} | {len(update_cpu_s)} | |")
    print(f"| highlight update with a page turn | {_ms(turn_s)} | {len(turn_s)} | |")
    print(f"| position event (other thread) -> repaint done | {_ms(latency)} | {len(latency)} | |")
    if live is not None:
        gaps, n_pos, desc = live
        print(f"\nLive: {desc}. The event loop's 10 ms timer, {len(gaps)} ticks: gaps median / p95 / max "
              f"{_ms(gaps)} ms; gaps over 50 ms: {sum(g > 0.05 for g in gaps)}; "
              f"positions shown: {n_pos}.")
    if missed_paint:
        print(f"\n({missed_paint} updates painted nothing within the timed event processing)")
    win.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
