"""The live pipeline: a source thread and two stage threads around an :class:`~companion.engine.Engine`.

::

    source (file / sound device / MIDI) --put--> inbox (bounded)
        -> analysis thread: Engine.analyse (STFT, transcription)     --put--> analysed (bounded)
        -> decision thread: Engine.decide (tracker, identifier)      -> listeners(ScorePosition)

* The sound device's PortAudio callback only copies and enqueues
  (:class:`~companion.audio.sources.SoundDeviceSource`); that is the one place where input is dropped
  when the machine cannot keep up (counted there). The queues here are bounded and block the producer
  instead, so every block that entered the pipeline is processed, in order.
* :func:`run_offline` drives the same processors synchronously over the same block sequence, so a
  file gives the same positions in both modes (the engine is deterministic and each stage sees the
  same items in the same order).
* Positions go to listeners: any callable, e.g. :meth:`LatestQueue.put` for a GUI that only ever wants
  the newest one.

Inputs (:func:`open_input`): an audio file, ``mic`` (the default input device), ``device:N`` or
``device:NAME`` (a sound device), a ``.mid`` file, or ``midi:NAME`` / ``midi`` (a MIDI input port).
MIDI input skips the transcriber: its notes go straight to the identifier.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from companion.engine import Analysis, Engine, NoteBlock
from companion.events import PERF_NOTE_DTYPE, NoteEvent
from companion.tracking.follower import ScorePosition

__all__ = ["LatestQueue", "Input", "open_input", "blocks", "midi_blocks", "run_offline", "iter_positions",
           "Pipeline", "BLOCK_S"]

log = logging.getLogger(__name__)

#: seconds of input per block (and per position event): 2048 samples, 46 ms
BLOCK_S = 2048 / 44100
_END = object()


class LatestQueue:
    """A thread-safe one-slot mailbox: :meth:`put` replaces, :meth:`take` empties.

    Attributes
    ----------
    overwritten : int
        Items replaced before anyone took them (the consumer was slower than the producer).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Any = None
        self._full = False
        self.overwritten = 0

    def put(self, item: Any) -> None:
        with self._lock:
            if self._full:
                self.overwritten += 1
            self._item, self._full = item, True

    def take(self) -> Any:
        """The newest item, or None when nothing new arrived since the last take."""
        with self._lock:
            item, self._item, self._full = self._item, None, False
            return item


# ------------------------------------------------------------------------------------------- inputs
@dataclass
class Input:
    """An opened input: the source object, whether it is MIDI, and whether it ends by itself."""

    source: Any
    midi: bool
    finite: bool
    name: str


def open_input(spec: str, *, realtime: bool = False, block_s: float = BLOCK_S) -> Input:
    """Open an input named on the command line.

    Parameters
    ----------
    spec : str
        An audio file (``.wav .flac .ogg .mp3``), a MIDI file (``.mid .midi``), ``mic`` (default input
        device), ``device:N`` / ``device:NAME`` (a sound device by index or name), ``midi`` (the first
        MIDI input port) or ``midi:NAME``.
    realtime : bool
        Pace files in real time (devices and ports are live anyway).
    block_s : float
        Seconds per audio block.

    Raises
    ------
    companion.audio.sources.AudioError
        Unreadable file, no such device or port (opening a device happens when it is iterated).
    """
    from companion.audio.midi import MidiSource
    from companion.audio.sources import AudioFileError, FileSource, SoundDeviceSource

    block = max(1, int(round(block_s * 44100)))
    low = spec.lower()
    if low == "mic" or low.startswith("device:"):
        dev: int | str | None = None
        if low.startswith("device:"):
            rest = spec.split(":", 1)[1]
            dev = int(rest) if rest.strip().isdigit() else rest
        return Input(SoundDeviceSource(dev, block_size=1024), midi=False, finite=False, name=spec)
    if low == "midi" or low.startswith("midi:"):
        port = spec.split(":", 1)[1] if ":" in spec else None
        return Input(MidiSource(port), midi=True, finite=False, name=spec)
    p = Path(spec)
    if not p.is_file():
        raise AudioFileError(f"{spec}: no such file (inputs: an audio or MIDI file, mic, device:N, midi:NAME)")
    if p.suffix.lower() in (".mid", ".midi"):
        return Input(MidiSource(path=p, realtime=realtime), midi=True, finite=True, name=spec)
    return Input(FileSource(p, block_size=block, realtime=realtime), midi=False, finite=True, name=spec)


