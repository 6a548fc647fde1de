"""numba kernels of the identifier's check of candidates, note by note.

A candidate (piece, position of the query's centre, tempo ratio, transposition) from the vote
(:mod:`companion.fingerprint._kernels`) is refined on the notes around the query's centre, then checked
with a banded longest common subsequence of query and score notes of the same pitch. Same-pitch score
notes are looked up by binary search in per-(piece, pitch) runs (:func:`pitch_runs`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["verify", "pitch_runs"]

#: tempo factors tried around a candidate's voted tempo ratio (the vote's estimate is biased by
#: ornaments and spread chords); 1.0 first so that ties keep the voted ratio
_R_GRID = np.array([1.0, 0.9, 1.1, 0.8, 1.25, 0.7, 1.4])
#: the tempo and position of a candidate are fitted on at least this many notes around the query's centre
_MIN_CENTRE = 6


def pitch_runs(note_onset: np.ndarray, note_pitch: np.ndarray, piece_start: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index's notes ordered by (piece, pitch, onset), for nearest same-pitch look-ups.

    Parameters
    ----------
    note_onset : np.ndarray [shape=(n_notes,)]
        Onsets, sorted within each piece.
    note_pitch : np.ndarray [shape=(n_notes,), int8]
        MIDI pitches (0-127).
    piece_start : np.ndarray [shape=(n_pieces + 1,), int64]

    Returns
    -------
    po : np.ndarray [shape=(n_notes,), float64]
        The onsets in that order; piece ``p``'s notes keep the rows ``piece_start[p]:piece_start[p + 1]``.
    pitch_start : np.ndarray [shape=(128 n_pieces + 1,), int64]
        Pitch ``k`` of piece ``p`` is ``po[pitch_start[128 p + k]:pitch_start[128 p + k + 1]]``.
    local : np.ndarray [shape=(n_notes,), int32]
        Each row's note as an index into its piece's notes in onset order.
    """
    n_pieces = len(piece_start) - 1
    piece_of = np.repeat(np.arange(n_pieces, dtype=np.int64), np.diff(piece_start))
    pitch = np.asarray(note_pitch, dtype=np.int64)
    if len(pitch) and (pitch.min() < 0 or pitch.max() > 127):
        raise ValueError("note pitches must lie in 0..127")
    run = piece_of * 128 + pitch
    order = np.argsort(run, kind="stable")  # stable: onset order is kept inside a run
    po = np.asarray(note_onset, dtype=np.float64)[order]
    pitch_start = np.zeros(128 * n_pieces + 1, dtype=np.int64)
    np.cumsum(np.bincount(run, minlength=128 * n_pieces), out=pitch_start[1:])
    local = (order - np.asarray(piece_start, dtype=np.int64)[piece_of[order]]).astype(np.int32)
    return po, pitch_start, local


@njit(cache=True)
def _closest(po, a, b, s, tol, stamp, base):  # pragma: no cover - numba
    """The unused score note closest to ``s`` within ``tol`` among ``po[a:b]`` (-1: none).

    ``po[a:b]`` are the onsets of one pitch of one piece, sorted (see :func:`pitch_runs`); ``stamp`` marks
    used notes by ``index - base``. Of two equally close notes the earlier wins. O(log n) per call.
    """
    if a >= b:
        return -1
    j = a + np.searchsorted(po[a:b], s)
    left = -1
    k = j - 1
    while k >= a and s - po[k] <= tol:
        if stamp[k - base] == 0:
            left = k
            break
        k -= 1
    right = -1
    k = j
    while k < b and po[k] - s <= tol:
        if stamp[k - base] == 0:
            right = k
            break
        k += 1
    if left < 0:
        return right
    if right < 0 or s - po[left] <= po[right] - s:
        return left
    return right


@njit(cache=True)
def _run(pitch_start, p, target):  # pragma: no cover - numba
    """``(a, b)``: the rows of pitch ``target`` of piece ``p`` in the pitch-ordered note arrays."""
    if target < 0 or target > 127:
        return 0, 0
    c = p * 128 + target
    return pitch_start[c], pitch_start[c + 1]


