"""Follow MIDI input (a digital piano, or a ``.mid`` file) with the audio tracker (no Qt here).

The chroma tracker (:class:`companion.tracking.follower.Follower`) reads magnitude spectrogram frames.
:class:`MidiSpectrogram` renders note events into such frames (2048-point STFT bins, 100 frames per
second): each note is a harmonic series with an exponential decay, the same model the tracker uses to
synthesise the score side, at the magnitude a moderately loud piano note has in the real STFT. MIDI
then takes the tracker's audio path unchanged, without a synthesiser or a sound card.

A keyboard sends no sound between notes, so frames are produced up to each new note: positions are
updated at every note played (and the tail of the last notes is rendered when a file ends).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from companion.score.model import Piece

__all__ = ["MidiSpectrogram", "midi_positions"]

log = logging.getLogger(__name__)

#: harmonic number -> relative magnitude (as the tracker's score model)
HARMONICS = ((1, 1.0), (2, 0.55), (3, 0.35), (4, 0.25), (5, 0.15), (6, 0.1))


class MidiSpectrogram:
    """Note events in, magnitude spectrogram frames out.

    Parameters
    ----------
    sample_rate : int
    hop_size : int
        Samples per frame (441 at 44.1 kHz: 100 fps, as :mod:`companion.transcription.features`).
    n_fft : int
        STFT size; frames have ``n_fft // 2 + 1`` bins.
    decay_s : float
        Decay time constant of middle C; lower notes ring longer (doubling every two octaves down).
    peak_magnitude : float
        STFT magnitude of a note's fundamental at velocity 80, as measured on rendered piano.
    max_len_s : float
        A note is dropped this long after its onset (no note-offs are needed).
    """

    def __init__(self, *, sample_rate: int = 44100, hop_size: int = 441, n_fft: int = 2048,
                 decay_s: float = 1.2, peak_magnitude: float = 40.0, max_len_s: float = 4.0) -> None:
        self.sample_rate = int(sample_rate)
        self.hop_size = int(hop_size)
        self.n_bins = n_fft // 2 + 1
        self.fps = self.sample_rate / self.hop_size
        self.decay_s = float(decay_s)
        self.peak_magnitude = float(peak_magnitude)
        self.max_len_s = float(max_len_s)
        self._bin_hz = self.sample_rate / n_fft
        self.reset()

    def reset(self) -> None:
        self.next_frame = 0  # first frame not produced yet
        self._notes: list[tuple[float, int, float]] = []  # (onset_s, pitch, amplitude)

    def add(self, onset_s: float, pitch: int, velocity: int) -> None:
        """A note starts (its onset must not precede frames already produced; it is clamped)."""
        onset_s = max(float(onset_s), self.next_frame / self.fps)
        self._notes.append((onset_s, int(pitch), self.peak_magnitude * max(int(velocity), 1) / 80.0))

    def process(self, until_s: float) -> np.ndarray:
        """Frames from :attr:`next_frame` up to (not including) the frame at ``until_s``.

        Returns
        -------
        spec : np.ndarray [shape=(n_frames, n_fft // 2 + 1), dtype=float32]
        """
        stop = int(np.floor(float(until_s) * self.fps + 1e-9))
        n = max(stop - self.next_frame, 0)
        spec = np.zeros((n, self.n_bins), np.float32)
        if n == 0:
            return spec
        t = (self.next_frame + np.arange(n)) / self.fps
        self._notes = [nt for nt in self._notes if nt[0] + self.max_len_s > t[0]]
        for onset, pitch, amp in self._notes:
            dt = t - onset
            on = dt >= 0
            if not on.any():
                continue
            tau = self.decay_s * 2.0 ** ((60 - pitch) / 24.0)
            env = np.where(on & (dt < self.max_len_s), np.exp(-np.maximum(dt, 0.0) / tau), 0.0) * amp
            f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
            for h, w in HARMONICS:
                k = f0 * h / self._bin_hz
                k0 = int(k)
                if k0 + 1 >= self.n_bins:
                    break
                frac = k - k0  # split between the two nearest bins, as a windowed sinusoid spreads
                spec[:, k0] += (w * (1.0 - frac) * env).astype(np.float32)
                spec[:, k0 + 1] += (w * frac * env).astype(np.float32)
        self.next_frame = stop
        return spec


def _level(velocity: int) -> float:
    return float(20.0 * np.log10(max(int(velocity), 1) / 127.0))


def midi_positions(piece: Piece, events: Iterable, *, follower: Any = None,
                   on_level: Callable[[float], None] | None = None, stop_at_s: float | None = None,
                   stop: threading.Event | None = None, tail_s: float = 2.0) -> Iterator[dict]:
    """Follow MIDI note events (:class:`companion.events.NoteEvent`, sorted) in ``piece``.

    Yields
    ------
    dict
        ``companion follow``'s position object, once per note (and at the end of a finite input).
    """
    if follower is None:
        from companion.tracking.follower import Follower

        follower = Follower(piece)
    synth = MidiSpectrogram()
    t = 0.0
    for ev in events:
        if stop is not None and stop.is_set():
            return
        t = float(ev.onset_s)
        if stop_at_s is not None and t > stop_at_s:
            t = stop_at_s
            break
        result = follower.process_spec(synth.process(t))
        synth.add(t, ev.pitch, ev.velocity)
        if on_level is not None:
            on_level(_level(ev.velocity))
        if len(result):
            yield follower.position(result, len(result) - 1, t).to_json()
    end = t + tail_s if stop_at_s is None else min(t + tail_s, stop_at_s)
    result = follower.process_spec(synth.process(end))
    if len(result):
        yield follower.position(result, len(result) - 1, end).to_json()
