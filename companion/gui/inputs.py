"""What the window can listen to, and the follow jobs it starts (no Qt here).

A job is a callable ``job(stop_event) -> iterable of position dicts`` that the
:class:`~companion.gui.bridge.Bridge` runs in its worker thread.
"""

from __future__ import annotations

import logging
import os
import queue
from typing import Any, Callable, Iterable

from companion.gui.worker import LatestQueue
from companion.score.model import Piece

__all__ = ["audio_job", "midi_job", "identification_available", "changed_since_build", "input_devices",
           "midi_inputs"]

log = logging.getLogger(__name__)

Job = Callable[[Any], Iterable[dict]]


def audio_job(blocks: Callable[[Any], Iterable], *, piece: Piece | None, db: Any, levels: LatestQueue,
              events: queue.Queue, stop_at_s: float | None = None) -> Job:
    """Follow audio blocks (``blocks(stop)``) in ``piece``; with a ``db``, identify the piece first."""
    from companion.gui.worker import audio_positions, identify_then_follow

    if db is not None:
        return lambda stop: identify_then_follow(db, blocks(stop), on_piece=lambda pid: events.put(("piece", pid)),
                                                 on_level=levels.put, stop_at_s=stop_at_s, stop=stop)
    return lambda stop: audio_positions(piece, blocks(stop), on_level=levels.put, stop_at_s=stop_at_s, stop=stop)


def midi_job(notes: Callable[[Any], Iterable], *, piece: Piece | None, db: Any, levels: LatestQueue,
             events: queue.Queue, stop_at_s: float | None = None) -> Job:
    """Follow MIDI note events (``notes(stop)``) in ``piece``; with a ``db``, identify the piece first."""
    from companion.gui.midi_follow import identify_then_follow_midi, midi_positions

    if db is not None:
        return lambda stop: identify_then_follow_midi(db, notes(stop), on_level=levels.put, stop=stop,
                                                      on_piece=lambda pid: events.put(("piece", pid)),
                                                      stop_at_s=stop_at_s)
    return lambda stop: midi_positions(piece, notes(stop), on_level=levels.put, stop_at_s=stop_at_s, stop=stop)


def identification_available() -> bool:
    """Whether the fingerprint identifier and the transcriber are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("companion.fingerprint.identify", "companion.transcription.transcriber"))


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