@njit(cache=True)
def _centre_fit(qon, qpi, po, pitch_start, p, base, pos_c, r0, t, tc, tol, half_w, r_min, r_max,
                stamp, n_grid):  # pragma: no cover
    """Best tempo ratio and position near ``(r0, pos_c)`` from the notes within ``±half_w`` of the centre.

    For ``r0`` times the first ``n_grid`` factors of 1.0, 0.9, 1.1, 0.8, 1.25, 0.7, 1.4: each centre
    note's nearest same-pitch score note within ``half_w`` gives a residual; the line is moved by their
    median and the notes are matched one-to-one within ``tol`` query seconds. Where fewer than
    ``_MIN_CENTRE`` notes lie within ``half_w`` of the centre (a rest or a held chord there), the
    window widens to the nearest ``_MIN_CENTRE``. Returns ``(matches, r, pos)`` of the best (ties: the
    earlier factor, 1.0 first; ``(0, r0, pos_c)`` when nothing matches). The stamps are left clear.
    """
    best_m = 0
    best_r = r0
    best_pos = pos_c
    nq = qon.shape[0]
    n_in = 0
    for i in range(nq):
        if abs(qon[i] - tc) <= half_w:
            n_in += 1
    if n_in < _MIN_CENTRE and n_in < nq:
        half_w = max(half_w, np.sort(np.abs(qon - tc))[min(_MIN_CENTRE, nq) - 1])
    used = np.empty(nq, dtype=np.int64)
    res = np.empty(nq, dtype=np.float64)
    for g in range(n_grid):
        r = r0 * _R_GRID[g]
        if r < r_min or r > r_max:
            continue
        n_res = 0
        for i in range(nq):
            if abs(qon[i] - tc) <= half_w:
                s_pred = pos_c + r * (qon[i] - tc)
                a, b = _run(pitch_start, p, qpi[i] + t)
                j = _closest(po, a, b, s_pred, half_w * r, stamp, base)
                if j >= 0:
                    res[n_res] = po[j] - s_pred
                    n_res += 1
        if n_res <= best_m:
            continue  # at most n_res notes can match at this tempo: it cannot beat the best (or none)
        pos = pos_c + np.median(res[:n_res])
        m = 0
        for i in range(nq):
            if abs(qon[i] - tc) <= half_w:
                a, b = _run(pitch_start, p, qpi[i] + t)
                j = _closest(po, a, b, pos + r * (qon[i] - tc), tol * r, stamp, base)
                if j >= 0:
                    stamp[j - base] = 1
                    used[m] = j - base
                    m += 1
        for k in range(m):
            stamp[used[k]] = 0
        if m > best_m:
            best_m = m
            best_r = r
            best_pos = pos
    return best_m, best_r, best_pos


@njit(cache=True)
def _banded_lcs(qon, qpi, lo, hi, po, pitch_start, local, p, base, a, r, t, tc, band_s,
                band_slope):  # pragma: no cover - numba
    """Heaviest common subsequence of query and score notes of the same (transposed) pitch, in a band.

    Query note ``i`` may pair with a score note of pitch ``qpi[i] + t`` among the piece's notes
    ``lo:hi`` (onset order) whose onset lies within ``w_i = (band_s + band_slope |qon[i] - tc|) r`` of the
    line ``a + r qon[i]``; a pair weighs ``1 - 0.5 |deviation| / w_i``. The chain is strictly increasing
    in both the query order and the score's onset order. Sparse dynamic programming over the candidate
    pairs (found by binary search in the pitch runs) with a Fenwick tree of prefix maxima:
    O(P log n_score) for P pairs, instead of the O(n_query n_score) table.

    Returns the matched query onsets and score onsets, shape (m,) each, in order.
    """
    nq = qon.shape[0]
    ns = hi - lo
    fv = np.zeros(ns + 1, dtype=np.float64)  # prefix-max tree over score positions (1-based)
    fid = np.full(ns + 1, -1, dtype=np.int64)
    cap = 8 * nq + 8
    pr_i = np.empty(cap, dtype=np.int64)
    pr_j = np.empty(cap, dtype=np.int64)
    pr_s = np.empty(cap, dtype=np.float64)
    pr_v = np.empty(cap, dtype=np.float64)
    pr_prev = np.empty(cap, dtype=np.int64)
    n = 0
    for i in range(nq):
        s_pred = a + r * qon[i]
        w = (band_s + band_slope * abs(qon[i] - tc)) * r
        ra, rb = _run(pitch_start, p, qpi[i] + t)
        if ra >= rb:
            continue
        row0 = n
        k = ra + np.searchsorted(po[ra:rb], s_pred - w)
        while k < rb and po[k] <= s_pred + w:
            j = local[k] - lo
            if 0 <= j < ns:
                best = 0.0
                bid = -1
                x = j  # positions 1..j of the tree: score notes before j
                while x > 0:
                    if fv[x] > best:
                        best = fv[x]
                        bid = fid[x]
                    x -= x & -x
                if n == cap:
                    cap *= 2
                    pr_i = _grow_i(pr_i, cap)
                    pr_j = _grow_i(pr_j, cap)
                    pr_prev = _grow_i(pr_prev, cap)
                    pr_s = _grow_f(pr_s, cap)
                    pr_v = _grow_f(pr_v, cap)
                pr_i[n] = i
                pr_j[n] = j
                pr_s[n] = po[k]
                pr_v[n] = best + 1.0 - 0.5 * abs(po[k] - s_pred) / w
                pr_prev[n] = bid
                n += 1
            k += 1
        for q in range(row0, n):  # this row's pairs become predecessors of the next rows only
            x = pr_j[q] + 1
            while x <= ns:
                if pr_v[q] > fv[x]:
                    fv[x] = pr_v[q]
                    fid[x] = q
                x += x & -x
    if n == 0:
        return np.zeros(0), np.zeros(0)
    last = 0
    for q in range(1, n):
        if pr_v[q] > pr_v[last]:
            last = q
    m = 0
    q = last
    while q >= 0:
        m += 1
        q = pr_prev[q]
    pq = np.empty(m, dtype=np.float64)
    ps = np.empty(m, dtype=np.float64)
    q = last
    for k in range(m - 1, -1, -1):
        pq[k] = qon[pr_i[q]]
        ps[k] = pr_s[q]
        q = pr_prev[q]
    return pq, ps


