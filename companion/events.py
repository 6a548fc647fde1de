"""Events that flow between the stages of the pipeline (plain data, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PERF_NOTE_DTYPE", "NoteEvent", "perf_notes", "Match"]

#: Performed (or transcribed) notes as a structured array, sorted by onset.
PERF_NOTE_DTYPE = np.dtype([("onset_s", np.float64), ("pitch", np.int16), ("velocity", np.int16)])


@dataclass(frozen=True)
class NoteEvent:
    """One note onset, from the transcriber or a MIDI keyboard.

    ``onset_s`` is seconds on the input's sample clock (``n_samples / sample_rate``), never wall time.
    """

    onset_s: float
    pitch: int
    velocity: int = 64


def perf_notes(events: "list[NoteEvent] | np.ndarray") -> np.ndarray:
    """Convert note events (or an ``(n, 2|3)`` array of onset, pitch[, velocity]) to a sorted
    :data:`PERF_NOTE_DTYPE` array."""
    if isinstance(events, np.ndarray) and events.dtype == PERF_NOTE_DTYPE:
        out = events.copy()
    else:
        out = np.zeros(len(events), dtype=PERF_NOTE_DTYPE)
        for i, e in enumerate(events):
            if isinstance(e, NoteEvent):
                out[i] = (e.onset_s, e.pitch, e.velocity)
            else:
                out[i] = (e[0], e[1], e[2] if len(e) > 2 else 64)
    order = np.lexsort((out["pitch"], out["onset_s"]))
    return out[order]


@dataclass(frozen=True)
class Match:
    """One identification hypothesis, as ``companion identify`` prints it (DESIGN.md §2)."""

    source: str
    title: str
    composer: str
    measure: str
    measure_offset: float
    confidence: float
    tempo_ratio: float
    transposition: int
    #: position at the end of the query along the unfolded score (for seeding the tracker)
    score_quarters: float = 0.0

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "title": self.title,
            "composer": self.composer,
            "measure": self.measure,
            "measure_offset": round(self.measure_offset, 3),
            "confidence": round(self.confidence, 4),
            "tempo_ratio": round(self.tempo_ratio, 4),
            "transposition": int(self.transposition),
        }
