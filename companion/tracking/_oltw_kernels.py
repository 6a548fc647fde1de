"""The compiled inner loops of the online tracker (:mod:`companion.tracking.oltw`): one DTW column
within its window segments (with the repeat and da capo jumps of the unfolded score), and the
clearing of a column's cells. numba ``@njit(cache=True)``, deterministic."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def _column(x, score, score_silent, d1, l1, d2, l2, d_cur, l_cur, loc1, loc_cur, segs, n_segs, jump_in,
            jsrc, w_onset, step_penalty, jump_penalty):  # pragma: no cover - compiled
    """Compute one DTW column over the active segments.

    A frame is ``nc`` chroma bins (cosine) followed by 12 onset bins (half L1).

    ``d1, l1`` hold the previous column, ``d2, l2`` the one before; ``loc1`` the previous column's local
    costs (NaN where not computed), ``loc_cur`` receives this column's. Steps (score, audio):
    (1, 1) costs ``2 d(i, j)``; (2, 1) costs ``d(i-1, j) + 2 d(i, j)`` and (1, 2) ``d(i, j-1) + 2 d(i, j)``,
    both times ``1 + step_penalty``, so that a path pays for every cell it passes (a fast path cannot
    hop over poorly matching frames); repeat jumps cost ``2 d + jump_penalty``.

    Returns ``(best_i, best_local, mean_local)``: the argmin of ``D / L`` and local costs.
    """
    nc = x.shape[0] - 12
    xc_any = False
    for k in range(nc):
        if x[k] != 0.0:
            xc_any = True
            break
    best_i = -1
    best_norm = np.inf
    best_local = 0.0
    sum_local = 0.0
    n_local = 0
    hv = 1.0 + step_penalty
    for s in range(n_segs):
        lo = segs[s, 0]
        hi = segs[s, 1]
        d_below = np.nan
        for i in range(lo, hi + 1):
            # local distance: cosine on chroma, half L1 on onsets
            if score_silent[i] or not xc_any:
                dc = 0.0 if (score_silent[i] and not xc_any) else 0.5
            else:
                dot = 0.0
                for k in range(nc):
                    dot += x[k] * score[i, k]
                dc = 1.0 - dot
            do = 0.0
            for k in range(nc, nc + 12):
                do += abs(x[k] - score[i, k])
            d = (1.0 - w_onset) * dc + w_onset * 0.5 * do
            loc_cur[i] = d
            sum_local += d
            n_local += 1
            best = np.inf
            bl = 0.0
            if i > 0:
                v = d1[i - 1] + 2.0 * d
                if v < best:
                    best = v
                    bl = l1[i - 1] + 2.0
                left = loc1[i]
                if np.isnan(left):
                    left = d
                v = d2[i - 1] + hv * (left + 2.0 * d)
                if v < best:
                    best = v
                    bl = l2[i - 1] + 3.0
            if i > 1:
                below = d_below
                if np.isnan(below):
                    below = d
                v = d1[i - 2] + hv * (below + 2.0 * d)
                if v < best:
                    best = v
                    bl = l1[i - 2] + 3.0
            d_below = d
            j = jump_in[i]
            while j >= 0:
                src = jsrc[j, 0]
                v = d1[src] + 2.0 * d + jump_penalty
                if v < best:
                    best = v
                    bl = l1[src] + 2.0
                j = jsrc[j, 1]
            d_cur[i] = best
            l_cur[i] = bl
            if best < np.inf:
                nv = best / bl
                if nv < best_norm:
                    best_norm = nv
                    best_i = i
                    best_local = d
    mean_local = sum_local / max(n_local, 1)
    return best_i, best_local, mean_local


@numba.njit(cache=True)
def _clear(d, l, loc, segs, n_segs):  # pragma: no cover - compiled
    for s in range(n_segs):
        for i in range(segs[s, 0], segs[s, 1] + 1):
            d[i] = np.inf
            l[i] = 1.0
            loc[i] = np.nan


#: the tracker's state besides its cost columns and tempo history (OnlineTracker.checkpoint)