@njit(cache=True)
def _grow_i(x, cap):  # pragma: no cover - numba
    y = np.empty(cap, dtype=np.int64)
    y[:x.shape[0]] = x
    return y


@njit(cache=True)
def _grow_f(x, cap):  # pragma: no cover - numba
    y = np.empty(cap, dtype=np.float64)
    y[:x.shape[0]] = x
    return y


@njit(cache=True)
def _verify_one(qon_sorted, qpi_sorted, son, po, pitch_start, local, p, base, pos_c, r0, t, tc, tol1, band_s,
                band_slope, r_min, r_max, chord_tol, stamp):  # pragma: no cover
    """Full check of one candidate; see :func:`verify`. Returns (f, end_s, ratio, matched, err, n_score)."""
    nq = qon_sorted.shape[0]
    _, r, pos_c = _centre_fit(qon_sorted, qpi_sorted, po, pitch_start, p, base, pos_c, r0, t, tc, tol1, band_s,
                              r_min, r_max, stamp, _R_GRID.shape[0])
    a = pos_c - r * tc
    # chords in score order (by pitch): group onsets closer than chord_tol, scaled down for fast queries so
    # that played-fast ornaments do not merge into chords
    tol_g = chord_tol / max(r, 1.0)
    key = np.empty(nq, dtype=np.int64)
    g = 0
    g_start = qon_sorted[0]
    for i in range(nq):
        if qon_sorted[i] - g_start > tol_g:
            g += 1
            g_start = qon_sorted[i]
        key[i] = g * 256 + qpi_sorted[i]
    order = np.argsort(key, kind="mergesort")
    qon = qon_sorted[order]
    qpi = qpi_sorted[order]
    # score notes that can be reached: the line ± the band at both ends
    w_first = (band_s + band_slope * abs(qon[0] - tc)) * r
    w_last = (band_s + band_slope * abs(qon[nq - 1] - tc)) * r
    lo = np.searchsorted(son, a + r * qon[0] - w_first)
    hi = np.searchsorted(son, a + r * qon[nq - 1] + w_last, side="right")
    ns = hi - lo
    if ns == 0:
        return 0.0, a + r * qon[nq - 1], r, 0, 0.0, 0
    # banded longest common subsequence of the pitch sequences (monotone in time on both sides); a pair
    # scores 1 - 0.5 |deviation from the line| / band, so that among equally long ones the closest wins
    pq, ps = _banded_lcs(qon, qpi, lo, hi, po, pitch_start, local, p, base, a, r, t, tc, band_s, band_slope)
    m = pq.shape[0]
    if m < 3:
        return 0.0, a + r * qon[nq - 1], r, m, 0.0, 0
    # tempo: least-squares slope over all pairs; end: the last pairs carried to the last onset (median)
    mq = pq.mean()
    ms = ps.mean()
    var = ((pq - mq) ** 2).sum()
    if var > 1e-4:
        bb = ((pq - mq) * (ps - ms)).sum() / var
        if r_min <= bb <= r_max:
            r = bb
    q_last = qon_sorted[nq - 1]
    k0 = max(0, m - 5)
    ends = np.empty(m - k0)
    for k in range(k0, m):
        ends[k - k0] = ps[k] + r * (q_last - pq[k])
    end_s = np.median(ends)
    # score notes in the matched span (plus the unmatched tails at the query's ends)
    s0 = ps[0] - r * (pq[0] - qon[0])
    s1 = ps[m - 1] + r * (qon[nq - 1] - pq[m - 1])
    n_score = np.searchsorted(son, s1 + 0.05 * r, side="right") - np.searchsorted(son, s0 - 0.05 * r)
    f = 2.0 * m / (nq + n_score)
    err = 0.0
    for k in range(m):
        err += abs(ps[k] - (a + r * pq[k]))
    return f, end_s, r, m, err / m / r, n_score


