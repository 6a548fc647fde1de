"""Render notes or MIDI files to audio with fluidsynth (for the demo, tests and benchmarks).

Synthesised piano is an upper bound for real recordings: always measure with at least two soundfonts.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["SOUNDFONTS", "available_soundfonts", "render_midi", "write_midi", "render_notes"]

log = logging.getLogger(__name__)

#: Debian's soundfonts (packages timgm6mb-soundfont, fluidr3mono-gm-soundfont, fluid-soundfont-gm)
SOUNDFONTS: dict[str, Path] = {
    "timgm6mb": Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    "fluidr3mono": Path("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3"),
    "fluidr3": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
}


def available_soundfonts() -> dict[str, Path]:
    """The soundfonts of :data:`SOUNDFONTS` present on this machine (fluidsynth must be too)."""
    if shutil.which("fluidsynth") is None:
        return {}
    return {k: p for k, p in SOUNDFONTS.items() if p.exists()}


def render_midi(midi_path: str | os.PathLike, out_wav: str | os.PathLike, soundfont: str | os.PathLike,
                *, sample_rate: int = 44100, gain: float = 1.0) -> Path:
    """Render a MIDI file to a WAV file with fluidsynth (about 100x faster than real time)."""
    sf = SOUNDFONTS.get(str(soundfont), Path(soundfont))
    cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-F", str(out_wav), str(sf),
           str(midi_path)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return Path(out_wav)


def write_midi(path: str | os.PathLike, onset_s: np.ndarray, pitch: np.ndarray,
               duration_s: np.ndarray | float = 0.3, velocity: np.ndarray | int = 72,
               *, program: int = 0) -> Path:
    """Write notes to a one-track MIDI file (tempo 120 bpm, 480 ticks per beat, so 960 ticks/s)."""
    import mido

    onset_s = np.asarray(onset_s, float)
    n = len(onset_s)
    duration_s = np.broadcast_to(np.asarray(duration_s, float), (n,))
    velocity = np.broadcast_to(np.asarray(velocity, int), (n,))
    pitch = np.asarray(pitch, int)
    ticks_per_s = 960.0
    events: list[tuple[int, int, int, int]] = []  # (tick, order, pitch, velocity); note-offs first
    for o, d, p, v in zip(onset_s, duration_s, pitch, velocity):
        on = int(round(max(o, 0.0) * ticks_per_s))
        off = max(on + 1, int(round((max(o, 0.0) + max(d, 0.02)) * ticks_per_s)))
        events.append((on, 1, int(p), int(np.clip(v, 1, 127))))
        events.append((off, 0, int(p), 0))
    events.sort()
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    last = 0
    for tick, _, p, v in events:
        track.append(mido.Message("note_on", note=p, velocity=v, time=tick - last))
        last = tick
    mid.save(str(path))
    return Path(path)


def render_notes(onset_s: np.ndarray, pitch: np.ndarray, duration_s: np.ndarray | float = 0.3,
                 velocity: np.ndarray | int = 72, *, soundfont: str | os.PathLike = "timgm6mb",
                 sample_rate: int = 44100) -> np.ndarray:
    """Render notes to a mono float32 signal, shape ``(n_samples,)``."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="companion-render-") as tmp:
        mid = write_midi(Path(tmp) / "x.mid", onset_s, pitch, duration_s, velocity)
        wav = render_midi(mid, Path(tmp) / "x.wav", soundfont, sample_rate=sample_rate)
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == sample_rate
    return audio.mean(axis=1)
