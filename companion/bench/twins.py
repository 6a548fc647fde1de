"""Bars of ASAP twin scores that are the same music under other numbers.

ASAP keeps some pieces twice: ``X/xml_score.mxl`` with its repeats and ``X_no_repeat`` without them,
for the performers who skip a repeat (the benchmarks count twins as one piece). Their bar numbers
part where a first ending is left out: Beethoven op. 53 i bar 88 (after the first ending's bars 86-87)
is bar 86 of the ``_no_repeat`` score. A position shown in one twin is right for a note of the other
when its bar is the note's bar *as the two scores align*, not when the numbers are equal.

The alignment is the longest common subsequence of the two unfolded bar sequences, a bar being its
notes (pitch and onset within the bar). Every pass of a bar through a repeat gets the numbers of the
bars it is aligned with.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TwinBars"]


def _signatures(piece) -> list[tuple]:
    """One hashable content signature per unfolded bar: its notes' (onset in twelfths of a quarter
    from the bar's start, pitch), sorted."""
    bars = piece.bars
    notes = piece.notes
    out: list[list] = [[] for _ in range(len(bars))]
    off = np.round((notes["onset_quarters"] - bars["start_quarters"][notes["bar"]]) * 12).astype(np.int64)
    for b, o, p in zip(notes["bar"], off, notes["pitch"]):
        out[int(b)].append((int(o), int(p)))
    return [tuple(sorted(x)) for x in out]


def _lcs_pairs(a: list, b: list) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of ``a`` and ``b`` (equal items)."""
    n, m = len(a), len(b)
    eq = np.array([[x == y for y in b] for x in a], dtype=bool) if n and m else np.zeros((n, m), bool)
    L = np.zeros((n + 1, m + 1), np.int32)
    for i in range(n - 1, -1, -1):
        row, nxt = L[i], L[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = nxt[j + 1] + 1 if eq[i, j] else max(nxt[j], row[j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if eq[i, j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif L[i + 1, j] >= L[i, j + 1]:
            i += 1
        else:
            j += 1
    return pairs


class TwinBars:
    """``same(shown_source, shown_measure, truth_source, truth_measure)``: is a bar shown in one score
    the truth's bar in another? Equal numbers in the same score, the aligned bars across twins.
    ``piece_of(source)`` gives a :class:`~companion.score.model.Piece` (e.g. from the database)."""

    def __init__(self, piece_of) -> None:
        self._piece_of = piece_of
        self._maps: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._sigs: dict[str, dict[str, set[tuple]]] = {}

    def mapping(self, a: str, b: str) -> dict[str, set[str]]:
        """Bar numbers of score ``a`` -> the numbers of the bars of ``b`` they are aligned with."""
        key = (a, b)
        if key not in self._maps:
            pa, pb = self._piece_of(a), self._piece_of(b)
            out: dict[str, set[str]] = {}
            na, nb = pa.bars["number"], pb.bars["number"]
            for i, j in _lcs_pairs(_signatures(pa), _signatures(pb)):
                out.setdefault(str(na[i]), set()).add(str(nb[j]))
            self._maps[key] = out
        return self._maps[key]

    def same_notes(self, shown_source: str, shown_measure: str, truth_source: str, truth_measure: str) -> bool:
        """Whether the two bars hold the same notes (pitches and onsets within the bar; a bar without
        notes never counts): music that recurs note for note, which no excerpt can place."""
        def sigs(source):
            if source not in self._sigs:
                piece = self._piece_of(source)
                out: dict[str, set[tuple]] = {}
                for name, sig in zip(piece.bars["number"], _signatures(piece)):
                    if sig:
                        out.setdefault(str(name), set()).add(sig)
                self._sigs[source] = out
            return self._sigs[source]

        return bool(sigs(shown_source).get(str(shown_measure), set()) & sigs(truth_source).get(str(truth_measure), set()))

    def same(self, shown_source: str, shown_measure: str, truth_source: str, truth_measure: str) -> bool:
        if shown_source == truth_source:
            return shown_measure == truth_measure
        return truth_measure in self.mapping(shown_source, truth_source).get(str(shown_measure), ())
