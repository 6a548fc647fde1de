"""What the window can listen to, and the follow jobs it starts (no Qt here).

A job is a callable ``job(stop_event) -> iterable of position dicts`` that the
:class:`~companion.gui.bridge.Bridge` runs in its worker thread. Every job runs the engine
(:mod:`companion.engine`, issue 5): without a chosen piece it identifies the piece while listening and
follows it, re-identifying after jumps, and its positions name the piece (``source``), which the window
opens; with a chosen piece it follows that piece from any bar (the engine's piece mode).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable

import numpy as np

from companion.gui.worker import LatestQueue
from companion.score.model import Piece

__all__ = ["audio_job", "midi_job", "identification_available", "changed_since_build", "input_devices",
           "midi_inputs"]

log = logging.getLogger(__name__)

Job = Callable[[Any], Iterable[dict]]


def audio_job(blocks: Callable[[Any], Iterable], *, piece: Piece | None, db: Any, levels: LatestQueue,
              stop_at_s: float | None = None, finite: bool = True) -> Job:
    """Follow audio blocks (``blocks(stop)``, :class:`~companion.audio.sources.AudioBlock`) through
    the engine (:class:`companion.engine.Engine`): with a ``db``, it identifies the piece while
    listening, follows it, and re-identifies after jumps; without one, it follows ``piece`` from
    whatever bar the player starts at (its piece mode, as ``companion follow --piece``)."""
    from companion.gui.worker import level_dbfs

    def samples(stop):
        for block in blocks(stop):
            levels.put(level_dbfs(block.samples))
            yield block.samples
            if stop_at_s is not None and (block.start_sample + len(block.samples)) / block.sample_rate >= stop_at_s:
                return

    return _engine_job(samples, piece=piece, db=db, midi=False, finite=finite)


def midi_job(notes: Callable[[Any], Any], *, piece: Piece | None, db: Any, levels: LatestQueue,
             stop_at_s: float | None = None, finite: bool = True) -> Job:
    """Follow MIDI notes (``notes(stop)``: a :class:`~companion.audio.midi.MidiSource`) through the
    engine, which matches the played notes to the score's: with a ``db``, it identifies the piece
    from the notes and follows it; without one, it follows ``piece`` from the first note, or from
    wherever the identifier (restricted to the piece) finds the player (its piece mode, as
    ``companion follow --piece`` on a MIDI input)."""

    def note_blocks(stop):
        from companion.pipeline import Input, blocks

        for nb in blocks(Input(notes(stop), midi=True, finite=finite, name="midi"), stop=stop):
            if len(nb.notes):
                levels.put(float(20.0 * np.log10(max(int(nb.notes["velocity"].max()), 1) / 127.0)))
            yield nb
            if stop_at_s is not None and nb.end_s >= stop_at_s:
                return

    return _engine_job(note_blocks, piece=piece, db=db, midi=True, finite=finite)


def _engine_job(items: Callable[[Any], Iterable], *, piece: Piece | None, db: Any, midi: bool,
                finite: bool) -> Job:
    """The job that runs the engine over ``items(stop)``: over ``db``, or without one in ``piece``
    alone (piece mode)."""
    def job(stop):
        if db is None:
            from companion.db.subset import PieceList

            return _engine_positions(PieceList([piece]), items(stop), midi=midi, finite=finite, stop=stop, piece=0)
        return _engine_positions(db, items(stop), midi=midi, finite=finite, stop=stop)

    return job


def _engine_positions(db: Any, items: Iterable, *, midi: bool, finite: bool, stop,
                      piece: int | None = None) -> Iterable[dict]:
    from companion.engine import Engine
    from companion.pipeline import iter_positions

    engine = Engine(db, midi=midi, piece=piece)
    for pos in iter_positions(items, engine, finite=finite, stop=stop):
        yield pos.to_json()


def identification_available() -> bool:
    """Whether the engine (identifier, transcriber, tracker) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("companion.engine", "companion.pipeline", "companion.fingerprint.identify",
                         "companion.transcription.transcriber"))


def changed_since_build(db, pid: int) -> bool:
    """Whether a database piece's file changed since the build checked it (then check it again)."""
    try:
        mtime, size = db.file_stats[pid]
        st = os.stat(db.metas[pid].source)
        return not (int(size) == st.st_size and abs(float(mtime) - st.st_mtime) < 1e-3)
    except (OSError, IndexError, TypeError, ValueError, AttributeError):
        return True


def midi_inputs() -> list[str]:
    """Names of the MIDI input ports (empty without a MIDI system)."""
    import sys

    if sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"):
        return []  # no ALSA sequencer: rtmidi would only print an error
    try:
        from companion.audio.midi import midi_input_names

        return midi_input_names()
    except Exception:  # no rtmidi backend
        log.debug("listing MIDI inputs failed", exc_info=True)
        return []


def input_devices() -> list[str]:
    """Names of the audio input devices (empty when PortAudio or devices are missing)."""
    try:
        import sounddevice as sd

        return [d["name"] for d in sd.query_devices() if int(d.get("max_input_channels", 0)) > 0]
    except Exception:  # no PortAudio library, or no audio system at all
        log.debug("listing audio devices failed", exc_info=True)
        return []
