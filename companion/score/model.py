"""The score model: a piece as structured note and bar arrays, in performance order.

Every stage downstream (fingerprints, tracker, GUI) reads a :class:`Piece`. The arrays follow the
partitura convention of structured numpy arrays with units in the field names.

``notes`` (dtype :data:`NOTE_DTYPE`), one row per sounding note, sorted by ``(onset_quarters, pitch)``,
with repeats unfolded (the order a performer plays them in):

================  =========  ===========================================================================
field             dtype      meaning
================  =========  ===========================================================================
onset_quarters    float64    onset along the *unfolded* score, in quarter notes from the start
onset_s           float64    the same onset in seconds at the score's own tempo (verovio's ``tstamp``)
duration_quarters float32    notated duration (tied notes merged), in quarter notes
pitch             int16      MIDI pitch
bar               int32      index into :attr:`Piece.bars` (the unfolded bar this note sounds in)
measure_offset    float32    ``onset_quarters - bars[bar].start_quarters``
note_id           U40        the notated element id (verovio ``xml:id``, MusicXML ``<note id>``), the same
                             id that the rendered SVG carries; repeated passes share the notated id
================  =========  ===========================================================================

``bars`` (dtype :data:`BAR_DTYPE`), one row per bar of the unfolded score, in performance order:

================  =========  ===========================================================================
start_quarters    float64    start of the bar along the unfolded score, quarters
start_s           float64    start of the bar in seconds at score tempo
number            U16        the score's own bar number (MusicXML ``number``, MEI ``@n``), as a string
measure_id        U40        the notated measure element id (for highlighting in the rendered score)
================  =========  ===========================================================================

The "measure" reported to users is ``bars[note.bar].number``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["NOTE_DTYPE", "BAR_DTYPE", "PieceMeta", "Piece", "ScoreError", "bar_at_quarters"]

NOTE_DTYPE = np.dtype(
    [
        ("onset_quarters", np.float64),
        ("onset_s", np.float64),
        ("duration_quarters", np.float32),
        ("pitch", np.int16),
        ("bar", np.int32),
        ("measure_offset", np.float32),
        ("note_id", "U40"),
    ]
)

BAR_DTYPE = np.dtype(
    [
        ("start_quarters", np.float64),
        ("start_s", np.float64),
        ("number", "U16"),
        ("measure_id", "U40"),
    ]
)


class ScoreError(Exception):
    """A score file that cannot be read: unsupported format, corrupt or empty. The message says why."""


@dataclass(frozen=True)
class PieceMeta:
    """What the library shows about a piece.

    Parameters
    ----------
    source : str
        Absolute path of the score file (the piece's key in the database).
    title, composer : str
        From the file's metadata, or derived from the path when the file has none.
    sha256 : str
        Hash of the file's bytes, to rebuild only what changed.
    """

    source: str
    title: str
    composer: str
    sha256: str = ""


@dataclass
class Piece:
    """A score as arrays (see module docstring for the fields)."""

    meta: PieceMeta
    notes: np.ndarray  # NOTE_DTYPE, shape (n_notes,)
    bars: np.ndarray  # BAR_DTYPE, shape (n_bars,)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.notes.dtype != NOTE_DTYPE:
            raise TypeError(f"notes must have NOTE_DTYPE, got {self.notes.dtype}")
        if self.bars.dtype != BAR_DTYPE:
            raise TypeError(f"bars must have BAR_DTYPE, got {self.bars.dtype}")

    @property
    def duration_quarters(self) -> float:
        if len(self.notes) == 0:
            return 0.0
        end = self.notes["onset_quarters"] + self.notes["duration_quarters"]
        return float(end.max())

    def bar_at(self, onset_quarters: float) -> int:
        """Index into :attr:`bars` of the bar sounding at ``onset_quarters`` (unfolded)."""
        return bar_at_quarters(self.bars, onset_quarters)

    def measure_at(self, onset_quarters: float) -> tuple[str, float]:
        """``(measure number, offset in quarters)`` at a position along the unfolded score."""
        i = self.bar_at(onset_quarters)
        return str(self.bars["number"][i]), float(onset_quarters - self.bars["start_quarters"][i])

    def quarters_to_seconds(self, onset_quarters: np.ndarray | float) -> np.ndarray:
        """Map unfolded quarters to seconds at score tempo (piecewise linear through the notes)."""
        q = self.notes["onset_quarters"]
        s = self.notes["onset_s"]
        return np.interp(onset_quarters, q, s)

    def seconds_to_quarters(self, onset_s: np.ndarray | float) -> np.ndarray:
        """Inverse of :meth:`quarters_to_seconds`."""
        return np.interp(onset_s, self.notes["onset_s"], self.notes["onset_quarters"])


def bar_at_quarters(bars: np.ndarray, onset_quarters: float) -> int:
    """Index of the last bar starting at or before ``onset_quarters`` (0 before the first bar)."""
    i = int(np.searchsorted(bars["start_quarters"], onset_quarters + 1e-9, side="right")) - 1
    return max(i, 0)