def midi_blocks(events: Iterable[NoteEvent], *, step_s: float = BLOCK_S) -> Iterator[NoteBlock]:
    """Group note events (sorted by onset, e.g. a MIDI file's) into :class:`NoteBlock` s of ``step_s``.

    Block ``k`` ends at ``(k + 1) * step_s`` and holds the notes with onsets before that; empty steps
    are emitted too, so time advances through pauses.
    """
    k = 1
    buf: list[tuple[float, int, int]] = []
    for e in events:
        while e.onset_s >= k * step_s:
            yield NoteBlock(k * step_s, np.array(buf, PERF_NOTE_DTYPE) if buf else np.zeros(0, PERF_NOTE_DTYPE))
            buf = []
            k += 1
        buf.append((e.onset_s, e.pitch, e.velocity))
    yield NoteBlock(k * step_s, np.array(buf, PERF_NOTE_DTYPE) if buf else np.zeros(0, PERF_NOTE_DTYPE))


def _live_midi_blocks(source: Any, *, step_s: float, stop: threading.Event) -> Iterator[NoteBlock]:
    """A live MIDI port as :class:`NoteBlock` s every ``step_s`` of wall time (notes keep their own
    timestamps; the block's end is the port's clock)."""
    inbox: queue.Queue = queue.Queue()

    def reader() -> None:
        try:
            for e in source:
                inbox.put(e)
        finally:
            inbox.put(_END)

    source.start()
    t0 = time.monotonic()
    threading.Thread(target=reader, name="companion-midi-in", daemon=True).start()
    k, done = 1, False
    while not done and not stop.is_set():
        delay = t0 + k * step_s - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        rows = []
        while True:
            try:
                e = inbox.get_nowait()
            except queue.Empty:
                break
            if e is _END:
                done = True
                break
            rows.append((e.onset_s, e.pitch, e.velocity))
        end = max(k * step_s, max((r[0] for r in rows), default=0.0))
        yield NoteBlock(end, np.array(rows, PERF_NOTE_DTYPE) if rows else np.zeros(0, PERF_NOTE_DTYPE))
        k += 1
    source.close()


def blocks(inp: Input, *, step_s: float = BLOCK_S, stop: threading.Event | None = None) -> Iterator[Any]:
    """The engine's input items of an opened :class:`Input`: audio sample arrays or NoteBlocks."""
    stop = stop or threading.Event()
    if inp.midi:
        if inp.finite:
            yield from midi_blocks(inp.source, step_s=step_s)
        else:
            yield from _live_midi_blocks(inp.source, step_s=step_s, stop=stop)
        return
    for b in inp.source:
        if stop.is_set():
            return
        yield b.samples


# ------------------------------------------------------------------------------------------ offline
def run_offline(items: Iterable[Any], engine: Engine, *, finite: bool = True,
                on_position: Callable[[ScorePosition], None] | None = None) -> list[ScorePosition]:
    """Drive the engine synchronously over a block sequence (the deterministic mode).

    Parameters
    ----------
    items : iterable
        Audio blocks (``np.ndarray`` or ``AudioBlock``) or :class:`NoteBlock` s, e.g. :func:`blocks`.
    engine : Engine
        Reset first.
    finite : bool
        Flush the engine at the end (a file).
    on_position : callable, optional
        Called with every position as it is produced.

    Returns
    -------
    list of ScorePosition
        One per block (plus one for the flush).
    """
    out: list[ScorePosition] = []
    for pos in iter_positions(items, engine, finite=finite):
        out.append(pos)
        if on_position is not None:
            on_position(pos)
    return out


