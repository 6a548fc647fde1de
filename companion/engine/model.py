"""What passes between the engine's stages (a block of notes, the analysis of a block) and from the
identifier to the arbitration (a hypothesis: a place in a piece at a time); the score axis that maps
score seconds, the identifier's clock, to the quarters of the unfolded score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NoteBlock", "Analysis", "Hypothesis", "score_axis"]


@dataclass(frozen=True)
class NoteBlock:
    """Notes (MIDI input) completed by ``end_s`` on the input's clock: the symbolic analogue of an
    audio block. ``notes`` is a :data:`~companion.events.PERF_NOTE_DTYPE` array."""

    end_s: float
    notes: np.ndarray


@dataclass(frozen=True)
class Analysis:
    """What :meth:`Engine.analyse` hands to :meth:`Engine.decide`.

    Attributes
    ----------
    end_s : float
        Input consumed (the sample clock).
    spec : np.ndarray [shape=(n_frames, 1025)] or None
        Magnitude STFT frames completed by the block (None for MIDI input).
    first_frame : int
        Global index of ``spec``'s row 0 (frame ``k`` is centred at ``k / 100`` s).
    notes : np.ndarray, PERF_NOTE_DTYPE
        Notes completed by the block.
    final : bool
        The end of the stream (after ``flush``).
    activations : np.ndarray [shape=(m, 88)] or None
        The transcriber's note activations completed by the block (they lag ``spec``), for the
        tracker's onset feature.
    activations_first : int
        Global frame index of ``activations``' row 0.
    """

    end_s: float
    spec: np.ndarray | None
    first_frame: int
    notes: np.ndarray
    final: bool = False
    activations: np.ndarray | None = None
    activations_first: int = 0


@dataclass(frozen=True)
class Hypothesis:
    """A place in a piece proposed by the identifier: score seconds ``score_s`` at input time ``t``."""

    piece: int
    score_s: float
    tempo: float
    confidence: float
    t: float
    transposition: int = 0  # performed pitch - score pitch
    sure: bool = True  # passed the identifier's own threshold (else only a candidate to confirm)

    def predict(self, t: float) -> float:
        """Score seconds at input time ``t`` at this hypothesis' tempo."""
        return self.score_s + self.tempo * (t - self.t)

    def same_place(self, other: "Hypothesis", tolerance_s: float) -> bool:
        return self.piece == other.piece and abs(self.predict(other.t) - other.score_s) <= tolerance_s



def score_axis(piece: Any, *, tolerance_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Monotone anchor points ``(score seconds, quarters)`` of a piece's unfolded score, shape ``(n,)``
    each, from its bars and the notes that agree with the bar grid.

    The same construction as the tracker's score axis (:mod:`companion.tracking.chroma`): verovio
    occasionally gives a note an impossible position (e.g. -1300 quarters in ASAP's Chopin Ballade
    no. 1), which would break a plain interpolation through all notes.
    """
    bq, bs = piece.bars["start_quarters"], piece.bars["start_s"]
    q, s = piece.notes["onset_quarters"], piece.notes["onset_s"]
    ok = np.isfinite(q) & np.isfinite(s)
    if len(bq) >= 2:
        ok &= q >= bq[0] - 1e-6
        ok &= np.abs(np.interp(q, bq, bs) - s) <= tolerance_s + 0.5 * np.maximum(q - bq[-1], 0)
    s = np.concatenate([bs, s[ok]])
    q = np.concatenate([bq, q[ok]])
    order = np.lexsort((s, q))
    s, q = np.maximum.accumulate(s[order]), q[order]
    keep = np.ones(len(s), bool)
    keep[1:] = (np.diff(s) > 1e-9) & (np.diff(q) > 1e-9)
    if keep.sum() < 2:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    return s[keep], q[keep]
