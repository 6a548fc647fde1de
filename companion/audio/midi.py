"""MIDI input: note onsets straight from a digital piano (or a ``.mid`` file), no transcription needed.

:class:`MidiSource` yields :class:`~companion.events.NoteEvent` with ``onset_s`` on the stream's clock:
for a file, the file's own timing; for a live port, seconds since :meth:`MidiSource.start` counted at
the audio sample rate (``round(t * 44100) / 44100``), so MIDI and audio streams share one clock.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from companion.audio.sources import DEFAULT_SAMPLE_RATE, AudioDeviceError, AudioFileError
from companion.events import PERF_NOTE_DTYPE, NoteEvent

__all__ = ["MidiSource", "read_midi_notes", "read_midi_file", "midi_input_names"]

log = logging.getLogger(__name__)


def read_midi_notes(path: str | os.PathLike) -> np.ndarray:
    """Note onsets of a MIDI file (all tracks and channels), sorted.

    Returns
    -------
    np.ndarray, dtype PERF_NOTE_DTYPE

    Raises
    ------
    AudioFileError
        Missing or unreadable file.
    """
    return read_midi_file(path)[0]


def read_midi_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Notes of a MIDI file (all tracks and channels) with their durations.

    A note lasts from its note-on to the first matching note-off (or note-on with velocity 0) on the
    same channel and key; a note never released lasts to the end of the file (at least 0.1 s).

    Returns
    -------
    notes : np.ndarray, dtype PERF_NOTE_DTYPE, sorted by onset then pitch
    duration_s : np.ndarray [shape=(n_notes,)]

    Raises
    ------
    AudioFileError
        Missing or unreadable file.
    """
    import mido

    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"{p}: no such file")
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    rows: list[tuple[float, int, int, float]] = []
    t = 0.0
    try:
        for msg in mido.MidiFile(str(p)):  # merged tracks; msg.time in seconds
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                active.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = active.get((msg.channel, msg.note))
                if stack:
                    on, vel = stack.pop(0)
                    rows.append((on, msg.note, vel, t - on))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        raise AudioFileError(f"{p}: not a readable MIDI file ({e})") from None
    for (_, key), stack in active.items():
        rows.extend((on, key, vel, max(t - on, 0.1)) for on, vel in stack)
    rows.sort()
    notes = np.zeros(len(rows), dtype=PERF_NOTE_DTYPE)
    duration_s = np.zeros(len(rows))
    for i, (on, key, vel, dur) in enumerate(rows):
        notes[i] = (on, key, vel)
        duration_s[i] = dur
    return notes, duration_s


def midi_input_names() -> list[str]:
    """Names of the MIDI input ports (python-rtmidi); empty when there are none."""
    import mido

    try:
        return list(mido.get_input_names())
    except Exception as e:  # noqa: BLE001 - rtmidi raises various errors without a MIDI system
        log.debug("no MIDI inputs: %s", e)
        return []


class MidiSource:
    """Note events from a MIDI input port or a MIDI file.

    Parameters
    ----------
    port : str or None
        Input port name (or a unique substring of it); ``None`` = the first port. Ignored with ``path``.
    path : str, PathLike or None
        Read this ``.mid`` file instead of a port.
    realtime : bool
        For a file: deliver each note no earlier than its onset after the start (pacing only).
    sample_rate : int
        Clock rate onsets are quantised to.
    timeout_s : float or None
        Live port: iteration ends after this long without a note (``None``: until :meth:`close`).

    Raises
    ------
    AudioDeviceError
        No MIDI input port (or none matching ``port``).
    AudioFileError
        Unreadable ``path``.
    """

    def __init__(self, port: str | None = None, *, path: str | os.PathLike | None = None,
                 realtime: bool = False, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 timeout_s: float | None = None) -> None:
        self.port_name = port
        self.path = Path(path) if path is not None else None
        self.realtime = bool(realtime)
        self.sample_rate = int(sample_rate)
        self.timeout_s = timeout_s
        self._notes = read_midi_notes(self.path) if self.path is not None else None
        self._port = None
        self._queue: queue.Queue = queue.Queue()
        self._t0 = 0.0
        self._stop = threading.Event()

    def start(self) -> None:
        """Open the input port (no-op for a file)."""
        if self._notes is not None or self._port is not None:
            return
        import mido

        names = midi_input_names()
        if not names:
            raise AudioDeviceError("no MIDI input port found (is the keyboard connected?)")
        if self.port_name is None:
            name = names[0]
        else:
            hits = [n for n in names if n == self.port_name] or \
                   [n for n in names if self.port_name.lower() in n.lower()]
            if len(hits) != 1:
                raise AudioDeviceError(f"MIDI input {self.port_name!r} not found uniquely; available: "
                                       + ", ".join(repr(n) for n in names))
            name = hits[0]
        self._t0 = time.monotonic()
        try:
            self._port = mido.open_input(name, callback=self._callback)
        except Exception as e:  # noqa: BLE001 - rtmidi errors
            raise AudioDeviceError(f"cannot open MIDI input {name!r}: {e}") from None
        log.info("MIDI input %r", name)

    def _callback(self, msg) -> None:  # rtmidi thread: timestamp and enqueue only
        if msg.type == "note_on" and msg.velocity > 0:
            t = round((time.monotonic() - self._t0) * self.sample_rate) / self.sample_rate
            self._queue.put_nowait(NoteEvent(t, int(msg.note), int(msg.velocity)))

    def close(self) -> None:
        self._stop.set()
        if self._port is not None:
            self._port.close()
            self._port = None

    def __iter__(self) -> Iterator[NoteEvent]:
        self._stop.clear()
        if self._notes is not None:
            t0 = time.monotonic()
            for n in self._notes:
                if self._stop.is_set():
                    return
                if self.realtime:
                    delay = t0 + float(n["onset_s"]) - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                yield NoteEvent(float(n["onset_s"]), int(n["pitch"]), int(n["velocity"]))
            return
        self.start()
        while not self._stop.is_set():
            try:
                yield self._queue.get(timeout=self.timeout_s if self.timeout_s is not None else 0.1)
            except queue.Empty:
                if self.timeout_s is not None:
                    return
