"""numba kernel of the identifier's vote: index hits vote for (piece, position, transposition) cells.

The note-by-note check of the voted cells is :mod:`companion.fingerprint._verify`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["vote"]


@njit(cache=True)
def vote(qh, qt1, qdt, qp1, tc, bucket_start, e_piece, e_t1, e_dt12, e_p1, piece_bin_start, bin_s,
         r_min, r_max, max_t, max_hits):  # pragma: no cover - numba
    """Let the index hits of the query triplets vote for (piece, position of the query centre, T).

    Query triplets are taken rarest hash first (the most informative ones) until ``max_hits`` index
    entries have been looked at, which bounds the query time on large databases.

    Parameters
    ----------
    qh, qt1, qdt, qp1 : query triplets (hash, anchor onset, Δt12, anchor pitch), shape (n_q,)
    tc : float
        Query time that positions refer to (the query's centre).
    bucket_start, e_piece, e_t1, e_dt12, e_p1 : index arrays
    piece_bin_start : int64 (n_pieces + 1,)
        Global position-bin offsets per piece (each piece has padding bins at both ends).
    bin_s : float
        Width of a position bin (score seconds).
    r_min, r_max : float
        Admissible tempo ratios (score seconds per query second).
    max_t : int
        Largest |transposition| considered.
    max_hits : int
        Budget of index entries looked at.

    Returns
    -------
    keys : int64 (n_cells,)   cell = global bin * (2 max_t + 1) + T + max_t
    count : float64 (n_cells,) weighted votes per cell (a hit weighs 1 / log2(2 + its bucket's size))
    smooth : float64 (n_cells,) the cell's votes plus those of its two neighbouring position bins
    logr : float64 (n_cells,) weighted sum of log tempo ratios of the votes
    pos : float64 (n_cells,)  weighted sum of voted positions
    n_hits : int               index entries looked at
    """
    n_t = 2 * max_t + 1
    nq = qh.shape[0]
    sizes = np.empty(nq, dtype=np.int64)
    for i in range(nq):
        sizes[i] = bucket_start[qh[i] + 1] - bucket_start[qh[i]]
    order = np.argsort(sizes, kind="mergesort")
    total = 0
    n_use = 0
    for k in range(nq):
        s = sizes[order[k]]
        if total + s > max_hits and n_use > 0:
            break
        total += s
        n_use += 1
    bits = 10
    while (1 << bits) < 2 * total:
        bits += 1
    size = 1 << bits
    shift = np.uint64(64 - bits)
    tkeys = np.full(size, -1, dtype=np.int64)
    tacc = np.zeros((size, 3), dtype=np.float64)  # votes, Σ w log r, Σ w pos: one cache line per cell
    used = np.empty(size, dtype=np.int64)
    n_used = 0
    mask = size - 1
    for k in range(n_use):
        i = order[k]
        a = bucket_start[qh[i]]
        b = bucket_start[qh[i] + 1]
        q_off = qt1[i] - tc
        w_i = 1.0 / np.log2(2.0 + (b - a))  # rarer triplets weigh more
        for e in range(a, b):
            r = e_dt12[e] / qdt[i]
            if r < r_min or r > r_max:
                continue
            t = np.int64(e_p1[e]) - np.int64(qp1[i])
            if t > max_t or t < -max_t:
                continue
            p = e_piece[e]
            pos = e_t1[e] - r * q_off
            nb = piece_bin_start[p + 1] - piece_bin_start[p]
            bi = np.int64(np.floor(pos / bin_s)) + 1
            if bi < 1:
                bi = 1
            elif bi > nb - 2:
                bi = nb - 2
            key = (piece_bin_start[p] + bi) * n_t + t + max_t
            slot = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
            while tkeys[slot] != -1 and tkeys[slot] != key:
                slot = (slot + 1) & mask
            if tkeys[slot] == -1:
                tkeys[slot] = key
                used[n_used] = slot
                n_used += 1
            tacc[slot, 0] += w_i
            tacc[slot, 1] += w_i * np.log(r)
            tacc[slot, 2] += w_i * pos
    keys = np.empty(n_used, dtype=np.int64)
    count = np.empty(n_used, dtype=np.float64)
    smooth = np.empty(n_used, dtype=np.float64)
    logr = np.empty(n_used, dtype=np.float64)
    posr = np.empty(n_used, dtype=np.float64)
    for k in range(n_used):
        s = used[k]
        keys[k] = tkeys[s]
        count[k] = tacc[s, 0]
        logr[k] = tacc[s, 1]
        posr[k] = tacc[s, 2]
        # diagonal vote: plus the votes of the neighbouring position bins (same piece and T; the padding
        # bins at both ends of a piece keep neighbours inside it)
        sm = tacc[s, 0]
        for d in (-n_t, n_t):
            nk = tkeys[s] + d
            slot = np.int64((np.uint64(nk) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
            while tkeys[slot] != -1:
                if tkeys[slot] == nk:
                    sm += tacc[slot, 0]
                    break
                slot = (slot + 1) & mask
        smooth[k] = sm
    return keys, count, smooth, logr, posr, total