def iter_positions(items: Iterable[Any], engine: Engine, *, finite: bool = True,
                   stop: threading.Event | None = None) -> Iterator[ScorePosition]:
    """The positions of :func:`run_offline`, one at a time, in the caller's thread (e.g. a GUI worker:
    ``FollowWorker(lambda stop: (p.to_json() for p in iter_positions(blocks(inp, stop=stop), engine)))``).

    Parameters
    ----------
    items, engine, finite
        As :func:`run_offline` (the engine is reset first).
    stop : threading.Event, optional
        End early (no flush) once set.
    """
    engine.reset()
    for item in items:
        if stop is not None and stop.is_set():
            return
        yield from engine.process(item)
    if finite:
        yield from engine.flush()


# ----------------------------------------------------------------------------------------- threaded
class Pipeline:
    """The engine in stage threads, linked by bounded queues.

    Parameters
    ----------
    items : iterable
        The input items (:func:`blocks`); iterated in the source thread.
    engine : Engine
    listeners : sequence of callable
        Each is called with every :class:`ScorePosition`, in order, in the decision thread (keep them
        quick: e.g. ``LatestQueue.put`` or a print).
    finite : bool
        The input ends by itself: flush the engine at its end.
    queue_blocks : int
        Capacity of each queue between stages.

    Attributes
    ----------
    error : BaseException or None
        What stopped a stage, if anything.
    n_positions : int
    """

    def __init__(self, items: Iterable[Any], engine: Engine, *,
                 listeners: Iterable[Callable[[ScorePosition], None]] = (), finite: bool = True,
                 queue_blocks: int = 32) -> None:
        self.items = items
        self.engine = engine
        self.listeners = list(listeners)
        self.finite = bool(finite)
        self.inbox: queue.Queue = queue.Queue(maxsize=int(queue_blocks))
        self.analysed: queue.Queue = queue.Queue(maxsize=int(queue_blocks))
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.n_positions = 0
        self._threads = [threading.Thread(target=self._guard, args=(f,), name=f"companion-{n}", daemon=True)
                         for n, f in (("source", self._source), ("analysis", self._analysis),
                                      ("decision", self._decision))]

    def start(self) -> "Pipeline":
        self.engine.reset()
        for th in self._threads:
            th.start()
        return self

    def stop(self) -> None:
        """Ask every stage to stop (the input iteration ends at its next item)."""
        self.stop_event.set()
        close = getattr(self.items, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort
                pass

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the stages to finish; True when they did."""
        end = None if timeout is None else time.monotonic() + timeout
        for th in self._threads:
            th.join(None if end is None else max(0.0, end - time.monotonic()))
        return not any(th.is_alive() for th in self._threads)

    def run(self) -> int:
        """Start, wait until the input ends (or :meth:`stop`), re-raise a stage's error."""
        self.start()
        try:
            while not self.join(0.2):
                pass
        except KeyboardInterrupt:
            self.stop()
            self.join(5.0)
        if self.error is not None:
            raise self.error
        return self.n_positions

    # -- stages ------------------------------------------------------------------------------------
    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through .error
            if self.error is None:
                self.error = exc
            log.debug("pipeline stage failed", exc_info=True)
            self.stop_event.set()
            for q in (self.inbox, self.analysed):  # unblock the other stages
                try:
                    q.put_nowait(_END)
                except queue.Full:
                    pass

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self.stop_event.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> Any:
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    return _END

    def _source(self) -> None:
        try:
            for item in self.items:
                if self.stop_event.is_set() or not self._put(self.inbox, item):
                    break
        finally:
            if not self._put(self.inbox, _END):
                try:
                    self.inbox.put_nowait(_END)
                except queue.Full:  # stopping: the analysis stage ends on the stop event
                    pass

    def _analysis(self) -> None:
        try:
            while True:
                item = self._get(self.inbox)
                if item is _END:
                    if self.finite and not self.stop_event.is_set():
                        self._put(self.analysed, self.engine.analyse_flush())
                    break
                if not self._put(self.analysed, self.engine.analyse(item)):
                    break
        finally:
            self._put(self.analysed, _END)

    def _decision(self) -> None:
        while True:
            a = self._get(self.analysed)
            if a is _END:
                return
            assert isinstance(a, Analysis)
            for pos in self.engine.decide(a):
                self.n_positions += 1
                for fn in self.listeners:
                    fn(pos)
