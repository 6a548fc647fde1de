"""Note-triplet fingerprints: chord capping, triplet extraction and quantisation into integer hashes.

A fingerprint is a triplet of notes ``(n1, n2, n3)`` with strictly increasing onsets. Its features

    ``[Δp12, Δp23, τ]`` with ``Δp12 = p2 - p1``, ``Δp23 = p3 - p2`` and ``τ = Δt23 / Δt12``

do not change when the excerpt is transposed or played at another tempo. Each triplet keeps the
absolute anchor pitch ``p1``, the anchor onset ``t1`` and ``Δt12`` beside its hash, so a hit in the
index tells the transposition (``p1_score - p1_query``), the tempo ratio (``Δt12_score / Δt12_query``)
and the score position.

Before extracting triplets, notes whose onsets lie within ``chord_tolerance_s`` form one *onset group*
(a chord, or a performed chord with its spread), and each group is capped to its ``max_low`` lowest and
``max_high`` highest distinct pitches. Capping keeps the index small and stops dense-chord pieces
from winning votes by chance.

Triplet generation (the fan-out of the paper): every capped note of an onset group ``g1`` is an anchor.
``n2`` is the lowest or highest note of one of the next ``fan_out`` onset groups after ``g1``, and
``n3`` the lowest or highest note of one of the next ``fan_out`` groups after ``n2``'s group, with both
onset differences in ``[min_dt_s, max_dt_s]``.

All kernels are numba ``@njit(cache=True)`` and deterministic.

References
----------
A. Arzt, S. Böck and G. Widmer, "Fast identification of piece and score position via symbolic
fingerprinting", ISMIR 2012.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cap_chords", "extract_triplets", "hash_features", "n_hash_values"]


@njit(cache=True)
def _group_and_cap(onset, pitch, tol, max_low, max_high):  # pragma: no cover - numba
    """Onset groups of sorted notes, capped to ``max_low`` lowest + ``max_high`` highest pitches.

    Returns the kept note indices (sorted by group, then pitch) and the group start offsets into them.
    """
    n = onset.shape[0]
    keep = np.empty(n, dtype=np.int64)
    gstart = np.empty(n + 1, dtype=np.int64)
    n_keep = 0
    n_groups = 0
    i = 0
    cap = max_low + max_high
    buf = np.empty(n, dtype=np.int64)
    while i < n:
        j = i + 1
        while j < n and onset[j] - onset[i] <= tol:
            j += 1
        # notes i..j-1 form one group: sort by pitch (insertion sort, groups are small), drop duplicates
        m = 0
        for k in range(i, j):
            pos = m
            while pos > 0 and pitch[buf[pos - 1]] > pitch[k]:
                buf[pos] = buf[pos - 1]
                pos -= 1
            buf[pos] = k
            m += 1
        u = 0
        for k in range(m):
            if u == 0 or pitch[buf[k]] != pitch[buf[u - 1]]:
                buf[u] = buf[k]
                u += 1
        gstart[n_groups] = n_keep
        n_groups += 1
        if u <= cap:
            for k in range(u):
                keep[n_keep] = buf[k]
                n_keep += 1
        else:
            for k in range(max_low):
                keep[n_keep] = buf[k]
                n_keep += 1
            for k in range(u - max_high, u):
                keep[n_keep] = buf[k]
                n_keep += 1
        i = j
    gstart[n_groups] = n_keep
    return keep[:n_keep], gstart[: n_groups + 1]


def cap_chords(onset_s: np.ndarray, pitch: np.ndarray, *, chord_tolerance_s: float, max_low: int,
               max_high: int) -> tuple[np.ndarray, np.ndarray]:
    """Group notes into onset groups and cap each group's size.

    Parameters
    ----------
    onset_s : np.ndarray [shape=(n,)]
        Onsets in seconds, sorted ascending.
    pitch : np.ndarray [shape=(n,)]
        MIDI pitches.
    chord_tolerance_s : float
        Notes within this time of a group's first note join that group.
    max_low, max_high : int
        How many of the lowest and highest distinct pitches of a group to keep.

    Returns
    -------
    keep : np.ndarray [shape=(n_kept,), int64]
        Indices of the kept notes, by group and ascending pitch within a group.
    group_start : np.ndarray [shape=(n_groups + 1,), int64]
        Group ``g`` is ``keep[group_start[g]:group_start[g + 1]]``.
    """
    onset_s = np.ascontiguousarray(onset_s, dtype=np.float64)
    pitch = np.ascontiguousarray(pitch, dtype=np.int64)
    if len(onset_s) == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64)
    if np.any(np.diff(onset_s) < 0):
        raise ValueError("onsets must be sorted")
    return _group_and_cap(onset_s, pitch, float(chord_tolerance_s), int(max_low), int(max_high))


def n_hash_values(pitch_clip: int, tau_bins: int) -> int:
    """Size of the hash space for the given quantisation."""
    w = 2 * pitch_clip + 1
    return w * w * tau_bins


@njit(cache=True)
def _quantise(dp12, dp23, log2_tau, pitch_clip, tau_bins_per_octave, tau_max_octaves):  # pragma: no cover
    """Hash of one triplet and the fractional position of ``τ`` inside its bin (in [-0.5, 0.5])."""
    if dp12 > pitch_clip:
        dp12 = pitch_clip
    elif dp12 < -pitch_clip:
        dp12 = -pitch_clip
    if dp23 > pitch_clip:
        dp23 = pitch_clip
    elif dp23 < -pitch_clip:
        dp23 = -pitch_clip
    x = log2_tau * tau_bins_per_octave
    half = int(tau_max_octaves * tau_bins_per_octave + 0.5)
    xr = np.floor(x + 0.5)
    frac = x - xr
    tb = int(xr)
    if tb > half:
        tb = half
        frac = 0.0
    elif tb < -half:
        tb = -half
        frac = 0.0
    w = 2 * pitch_clip + 1
    h = ((dp12 + pitch_clip) * w + (dp23 + pitch_clip)) * (2 * half + 1) + (tb + half)
    return h, frac


@njit(cache=True)
def _triplets(onset, pitch, keep, gstart, min_dt, max_dt, fan_out, pitch_clip, tau_bins_per_octave,
              tau_max_octaves, fill, neighbour_margin,
              out_hash, out_t1, out_dt12, out_p1, out_note):  # pragma: no cover - numba
    """Count (``fill=False``) or write the triplets. With ``neighbour_margin > 0`` a triplet whose τ
    lies within that margin of a bin edge is also emitted with the neighbouring τ bin (query side)."""
    n_groups = gstart.shape[0] - 1
    half = int(tau_max_octaves * tau_bins_per_octave + 0.5)
    nt = 2 * half + 1
    c = 0
    for g1 in range(n_groups):
        t1 = onset[keep[gstart[g1]]]
        g2_end = min(n_groups, g1 + 1 + fan_out)
        for g2 in range(g1 + 1, g2_end):
            t2 = onset[keep[gstart[g2]]]
            dt12 = t2 - t1
            if dt12 < min_dt:
                continue
            if dt12 > max_dt:
                break
            g3_end = min(n_groups, g2 + 1 + fan_out)
            for g3 in range(g2 + 1, g3_end):
                t3 = onset[keep[gstart[g3]]]
                dt23 = t3 - t2
                if dt23 < min_dt:
                    continue
                if dt23 > max_dt:
                    break
                log2_tau = np.log2(dt23 / dt12)
                for a in range(gstart[g1], gstart[g1 + 1]):
                    p1 = pitch[keep[a]]
                    for s2 in range(2):
                        b = gstart[g2] if s2 == 0 else gstart[g2 + 1] - 1
                        if s2 == 1 and b == gstart[g2]:
                            continue
                        p2 = pitch[keep[b]]
                        for s3 in range(2):
                            d = gstart[g3] if s3 == 0 else gstart[g3 + 1] - 1
                            if s3 == 1 and d == gstart[g3]:
                                continue
                            p3 = pitch[keep[d]]
                            h, frac = _quantise(p2 - p1, p3 - p2, log2_tau, pitch_clip,
                                                tau_bins_per_octave, tau_max_octaves)
                            extra = 0
                            if neighbour_margin > 0.0:
                                tb = h % nt
                                if frac > 0.5 - neighbour_margin and tb < nt - 1:
                                    extra = 1
                                elif frac < -0.5 + neighbour_margin and tb > 0:
                                    extra = -1
                            for e in range(2 if extra != 0 else 1):
                                if fill:
                                    out_hash[c] = h + (extra if e == 1 else 0)
                                    out_t1[c] = t1
                                    out_dt12[c] = dt12
                                    out_p1[c] = p1
                                    out_note[c] = keep[a]
                                c += 1
    return c


def hash_features(dp12: np.ndarray, dp23: np.ndarray, tau: np.ndarray, *, pitch_clip: int,
                  tau_bins_per_octave: float, tau_max_octaves: float) -> np.ndarray:
    """Quantise triplet features into hashes (vectorised reference of the kernel's quantisation).

    Parameters
    ----------
    dp12, dp23 : np.ndarray [shape=(n,)]
        Pitch intervals in semitones.
    tau : np.ndarray [shape=(n,)]
        ``Δt23 / Δt12`` (> 0).

    Returns
    -------
    np.ndarray [shape=(n,), uint32]
    """
    out = np.empty(len(dp12), dtype=np.uint32)
    for i in range(len(dp12)):
        out[i] = _quantise(int(dp12[i]), int(dp23[i]), float(np.log2(tau[i])), int(pitch_clip),
                           float(tau_bins_per_octave), float(tau_max_octaves))[0]
    return out


def extract_triplets(onset_s: np.ndarray, pitch: np.ndarray, *, chord_tolerance_s: float, max_low: int,
                     max_high: int, min_dt_s: float, max_dt_s: float, fan_out: int, pitch_clip: int,
                     tau_bins_per_octave: float, tau_max_octaves: float,
                     neighbour_margin: float = 0.0) -> dict[str, np.ndarray]:
    """All triplet fingerprints of one note sequence.

    Parameters
    ----------
    onset_s : np.ndarray [shape=(n,)]
        Onsets in seconds (score seconds at score tempo, or performed seconds), sorted ascending.
    pitch : np.ndarray [shape=(n,)]
        MIDI pitches.
    chord_tolerance_s, max_low, max_high
        Onset grouping and chord cap, see :func:`cap_chords`.
    min_dt_s, max_dt_s : float
        Bounds on both onset differences of a triplet.
    fan_out : int
        Number of following onset groups considered for ``n2`` (after ``n1``) and ``n3`` (after ``n2``).
    pitch_clip : int
        Intervals are clipped to ``[-pitch_clip, pitch_clip]``.
    tau_bins_per_octave, tau_max_octaves : float
        ``log2 τ`` is quantised to steps of ``1 / tau_bins_per_octave``, clipped to ``±tau_max_octaves``.
    neighbour_margin : float
        Query side only: also emit the neighbouring τ bin when τ lies within this fraction of a bin of
        the bin edge (0 disables).

    Returns
    -------
    dict
        ``hash`` uint32 (m,), ``t1`` float64 (m,) anchor onset, ``dt12`` float64 (m,), ``p1`` int16 (m,)
        anchor pitch, ``note`` int64 (m,) index of the anchor in the input; plus ``keep`` (indices of the
        capped notes) and ``group_start`` (see :func:`cap_chords`).
    """
    onset = np.ascontiguousarray(onset_s, dtype=np.float64)
    pit = np.ascontiguousarray(pitch, dtype=np.int64)
    keep, gstart = cap_chords(onset, pit, chord_tolerance_s=chord_tolerance_s, max_low=max_low,
                              max_high=max_high)
    args = (onset, pit, keep, gstart, float(min_dt_s), float(max_dt_s), int(fan_out), int(pitch_clip),
            float(tau_bins_per_octave), float(tau_max_octaves))
    dummy_f = np.zeros(0)
    dummy_i = np.zeros(0, np.int64)
    m = _triplets(*args, False, float(neighbour_margin), np.zeros(0, np.uint32), dummy_f, dummy_f,
                  dummy_i, dummy_i)
    out = {"hash": np.empty(m, np.uint32), "t1": np.empty(m), "dt12": np.empty(m),
           "p1": np.empty(m, np.int64), "note": np.empty(m, np.int64)}
    _triplets(*args, True, float(neighbour_margin), out["hash"], out["t1"], out["dt12"], out["p1"],
              out["note"])
    out["p1"] = out["p1"].astype(np.int16)
    out["keep"] = keep
    out["group_start"] = gstart
    return out
