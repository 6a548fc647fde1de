"""MIDI input: the score position between the identifier's answers, from the played notes alone.

There is no audio to align, so the position is the last agreeing hypothesis carried on at its tempo,
moved to the score note each played note matches near it, and frozen once no note has come for
``pause_s`` (:class:`~companion.engine.params.EngineParams`). A follower by repeated identification:
simple, and only as good as the identifier. :class:`NoteFollower` holds no position itself (the engine
does); it answers from a position and the notes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from companion.engine.model import Hypothesis

__all__ = ["NoteFollower"]


class NoteFollower:
    """Positions of played notes in the pieces ``piece_of(pid)`` gives, with the ``params``'
    ``agree_tolerance_s``, ``midi_chord_s`` and ``pause_s`` (an :class:`~companion.engine.params.EngineParams`)."""

    def __init__(self, piece_of: Callable[[int], Any], params: Any) -> None:
        self._piece_of = piece_of
        self.params = params
        self._onsets: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def clear(self) -> None:
        """Forget the pieces' onsets (cached)."""
        self._onsets.clear()

    def follow(self, h: Hypothesis, notes: np.ndarray, waiting: bool) -> tuple[Hypothesis, bool]:
        """Move the position ``h`` to the score note each played note matches near the prediction (same
        pitch, within ``agree_tolerance_s / 4`` score seconds); unmatched notes change nothing.
        ``waiting``: no note has matched yet (piece mode, at the first note). Returns the new position
        and whether it still waits."""
        pc = self._piece_of(h.piece)
        on, pitch = pc.notes["onset_s"], pc.notes["pitch"]
        tol = self.params.agree_tolerance_s / 4
        for n in notes:
            t = float(n["onset_s"])
            pred = h.score_s if waiting else h.predict(t)
            cand = np.flatnonzero((np.abs(on - pred) <= tol) & (pitch == int(n["pitch"]) - h.transposition))
            if len(cand):
                best = float(on[cand[np.argmin(np.abs(on[cand] - pred))]])
                h = Hypothesis(h.piece, best, h.tempo, h.confidence, t, h.transposition)
                waiting = False
        return h, waiting

    def onsets(self, pid: int) -> tuple[np.ndarray, np.ndarray]:
        """A piece's score onsets (seconds, sorted) and the bar index of each (cached)."""
        onsets = self._onsets.get(pid)
        if onsets is None:
            pc = self._piece_of(pid)
            ok = np.isfinite(pc.notes["onset_s"])
            order = np.argsort(pc.notes["onset_s"][ok], kind="stable")
            onsets = self._onsets[pid] = (pc.notes["onset_s"][ok][order], pc.notes["bar"][ok][order])
        return onsets

    def next_note(self, h: Hypothesis, now: float, waiting: bool) -> tuple[float, int] | None:
        """``(score seconds, bar index)`` of the next score onset to play after ``h`` (the last
        note matched, or the seed), None after the last note. The notes of a chord count as played
        with its first one once ``midi_chord_s`` has passed since (a chord's notes arrive spread
        over some tens of milliseconds, possibly in two blocks); until then it is ``h``'s own."""
        onsets = self.onsets(h.piece)
        c = self.params.midi_chord_s
        held = waiting or now - h.t < c  # (waiting: the next note is the first one)
        i = int(np.searchsorted(onsets[0], h.score_s + (-c if held else c), side="left" if held else "right"))
        if i >= len(onsets[0]):
            return None
        return float(onsets[0][i]), int(onsets[1][i])

    def score_s(self, h: Hypothesis, now: float, last_note_s: float | None, waiting: bool) -> float:
        """Score seconds at input time ``now``: ``h`` carried on at its tempo until ``pause_s`` after the
        last note played (``last_note_s``; None: none kept), then frozen; ``h`` itself while waiting."""
        if waiting:
            return h.score_s
        last_note = h.t if last_note_s is None else last_note_s
        until = min(now, max(h.t, last_note + self.params.pause_s))
        return h.predict(max(until, h.t))