@njit(cache=True)
def verify(qon, qpi, note_onset, piece_start, po, pitch_start, local, c_piece, c_pos, c_r, c_t, tc, tol1, band_s,
           band_slope, r_min, r_max, n_refine, chord_tol, n_grid1):  # pragma: no cover - numba
    """Check candidates note by note.

    A candidate maps query time to score time as ``s = pos + r (q - tc)``. First the tempo ratio is
    refined: the notes within ``±band_s`` of the centre are matched one-to-one to score notes of pitch
    ``q + T`` within ``tol1`` query seconds for ``r`` times 0.7 ... 1.4 (the notes nearest the centre
    where fewer lie there), and the best ``r`` is kept.
    Then the longest common subsequence of the query's and the score's pitch sequences is found, where
    a query note may only pair with a score note within a band around the line (``band_s`` plus
    ``band_slope`` times the distance from the centre, query seconds). The LCS is monotone in time on
    both sides, so it follows rubato without a model of it. The confidence is the F-measure of the
    pairs against the query notes and the score notes in the matched span.

    The full check runs only for the ``n_refine`` candidates with most matches in the first, cheap
    pass (the others get ``f = 0``), which tries only the first ``n_grid1`` tempo factors.

    Parameters
    ----------
    qon, qpi : float64, int64 (n_q,)
        Query notes sorted by onset (then pitch).
    note_onset, piece_start : the index's note onsets (sorted per piece) and piece offsets
    po, pitch_start, local : the same onsets ordered by (piece, pitch, onset), the run offsets per
        (piece, pitch) and each row's index in its piece's onset order, from :func:`pitch_runs`
    c_piece, c_pos, c_r, c_t : (n_c,)
        Candidates: piece, score position of the query centre, tempo ratio, T (score - query pitch).
    tc : float
        Query centre time.
    chord_tol : float
        Query notes closer than this (divided by the tempo ratio where it is > 1) are one chord, ordered
        by pitch as the score's chords are.

    Returns
    -------
    f : float64 (n_c,)       F-measure ``2 m / (n_query + n_score_in_span)``
    end_s : float64 (n_c,)   score time at the query's last onset
    ratio : float64 (n_c,)   fitted tempo ratio
    matched : int64 (n_c,)
    err : float64 (n_c,)     mean absolute timing error of the matches (query seconds)
    n_score : int64 (n_c,)   score notes in the matched span (``f``'s other count, for an F-beta)
    """
    n_c = c_piece.shape[0]
    f = np.zeros(n_c)
    end_s = np.zeros(n_c)
    ratio = np.zeros(n_c)
    matched = np.zeros(n_c, dtype=np.int64)
    err = np.zeros(n_c)
    n_score = np.zeros(n_c, dtype=np.int64)
    max_len = 0
    for k in range(n_c):
        p = c_piece[k]
        max_len = max(max_len, piece_start[p + 1] - piece_start[p])
    stamp = np.zeros(max_len, dtype=np.uint8)
    # stage 1 (cheap): matches near the query centre; only the best n_refine go on
    m1 = np.zeros(n_c, dtype=np.int64)
    for k in range(n_c):
        p = c_piece[k]
        m1[k], _, _ = _centre_fit(qon, qpi, po, pitch_start, p, piece_start[p], c_pos[k], c_r[k], c_t[k], tc,
                                  tol1, band_s, r_min, r_max, stamp, n_grid1)
    order = np.argsort(-m1, kind="mergesort")
    for kk in range(min(n_refine, n_c)):
        k = order[kk]
        p = c_piece[k]
        son = note_onset[piece_start[p]:piece_start[p + 1]]
        f[k], end_s[k], ratio[k], matched[k], err[k], n_score[k] = _verify_one(
            qon, qpi, son, po, pitch_start, local, p, piece_start[p], c_pos[k], c_r[k], c_t[k], tc, tol1, band_s,
            band_slope, r_min, r_max, chord_tol, stamp)
    return f, end_s, ratio, matched, err, n_score
