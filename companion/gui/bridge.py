"""The QObject bridge: core events in, Qt signals out (the Frescobaldi pattern).

A :class:`~companion.gui.worker.FollowWorker` thread fills a keep-latest mailbox; a ``QTimer`` in
the GUI thread drains it (about 60 times a second) and emits signals. The GUI thread never blocks on
the pipeline, and a slow repaint only ever skips stale positions.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Iterable

from PySide6.QtCore import QObject, QTimer, Signal

from companion.gui.worker import FollowWorker, LatestQueue

__all__ = ["Bridge"]

log = logging.getLogger(__name__)


class Bridge(QObject):
    """Runs one follow job at a time and turns its output into signals.

    Signals
    -------
    position(dict)
        The newest position (``companion follow``'s JSON object).
    level(float)
        The newest input level, dBFS.
    error(str), info(str)
        Messages for the user.
    finished(int)
        The job ended (number of positions produced).
    """

    position = Signal(dict)
    level = Signal(float)
    error = Signal(str)
    info = Signal(str)
    finished = Signal(int)

    def __init__(self, parent: QObject | None = None, *, interval_ms: int = 16) -> None:
        super().__init__(parent)
        self.positions = LatestQueue()
        self.levels = LatestQueue()
        self.events: queue.Queue = queue.Queue()
        self.worker: FollowWorker | None = None
        self._on_stop: Callable[[], None] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self.drain)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    def start(self, make_positions: Callable[[threading.Event], Iterable[dict]], *,
              on_stop: Callable[[], None] | None = None) -> None:
        """Start a job (stopping the previous one): ``make_positions(stop_event)`` runs in the thread.

        ``on_stop`` is called (in the GUI thread) when the job is stopped, to unblock an input that
        waits for data (a MIDI port with no notes coming).
        """
        self.stop()
        self.positions.take()
        self.levels.take()
        self._on_stop = on_stop
        self.worker = FollowWorker(make_positions, positions=self.positions, events=self.events)
        self.worker.start()
        self._timer.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the running job to stop and wait briefly for its thread."""
        if self.worker is not None:
            self.worker.stop()
            if self._on_stop is not None:
                try:
                    self._on_stop()
                except Exception:  # closing a device that is already gone
                    log.debug("on_stop failed", exc_info=True)
            self.worker.join(timeout_s)
            if self.worker.is_alive():
                log.warning("the follow thread did not stop within %.1f s", timeout_s)
            self.worker = None
        self.drain()

    def post_info(self, message: str) -> None:
        """Queue a message from any thread (shown in the status bar)."""
        self.events.put(("info", message))
        if not self._timer.isActive():
            self._timer.start()

    def drain(self) -> None:
        """Emit what arrived since the last call (GUI thread; called by the timer)."""
        events = []
        while True:  # events first: a position put before "finished" is then surely taken below
            try:
                events.append(self.events.get_nowait())
            except queue.Empty:
                break
        lvl = self.levels.take()
        if lvl is not None:
            self.level.emit(float(lvl))
        pos = self.positions.take()
        if pos is not None:
            self.position.emit(pos)
        for kind, payload in events:
            if kind == "error":
                self.error.emit(str(payload))
            elif kind == "info":
                self.info.emit(str(payload))
            elif kind == "finished":
                self.finished.emit(int(payload))
        if not self.running and self.events.empty():
            self._timer.stop()
