"""What passes between the engine's stages (a block of notes, the analysis of a block) and from the
identifier to the arbitration (a hypothesis: a place in a piece at a time); the score axis that maps
score seconds, the identifier's clock, to the quarters of the unfolded score (the tracker's own,
:func:`companion.tracking.chroma.score_axis`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.tracking.chroma import score_axis  # (the tracker's axis: the engine maps between the two)

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
