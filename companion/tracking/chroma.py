"""Chroma features for score following: synthesised from the score, and computed from the audio.

Both sides produce the same frame (36-dimensional by default):

* ``[0:24]`` **bass and treble chroma**: pitch-class energy below and from ``ChromaParams.bass_split``
  (MIDI 48, C3) upwards, 12 bins each, max-normalised together, log-compressed (``log1p(gamma * x)``)
  and L2-normalised; compared with a cosine distance. Piano textures put different pitch classes in
  the left and the right hand (an Alberti bass under a melody, a pedal point under moving chords),
  which one 12-bin chroma mixes; the bass chroma of chord recognition (Mauch & Dixon 2010) keeps it
  apart. On the tracking benchmark's held-out set the notes reached within 250 ms went from 81.9 to
  84.1 % and those in the right bar from 88.1 to 88.5 %; over all four development sets (one of which
  lost 2 points) +0.2 / +0.6 points, within noise (``bench/results/tracking.md``; splits at MIDI 45-60
  all gained a little on the tuning and held-out sets, 64 lost). ``bass_split = 0`` gives the plain
  12-bin chroma.
* the last 12: **onset chroma**, compared with half the L1 distance; it sharpens timing, which
  sustained chroma alone smears. By default (``ChromaParams.note_onsets``) it is the transcriber's note
  activations (madmom's BRNN, which already runs for the identifier) folded to pitch classes and
  scaled to a sum of at most 1 (``x / (sum(x) + floor)``), so that quiet stretches give an
  almost-zero vector and clear onsets a distribution; the score side puts the notes' fundamentals on
  their onset frames. The activations come 80 ms after the spectrum (the network's look-ahead), so
  the newest frames are followed provisionally with the **positive spectral difference** instead (the
  half-wave rectified increase of the log-compressed pitch spectrum, the feature of Dixon's MATCH,
  scaled alike; the score side: the notes' harmonics), until their activations arrive
  (:class:`~companion.tracking.follower.Follower`). On the tracking benchmark's four sets the
  activations raised the notes in the right bar from 91.8 to 92.8 % and those within 250 ms from 84.4
  to 86.6 % (bench/results/tracking.md); waiting for them without the provisional frames lost bars in
  fast music.

The audio side reads the magnitude spectrogram that the transcriber's incremental STFT already
computes (2048-sample Hann window, hop 441 at 44.1 kHz = 100 fps); no second STFT is run.

References
----------
.. [1] S. Dixon, "Live tracking of musical performances using on-line time warping", DAFx 2005.
.. [2] M. Müller, F. Kurth, M. Clausen, "Audio matching via chroma-based statistical features"
       (CENS), ISMIR 2005.
.. [3] M. Mauch, S. Dixon, "Simultaneous estimation of chords and musical context from audio",
       IEEE TASLP 18(6), 2010 (bass and treble chroma).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from companion.score.model import Piece

__all__ = ["N_FEATURES", "ChromaParams", "AudioChroma", "ScoreFeatures", "score_features", "score_axis",
           "pitch_filterbank", "frame_distance", "activation_onsets"]

#: frame size with the default parameters (24 chroma + 12 onset bins); see ``ChromaParams.n_features``
N_FEATURES = 36
#: lowest and highest MIDI pitch of the semitone filterbank
_PITCH_LO, _PITCH_HI = 21, 108
log = logging.getLogger(__name__)
#: harmonic number -> relative magnitude, used to synthesise the score's pitch spectrum
_HARMONICS = ((1, 1.0), (2, 0.55), (3, 0.35), (4, 0.25), (5, 0.15), (6, 0.1))


@dataclass(frozen=True)
class ChromaParams:
    """Feature parameters shared by the score and the audio side.

    Parameters
    ----------
    gamma : float
        Log compression ``log1p(gamma * x / max(x))`` of the chroma. 3 was chosen with the spectral
        difference as the onset part; with the note activations 1.5-2.5 are better alike on the
        development sets of the tracking benchmark (bench/results/tracking.md, session 9).
    onset_gamma : float
        Log compression of the pitch spectrum before the positive difference (audio side).
    onset_floor : float
        Added to the sum of the onset chroma before scaling (the "noise floor" of onset strength).
    silence_level : float
        Frames whose largest pitch-band magnitude is below this are silent (chroma = 0).
    bass_split : int
        MIDI pitch from which the treble chroma starts (the bass chroma holds the pitches below);
        0: one 12-bin chroma.
    note_onsets : bool
        The onset part of the frames the tracker settles on comes from the transcriber's note
        activations (:func:`activation_onsets`; the score side: the notes' fundamentals) instead of
        the positive spectral difference (the score side: the notes' harmonics). The activations come
        80 ms later than the spectrum, so the newest frames are followed provisionally with the
        spectral difference (:class:`~companion.tracking.follower.Follower`); the score keeps both
        onset parts (:attr:`ScoreFeatures.fast_features`).
    activation_floor : float
        Added to the sum of the folded activations before scaling (as ``onset_floor``).
    """

    gamma: float = 2.0
    onset_gamma: float = 1.0
    onset_floor: float = 4.0
    silence_level: float = 0.05
    bass_split: int = 48
    note_onsets: bool = True
    activation_floor: float = 0.05

    @property
    def n_chroma(self) -> int:
        """Chroma bins of a frame (12 or 24); the onset chroma follows them."""
        return 24 if self.bass_split > 0 else 12

    @property
    def n_features(self) -> int:
        return self.n_chroma + 12


def pitch_filterbank(n_bins: int = 1025, sample_rate: float = 44100.0, n_fft: int = 2048) -> np.ndarray:
    """Assign each STFT bin to its nearest MIDI pitch (21..108).

    Returns
    -------
    fb : np.ndarray [shape=(n_bins, 88), dtype=float32]
        ``fb[k, p - 21] = 1`` if bin ``k`` lies within half a semitone of pitch ``p``.
    """
    freqs = np.arange(n_bins) * sample_rate / n_fft
    fb = np.zeros((n_bins, _PITCH_HI - _PITCH_LO + 1), np.float32)
    with np.errstate(divide="ignore"):
        midi = 69.0 + 12.0 * np.log2(np.maximum(freqs, 1e-9) / 440.0)
    idx = np.round(midi).astype(int)
    ok = (idx >= _PITCH_LO) & (idx <= _PITCH_HI) & (freqs > 0)
    fb[np.nonzero(ok)[0], idx[ok] - _PITCH_LO] = 1.0
    return fb


def _chroma(pitch_spec: np.ndarray, bass_split: int) -> np.ndarray:
    """``(n, 88)`` pitch spectrum -> ``(n, 12)`` chroma, or ``(n, 24)`` bass + treble chroma."""
    if bass_split <= 0:
        return _fold(pitch_spec)
    k = int(np.clip(bass_split - _PITCH_LO, 0, pitch_spec.shape[1]))
    return np.concatenate([_fold(pitch_spec[:, :k]), _fold(pitch_spec[:, k:], _PITCH_LO + k)], axis=1)


def _fold(pitch_spec: np.ndarray, first_pitch: int = _PITCH_LO) -> np.ndarray:
    """Fold an ``(n, m)`` pitch spectrum (MIDI ``first_pitch`` upwards; by default all 88 keys) to
    ``(n, 12)`` pitch classes (C = 0)."""
    n = pitch_spec.shape[0]
    out = np.zeros((n, 12), np.float64)
    for k in range(pitch_spec.shape[1]):
        out[:, (k + first_pitch) % 12] += pitch_spec[:, k]
    return out


def _normalise_chroma(chroma: np.ndarray, gamma: float, silent: np.ndarray) -> np.ndarray:
    mx = chroma.max(axis=1, keepdims=True)
    c = np.log1p(gamma * chroma / np.maximum(mx, 1e-12))
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    c[silent] = 0.0
    return c


def _scale_onsets(onsets: np.ndarray, floor: float) -> np.ndarray:
    return onsets / (onsets.sum(axis=1, keepdims=True) + floor)


def activation_onsets(act: np.ndarray, floor: float) -> np.ndarray:
    """The onset part of audio frames from note activations: ``(n, 88)`` (keys from A0) -> ``(n, 12)``
    pitch classes, scaled to a sum of at most 1 (``x / (sum(x) + floor)``)."""
    return _scale_onsets(_fold(np.asarray(act, np.float64)), floor)


def frame_distance(a: np.ndarray, b: np.ndarray, onset_weight: float = 0.5) -> float:
    """Distance in [0, 1] between two feature frames (the tracker's local cost, for reference).

    ``(1 - w) * (1 - <chroma_a, chroma_b>) + w * 0.5 * |onset_a - onset_b|_1``; a silent chroma
    (all zero) against anything costs 0.5 on the chroma part.
    """
    ca, cb = a[:-12], b[:-12]
    if not ca.any() or not cb.any():
        dc = 0.5 if (ca.any() or cb.any()) else 0.0
    else:
        dc = 1.0 - float(ca @ cb)
    do = 0.5 * float(np.abs(a[-12:] - b[-12:]).sum())
    return (1.0 - onset_weight) * dc + onset_weight * do


class AudioChroma:
    """Causal audio features from magnitude spectrogram frames.

    Parameters
    ----------
    sample_rate : float
        Sample rate of the audio the spectrogram was computed from.
    n_fft : int
        STFT size (frames have ``n_fft // 2 + 1`` bins).
    params : ChromaParams

    Notes
    -----
    Stateful only through the previous frame's log pitch spectrum (for the onset part), so feeding a
    spectrogram block by block gives exactly the same output as feeding it whole.
    """

    def __init__(self, *, sample_rate: float = 44100.0, n_fft: int = 2048,
                 params: ChromaParams | None = None) -> None:
        self.params = params or ChromaParams()
        self.n_bins = n_fft // 2 + 1
        fb = pitch_filterbank(self.n_bins, sample_rate, n_fft)
        # hard assignment: bins sorted by pitch, summed with reduceat (row by row, so the result does
        # not depend on how many frames a block has, unlike a BLAS matrix product)
        rows, cols = np.nonzero(fb)
        order = np.lexsort((rows, cols))
        self._bins = rows[order]
        self._pitches = np.unique(cols[order])
        self._starts = np.searchsorted(cols[order], self._pitches)
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def process(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features of a block of spectrogram frames.

        Parameters
        ----------
        spec : np.ndarray [shape=(n_frames, n_fft // 2 + 1)]
            Magnitude spectrogram frames, in order.

        Returns
        -------
        features : np.ndarray [shape=(n_frames, params.n_features), dtype=float64]
        silent : np.ndarray [shape=(n_frames,), dtype=bool]
        """
        spec = np.asarray(spec)
        if spec.ndim != 2 or spec.shape[1] != self.n_bins:
            raise ValueError(f"spectrogram frames must have shape (n, {self.n_bins}), got {spec.shape}")
        p = self.params
        n = spec.shape[0]
        out = np.zeros((n, p.n_features))
        if n == 0:
            return out, np.zeros(0, bool)
        pitch = np.zeros((n, _PITCH_HI - _PITCH_LO + 1))
        pitch[:, self._pitches] = np.add.reduceat(spec[:, self._bins].astype(np.float64), self._starts, axis=1)
        silent = pitch.max(axis=1) < p.silence_level
        out[:, :p.n_chroma] = _normalise_chroma(_chroma(pitch, p.bass_split), p.gamma, silent)
        logp = np.log1p(p.onset_gamma * pitch.astype(np.float64))
        prev = self._prev if self._prev is not None else logp[:1]
        diff = np.maximum(np.diff(np.concatenate([prev, logp]), axis=0), 0.0)
        self._prev = logp[-1:].copy()
        out[:, p.n_chroma:] = _scale_onsets(_fold(diff), p.onset_floor)
        return out, silent


@dataclass
class ScoreFeatures:
    """The score as a feature sequence along the unfolded score, at ``fps`` frames per score second.

    Attributes
    ----------
    features : np.ndarray [shape=(n_frames, n_features)]
    silent : np.ndarray [shape=(n_frames,), dtype=bool]
    quarters : np.ndarray [shape=(n_frames,)]
        Unfolded quarter position of each frame.
    bar : np.ndarray [shape=(n_frames,), dtype=int32]
        Index into ``piece.bars`` of each frame.
    jumps : np.ndarray [shape=(n_jumps, 2), dtype=int64]
        ``(src, dst)`` frame pairs: after frame ``src`` a performer may continue at frame ``dst``
        (skipping a repeat, or repeating once more), besides ``src + 1``.
    fps : float
    piece : Piece
    onsets : np.ndarray [shape=(n_onsets,)]
        Sorted distinct note onsets along the unfolded score, quarter notes (the notes the features
        were made of); the tracker shows the bar of the next one (:attr:`TrackerParams.snap_display`).
    fast_features : np.ndarray [shape=(n_frames, n_features)] or None
        With :attr:`ChromaParams.note_onsets`: the same frames with the onset part the audio's spectral
        difference is compared with (the notes' harmonics), for the frames whose activations have not
        arrived yet; otherwise None (``features`` serve both).
    """

    features: np.ndarray
    silent: np.ndarray
    quarters: np.ndarray
    bar: np.ndarray
    jumps: np.ndarray
    fps: float
    piece: Piece
    onsets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fast_features: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.features.shape[0])

    def frame_at_quarters(self, quarters: float) -> int:
        """First frame at or after ``quarters`` (clipped to the score)."""
        i = int(np.searchsorted(self.quarters, quarters - 1e-9, side="left"))
        return int(np.clip(i, 0, self.n_frames - 1))


def _consistent_notes(piece: Piece, tolerance_s: float = 1.0) -> np.ndarray:
    """Mask of notes whose onset agrees with the bar grid (verovio occasionally gives a few notes
    of a score impossible positions, e.g. negative quarters; they are left out of the features)."""
    bq, bs = piece.bars["start_quarters"], piece.bars["start_s"]
    q, s = piece.notes["onset_quarters"], piece.notes["onset_s"]
    if len(bq) < 2:
        return np.isfinite(q) & np.isfinite(s) & (q >= 0)
    ok = (q >= bq[0] - 1e-6) & np.isfinite(q) & np.isfinite(s)
    ok &= np.abs(np.interp(q, bq, bs) - s) <= tolerance_s + 0.5 * np.maximum(q - bq[-1], 0)
    return ok


def score_axis(piece: Piece, *, tolerance_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Monotone anchor points ``(score seconds, quarters)`` of a piece's unfolded score, shape ``(n,)``
    each, from its bars and the notes that agree with the bar grid (:func:`_consistent_notes`): the
    axis of :func:`score_features`, and the engine's between the identifier's score seconds and the
    tracker's quarters. Verovio occasionally gives a note an impossible position (e.g. -1300 quarters
    in ASAP's Chopin Ballade no. 1), which would break a plain interpolation through all notes."""
    s, q = _seconds_axis(piece, _consistent_notes(piece, tolerance_s))
    if len(s) < 2:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    return s, q


def _seconds_axis(piece: Piece, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotone (seconds, quarters) anchor points of the unfolded score (bars and note onsets)."""
    s = np.concatenate([piece.bars["start_s"], piece.notes["onset_s"][ok]])
    q = np.concatenate([piece.bars["start_quarters"], piece.notes["onset_quarters"][ok]])
    order = np.lexsort((s, q))
    s, q = s[order], q[order]
    s = np.maximum.accumulate(s)
    keep = np.ones(len(s), bool)
    keep[1:] = (np.diff(s) > 1e-9) & (np.diff(q) > 1e-9)
    return s[keep], q[keep]


def bar_jumps(bars: np.ndarray) -> list[tuple[int, int]]:
    """Alternative successors between unfolded bars: ``(k, k2 + 1)`` where bar ``k2`` is another pass
    over the same notated measure as bar ``k`` and its successor differs from ``k``'s.

    A performer at the end of unfolded bar ``k`` may thus continue as any other pass over that notated
    measure did: skip a repeat (forward) or take a repeat once more (backward).
    """
    ids = bars["measure_id"]
    n = len(ids)
    out: list[tuple[int, int]] = []
    if n < 2 or not any(str(m) for m in ids):
        return out
    by_id: dict[str, list[int]] = {}
    for k, m in enumerate(ids):
        by_id.setdefault(str(m), []).append(k)
    for k in range(n - 1):
        for k2 in by_id[str(ids[k])]:
            if k2 != k and k2 + 1 < n and ids[k2 + 1] != ids[k + 1]:
                out.append((k, k2 + 1))
    return sorted(set(out))


def score_features(piece: Piece, *, fps: float = 50.0, params: ChromaParams | None = None,
                   decay_s: float = 1.2) -> ScoreFeatures:
    """Synthesise the feature sequence of a score.

    Each note contributes a harmonic series to a pitch spectrum, decaying exponentially from its onset
    (time constant ``decay_s``, longer for low notes) and released 50 ms after its notated end.

    Parameters
    ----------
    piece : Piece
    fps : float
        Frames per second of score time (verovio's ``tstamp``).
    params : ChromaParams
    decay_s : float
        Decay time constant of a middle-C note, seconds.

    Returns
    -------
    ScoreFeatures
    """
    p = params or ChromaParams()
    ok = _consistent_notes(piece)
    if not ok.all():
        log.warning("%s: %d of %d notes have positions inconsistent with the bars; left out",
                    piece.meta.source, int((~ok).sum()), len(ok))
    notes = piece.notes[ok]
    if len(notes) == 0:
        raise ValueError(f"{piece.meta.source}: no notes to follow")
    anchors_s, anchors_q = _seconds_axis(piece, ok)
    end_q = notes["onset_quarters"] + notes["duration_quarters"].astype(np.float64)
    on_s = notes["onset_s"]
    off_s = np.interp(end_q, anchors_q, anchors_s, right=anchors_s[-1] + (end_q.max() - anchors_q[-1]) * 0.5)
    off_s = np.maximum(off_s, on_s + 0.05)
    total_s = float(max(off_s.max(), on_s.max())) + 0.5
    n = int(np.ceil(total_s * fps)) + 1
    t = np.arange(n) / fps
    pitch_spec, onset_spec, note_spec = _synthesise(t, on_s, off_s, notes["pitch"].astype(int), fps, decay_s)
    silent = pitch_spec.max(axis=1) < 1e-3
    feats = np.zeros((n, p.n_features))
    feats[:, :p.n_chroma] = _normalise_chroma(_chroma(pitch_spec, p.bass_split), p.gamma, silent)
    feats[:, p.n_chroma:] = _unit_sum(_fold(onset_spec))
    fast = None
    if p.note_onsets:
        fast = feats.copy()
        feats[:, p.n_chroma:] = _unit_sum(note_spec)
    quarters = np.interp(t, anchors_s, anchors_q)
    bar = np.clip(np.searchsorted(piece.bars["start_quarters"], quarters + 1e-9, side="right") - 1,
                  0, len(piece.bars) - 1).astype(np.int32)
    jumps = []
    for k, k2 in bar_jumps(piece.bars):
        if k + 1 >= len(piece.bars):
            continue
        src = int(np.searchsorted(quarters, piece.bars["start_quarters"][k + 1] - 1e-9)) - 1
        dst = int(np.searchsorted(quarters, piece.bars["start_quarters"][k2] - 1e-9))
        if 0 <= src < n and 0 <= dst < n:
            jumps.append((src, dst))
    return ScoreFeatures(features=feats, silent=silent, quarters=quarters, bar=bar,
                         jumps=np.array(jumps, np.int64).reshape(-1, 2), fps=float(fps), piece=piece,
                         onsets=np.unique(notes["onset_quarters"].astype(np.float64)), fast_features=fast)


def _synthesise(t: np.ndarray, on_s: np.ndarray, off_s: np.ndarray, pitch: np.ndarray, fps: float,
                decay_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The score's pitch spectrum ``(n, 88)`` (harmonic series decaying from each onset, released 50 ms
    after the notated end), its onset spectrum (the harmonics at each onset and half of them a frame
    later, as the spectral difference sees them) and its note onsets ``(n, 12)`` (the fundamentals'
    pitch classes, as the transcriber's activations), over the frame times ``t``.

    All notes at once: each (note, harmonic, frame) term is summed into its cell in note order, as a
    loop over the notes would (``np.bincount`` adds in input order), so the sums are the same to the
    last bit; a loop costs 0.3-0.7 s on ASAP's largest scores, the moment the engine seeds there.
    """
    n = len(t)
    n_notes = len(on_s)
    i0 = np.floor(on_s * fps + 1e-9).astype(np.int64)
    i1 = np.minimum(n, np.ceil((off_s + 0.3) * fps).astype(np.int64) + 1)
    length = np.maximum(i1 - i0, 0)
    note = np.repeat(np.arange(n_notes), length)  # one entry per (note, frame), note-major
    frame = i0[note] + np.arange(len(note)) - np.repeat(np.cumsum(length) - length, length)
    tau = np.array([decay_s * 2.0 ** ((60 - p) / 24.0) for p in pitch])
    tt = t[frame] - on_s[note]
    # decay from the onset, and a 50 ms release after the notated end
    env = np.exp(-np.maximum(tt, 0) / tau[note]) * np.exp(-np.maximum(tt - (off_s - on_s)[note], 0.0) / 0.05)
    # the harmonics in the keyboard's range: (note, harmonic) pairs, note-major
    hp = pitch[:, None] + np.array([int(round(12 * np.log2(h))) for h, _ in _HARMONICS])[None, :]
    inside = (hp >= _PITCH_LO) & (hp <= _PITCH_HI)
    w = np.broadcast_to(np.array([w for _, w in _HARMONICS]), hp.shape)
    # pitch spectrum: per note its frames, per frame its harmonics (a cell takes its terms in note order)
    k = np.nonzero(inside[note])  # (entry, harmonic), entries ascending: note-major
    cells = frame[k[0]] * 88 + (hp[note[k[0]], k[1]] - _PITCH_LO)
    pitch_spec = np.bincount(cells, weights=w[0][k[1]] * env[k[0]], minlength=n * 88).reshape(n, 88)
    # onset spectrum: each harmonic at the onset frame, half of it a frame later
    nk, hk = np.nonzero(inside)
    col = hp[nk, hk] - _PITCH_LO
    later = i0[nk] + 1 < n
    cells = np.stack([i0[nk] * 88 + col, np.where(later, (i0[nk] + 1) * 88 + col, 0)], axis=1).ravel()
    weights = np.stack([w[nk, hk], np.where(later, 0.5 * w[nk, hk], 0.0)], axis=1).ravel()
    onset_spec = np.bincount(cells, weights=weights, minlength=n * 88).reshape(n, 88)
    # note onsets: 1 at the onset frame, 0.5 a frame later
    pc = pitch % 12
    later = i0 + 1 < n
    cells = np.stack([i0 * 12 + pc, np.where(later, (i0 + 1) * 12 + pc, 0)], axis=1).ravel()
    weights = np.stack([np.ones(n_notes), np.where(later, 0.5, 0.0)], axis=1).ravel()
    note_spec = np.bincount(cells, weights=weights, minlength=n * 12).reshape(n, 12)
    return pitch_spec, onset_spec, note_spec


def _unit_sum(x: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1 (all-zero rows stay zero)."""
    s = x.sum(axis=1, keepdims=True)
    return np.where(s > 0, x / np.maximum(s, 1e-12), 0.0)
