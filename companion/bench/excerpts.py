"""Excerpts of ASAP performances as the engine benchmark feeds them: rendered audio, or the
performance MIDI itself (a digital piano).

Both kinds answer the same questions, so that :mod:`companion.bench.engine_bench` runs every
experiment on either: cut an excerpt (``cut``), join two (``splice``), give its notes to the identifier
(``notes``: transcribed audio, or the played notes) and run an engine over it in the product's blocks
(``run``). An excerpt's clock starts at 0.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SR", "BLOCK", "Renders", "AudioExcerpts", "MidiClip", "MidiExcerpts", "run_audio"]

SR = 44100
#: audio block of the benchmark runs (engine and tracker): what ``companion follow`` reads from a file,
#: ``companion.pipeline.BLOCK_S`` (a microphone gives 1024-sample blocks)
BLOCK = 2048


class Renders:
    """Whole performances rendered per soundfont, cached as FLAC; the last few kept in memory."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self._mem: dict[tuple[str, str], np.ndarray] = {}

    def audio(self, perf, soundfont: str) -> np.ndarray:
        import soundfile as sf

        from companion.audio.render import render_midi

        k = (perf.name, soundfont)
        if k in self._mem:
            return self._mem[k]
        flac = self.cache / f"{perf.name.replace('/', '_')}_{soundfont}.flac"
        if not flac.is_file():
            with tempfile.TemporaryDirectory() as tmp:
                wav = render_midi(perf.midi, Path(tmp) / "x.wav", soundfont)
                x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
                # written beside, then renamed: another benchmark process never reads a half-written file
                part = flac.with_name(f"{flac.name}.{os.getpid()}.part")
                sf.write(str(part), x.mean(axis=1), sr, format="FLAC")
                os.replace(part, flac)
        x, sr = sf.read(str(flac), dtype="float32")
        assert sr == SR
        if len(self._mem) >= 3:
            self._mem.pop(next(iter(self._mem)))
        self._mem[k] = x
        return x


class AudioExcerpts:
    """Excerpts of performances rendered with one soundfont (``name``), in :data:`BLOCK`-sample blocks."""

    midi = False

    def __init__(self, renders: Renders, soundfont: str) -> None:
        self.renders = renders
        self.name = soundfont
        self._transcriber = None

    def cut(self, perf, t0: float, t1: float) -> np.ndarray:
        """The audio of ``perf`` (a :class:`~companion.bench.asap.Performance`) from ``t0`` to ``t1`` s."""
        return self.renders.audio(perf, self.name)[int(t0 * SR):int(t1 * SR)]

    def splice(self, a: np.ndarray, b: np.ndarray, part_s: float) -> np.ndarray:
        """``a`` (padded with silence to ``part_s``), then ``b``."""
        return np.concatenate([np.pad(a, (0, max(0, int(part_s * SR) - len(a)))), b])

    def seconds(self, x: np.ndarray) -> float:
        return len(x) / SR

    def notes(self, x: np.ndarray) -> np.ndarray:
        """The excerpt transcribed whole (as ``companion identify`` does an audio file)."""
        from companion.events import perf_notes
        from companion.transcription.transcriber import Transcriber

        if self._transcriber is None:
            self._transcriber = Transcriber()
        return perf_notes(self._transcriber.transcribe(x, online=False))

    def run(self, engine: Any, x: np.ndarray) -> tuple[list, float]:
        return run_audio(engine, x)


def run_audio(engine: Any, audio: np.ndarray) -> tuple[list, float]:
    """The engine's positions over ``audio`` in :data:`BLOCK`-sample blocks (one per block) and the
    process CPU seconds."""
    return _run_timed(engine, (audio[i:i + BLOCK] for i in range(0, len(audio), BLOCK)))


def _run_timed(engine: Any, items) -> tuple[list, float]:
    """:func:`companion.pipeline.run_offline` and the process CPU seconds it took."""
    from companion.pipeline import run_offline

    t0 = time.process_time()
    pos = run_offline(items, engine)
    return pos, time.process_time() - t0


@dataclass(frozen=True)
class MidiClip:
    """Played notes (``PERF_NOTE_DTYPE``, onsets from 0) of an excerpt ``seconds`` long."""

    notes: np.ndarray
    seconds: float


class MidiExcerpts:
    """Excerpts of the performance MIDI files themselves: what a digital piano sends. The engine gets
    them as ``companion follow`` reads a MIDI file, in note blocks every ``BLOCK / SR`` seconds."""

    midi = True
    name = "midi"

    def __init__(self) -> None:
        self._notes: dict[str, np.ndarray] = {}

    def _all(self, perf) -> np.ndarray:
        from companion.bench.asap import load_performance_notes

        notes = self._notes.get(perf.name)
        if notes is None:
            notes = self._notes[perf.name] = load_performance_notes(perf.midi)[0]
        return notes

    def cut(self, perf, t0: float, t1: float) -> MidiClip:
        n = self._all(perf)
        sel = n[(n["onset_s"] >= t0) & (n["onset_s"] < t1)].copy()
        sel["onset_s"] -= t0
        return MidiClip(sel, t1 - t0)

    def splice(self, a: MidiClip, b: MidiClip, part_s: float) -> MidiClip:
        later = b.notes.copy()
        later["onset_s"] += part_s
        return MidiClip(np.concatenate([a.notes, later]), part_s + b.seconds)

    def seconds(self, x: MidiClip) -> float:
        return x.seconds

    def notes(self, x: MidiClip) -> np.ndarray:
        return x.notes

    def blocks(self, x: MidiClip) -> list:
        """The clip as ``companion follow`` reads a MIDI file (:func:`companion.pipeline.midi_blocks`),
        with empty blocks on to the clip's end (a file ends at its last note)."""
        from companion.engine import NoteBlock
        from companion.events import PERF_NOTE_DTYPE, NoteEvent
        from companion.pipeline import BLOCK_S, midi_blocks

        out = list(midi_blocks([NoteEvent(float(n["onset_s"]), int(n["pitch"]), int(n["velocity"]))
                                for n in x.notes], step_s=BLOCK_S))
        k = len(out)
        while k * BLOCK_S < x.seconds - 1e-9:
            k += 1
            out.append(NoteBlock(k * BLOCK_S, np.zeros(0, PERF_NOTE_DTYPE)))
        return out

    def run(self, engine: Any, x: MidiClip) -> tuple[list, float]:
        return _run_timed(engine, self.blocks(x))
