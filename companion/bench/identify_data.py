"""Data for the identification benchmark: ASAP queries with ground truth, perturbations, distractors.

Queries come from the human performances (Disklavier MIDI) of ``dev_performances.csv``; the ground-truth
bar of a query is the bar of the score note aligned (``note_alignment.tsv``) to the last aligned
performed note inside the query window.

Distractor pieces (to grow the database to ~1 M and ~10 M notes) are variants of ASAP scores that keep
their style and local interval statistics but are not the same music at the scale of a query:

1. the bars of the source piece are put in a random order (a permutation of all bars);
2. every bar gets its own tempo factor, log-uniform in [0.75, 1.33], and every note a timing jitter of
   N(0, 10 ms) (time warp);
3. re-voicing: each note is moved by an octave (up or down, 15 %) or dropped (10 %);
4. the whole variant is transposed by a uniform random -6..+6 semitones.

Everything is seeded (``numpy.random.default_rng``) and deterministic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from companion.bench.asap import Performance, load_alignment, load_performance_notes, piece_key
from companion.events import PERF_NOTE_DTYPE
from companion.fingerprint.index import FingerprintIndex, FingerprintParams
from companion.score.model import BAR_DTYPE, NOTE_DTYPE, Piece, PieceMeta

__all__ = ["LIGHT_DTYPE", "MemoryDatabase", "PerfTruth", "Query", "load_truth", "sample_queries",
           "transpose_scale", "add_errors", "make_distractor", "distractor_light"]

log = logging.getLogger(__name__)

#: what the index build reads of a piece (``onset_s``, ``pitch``): enough for distractors
LIGHT_DTYPE = np.dtype([("onset_s", np.float64), ("pitch", np.int16)])


class MemoryDatabase:
    """An in-memory stand-in with the identifier's view of a :class:`companion.db.Database`.

    Parameters
    ----------
    index_notes : sequence of np.ndarray
        Per piece, an array with ``onset_s`` and ``pitch`` fields (what the index reads).
    metas : list of PieceMeta
    piece_fn : callable
        ``piece_fn(pid) -> Piece``, called only for pieces that are reported.
    params : FingerprintParams, optional
    """

    def __init__(self, index_notes: Sequence[np.ndarray], metas: list[PieceMeta],
                 piece_fn: Callable[[int], Piece], *, params: FingerprintParams | None = None) -> None:
        self.metas = metas
        self._piece_fn = piece_fn
        t0 = time.perf_counter()
        self.index = FingerprintIndex.build(index_notes, params=params)
        self.build_s = time.perf_counter() - t0
        self.n_notes = int(sum(len(n) for n in index_notes))

    def piece(self, pid: int) -> Piece:
        return self._piece_fn(pid)


# -- ground truth ------------------------------------------------------------------------------------
@dataclass
class PerfTruth:
    """A performance with, per performed note, the bar index of its aligned score note (-1: none)."""

    perf: Performance
    key: str
    notes: np.ndarray  # PERF_NOTE_DTYPE
    bar_of_note: np.ndarray  # int (n_notes,)
    bar_numbers: np.ndarray  # the score's bars["number"]


def load_truth(perf: Performance, piece: Piece) -> PerfTruth:
    """Map each performed note to the unfolded score bar it was aligned to."""
    notes, _ = load_performance_notes(perf.midi)
    al = load_alignment(perf)
    # (note_id, pass) -> unfolded note row
    occ: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for i, nid in enumerate(piece.notes["note_id"]):
        k = seen.get(nid, 0) + 1
        seen[nid] = k
        occ[(str(nid), k)] = i
    bar_of = np.full(len(notes), -1, dtype=np.int64)
    for row in al:
        i = occ.get((str(row["note_id"]), int(row["repeat"])))
        if i is None:
            continue
        j = np.flatnonzero((np.abs(notes["onset_s"] - row["onset_s"]) < 2e-3) & (notes["pitch"] == row["pitch"]))
        if len(j):
            bar_of[j[0]] = piece.notes["bar"][i]
    return PerfTruth(perf, piece_key(perf.folder), notes, bar_of, piece.bars["number"])


@dataclass
class Query:
    """One query excerpt with what counts as a correct answer."""

    name: str
    key: str  # piece_key of the true piece
    notes: np.ndarray  # PERF_NOTE_DTYPE, onsets start near 0
    ok_measures: frozenset  # bar numbers (strings) within ±1 of the true bar
    true_measure: str


def _ok_measures(numbers: np.ndarray, bar: int) -> frozenset:
    ok = set()
    for b in (bar - 1, bar, bar + 1):
        if 0 <= b < len(numbers):
            ok.add(str(numbers[b]))
    num = str(numbers[bar])
    if num.isdigit():
        ok.update({str(int(num) - 1), str(int(num) + 1)})
    return frozenset(ok)


def sample_queries(truths: Sequence[PerfTruth], *, length_s: float, n: int, seed: int) -> list[Query]:
    """``n`` excerpts of ``length_s`` seconds at uniform random performances and start times."""
    rng = np.random.default_rng(seed)
    out: list[Query] = []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        tr = truths[int(rng.integers(len(truths)))]
        on = tr.notes["onset_s"]
        if on[-1] - on[0] <= length_s:
            continue
        t0 = float(rng.uniform(on[0], on[-1] - length_s))
        sel = np.flatnonzero((on >= t0) & (on < t0 + length_s))
        if len(sel) < 3:
            continue
        aligned = sel[tr.bar_of_note[sel] >= 0]
        if len(aligned) == 0:
            continue
        bar = int(tr.bar_of_note[aligned[-1]])
        q = tr.notes[sel].copy()
        q["onset_s"] -= t0
        out.append(Query(f"{tr.perf.name}@{t0:.2f}", tr.key, q, _ok_measures(tr.bar_numbers, bar),
                         str(tr.bar_numbers[bar])))
    return out


# -- perturbations -----------------------------------------------------------------------------------
def transpose_scale(q: Query, *, rng: np.random.Generator, semitones: tuple[int, int] = (-5, 6),
                    scale: tuple[float, float] = (0.5, 2.0)) -> Query:
    """Transpose by a uniform integer in ``semitones`` and time-scale by a log-uniform factor."""
    t = int(rng.integers(semitones[0], semitones[1] + 1))
    f = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    notes = q.notes.copy()
    notes["pitch"] = np.clip(notes["pitch"] + t, 0, 127)
    notes["onset_s"] = notes["onset_s"] * f
    return Query(q.name + f" T{t:+d} x{f:.2f}", q.key, notes, q.ok_measures, q.true_measure)


def add_errors(q: Query, *, rate: float, rng: np.random.Generator) -> Query:
    """Delete ``rate`` of the notes and insert as many random notes (uniform time and pitch 21..108)."""
    notes = q.notes
    n_err = int(round(rate * len(notes)))
    keep = np.sort(rng.permutation(len(notes))[: len(notes) - n_err])
    span = float(notes["onset_s"].max()) if len(notes) else 1.0
    ins = np.zeros(n_err, dtype=PERF_NOTE_DTYPE)
    ins["onset_s"] = rng.uniform(0.0, span, n_err)
    ins["pitch"] = rng.integers(21, 109, n_err)
    ins["velocity"] = 64
    out = np.concatenate([notes[keep], ins])
    out = out[np.argsort(out["onset_s"], kind="stable")]
    return Query(q.name + f" err{rate:.2f}", q.key, out, q.ok_measures, q.true_measure)


# -- distractors -------------------------------------------------------------------------------------
def make_distractor(src: Piece, seed: int, *, name: str) -> Piece:
    """A shuffled, time-warped, re-voiced, transposed variant of ``src`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    notes, bars = src.notes, src.bars
    n_bars = len(bars)
    starts = bars["start_s"].astype(np.float64)
    end_s = float(notes["onset_s"].max()) + 0.5 if len(notes) else 0.0
    ends = np.append(starts[1:], max(end_s, starts[-1] + 0.5))
    perm = rng.permutation(n_bars)
    factors = np.exp(rng.uniform(np.log(0.75), np.log(1.33), n_bars))
    trans = int(rng.integers(-6, 7))
    pieces, new_bars = [], np.zeros(n_bars, dtype=BAR_DTYPE)
    cursor = 0.0
    by_bar = np.argsort(notes["bar"], kind="stable")
    bar_bounds = np.searchsorted(notes["bar"][by_bar], np.arange(n_bars + 1))
    for k, b in enumerate(perm):
        f = factors[k]
        rows = notes[by_bar[bar_bounds[b]:bar_bounds[b + 1]]].copy()
        rel = rows["onset_s"] - starts[b]
        rows["onset_s"] = cursor + rel * f + rng.normal(0.0, 0.01, len(rows))
        rows["onset_quarters"] = rows["onset_s"]
        rows["bar"] = k
        rows["measure_offset"] = np.maximum(rel * f, 0.0)
        u = rng.random(len(rows))
        shift = np.where(u < 0.075, -12, np.where(u < 0.15, 12, 0))
        rows["pitch"] = np.clip(rows["pitch"] + shift + trans, 21, 108)
        rows = rows[(u < 0.15) | (u >= 0.25)]  # the 10 % in [0.15, 0.25) are dropped
        pieces.append(rows)
        new_bars[k] = (cursor, cursor, str(k + 1), "")
        cursor += (ends[b] - starts[b]) * f
    out = np.concatenate(pieces) if pieces else np.zeros(0, NOTE_DTYPE)
    out["onset_s"] = np.maximum(out["onset_s"], 0.0)
    out["onset_quarters"] = out["onset_s"]
    out = out[np.lexsort((out["pitch"], out["onset_s"]))]
    return Piece(PieceMeta(source=name, title=name, composer="distractor"), out, new_bars)


def distractor_light(src: Piece, seed: int) -> np.ndarray:
    """Only ``onset_s`` and ``pitch`` of :func:`make_distractor` (what the index reads), compactly."""
    p = make_distractor(src, seed, name="")
    out = np.zeros(len(p.notes), dtype=LIGHT_DTYPE)
    out["onset_s"] = p.notes["onset_s"]
    out["pitch"] = p.notes["pitch"]
    return out
