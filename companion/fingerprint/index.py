"""The fingerprint index: triplet hashes of all pieces in one sorted (bucketed) array set.

Layout (all arrays are plain numpy and may be ``np.memmap``; :meth:`FingerprintIndex.arrays` is the
complete state, stored by the database as one ``.npy`` per name):

================  ===================  ====================================================================
name              dtype, shape         meaning
================  ===================  ====================================================================
bucket_start      int64 (n_hash + 1,)  entries with hash ``h`` are rows ``bucket_start[h]:bucket_start[h+1]``
                                       (the hash column of a sorted array, stored run-length: CSR form)
piece             int32 (m,)           piece id of each entry (position in the database's piece list)
t1                float32 (m,)         anchor onset, score seconds
dt12              float32 (m,)         ``Δt12`` in score seconds (for the tempo ratio)
p1                int8 (m,)            anchor MIDI pitch (for the transposition)
note_onset_s      float32 (n_notes,)   onsets of all notes of all pieces, sorted per piece (to verify candidates)
note_pitch        int8 (n_notes,)      their pitches
piece_start       int64 (n_pieces+1,)  piece ``i``'s notes are ``piece_start[i]:piece_start[i+1]``
================  ===================  ====================================================================

Entries are sorted by hash with a stable counting sort (ties keep piece, then onset order), so a build
is deterministic.

References
----------
A. Arzt, S. Böck and G. Widmer, "Fast identification of piece and score position via symbolic
fingerprinting", ISMIR 2012.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from companion.fingerprint.hashing import extract_triplets, n_hash_values

__all__ = ["FingerprintParams", "FingerprintIndex"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FingerprintParams:
    """How triplets are formed and quantised (stored with the index; changing them needs a rebuild).

    Parameters
    ----------
    chord_tolerance_s : float
        Notes whose onsets lie within this of a group's first onset form one onset group.
    max_low, max_high : int
        Each onset group keeps its ``max_low`` lowest and ``max_high`` highest distinct pitches.
    min_dt_s, max_dt_s : float
        Bounds on ``Δt12`` and ``Δt23`` (seconds; score seconds at score tempo in the index).
    fan_out : int
        Number of following onset groups tried for ``n2`` and for ``n3``.
    pitch_clip : int
        Intervals are clipped to ``±pitch_clip`` semitones.
    tau_bins_per_octave : float
        Resolution of ``log2 τ``.
    tau_max_octaves : float
        ``log2 τ`` is clipped to ``±tau_max_octaves``.
    """

    chord_tolerance_s: float = 0.035
    max_low: int = 2
    max_high: int = 2
    min_dt_s: float = 0.05
    max_dt_s: float = 3.0
    fan_out: int = 2
    pitch_clip: int = 36
    tau_bins_per_octave: float = 4.0
    tau_max_octaves: float = 4.0

    def __post_init__(self) -> None:
        problems = []
        if not self.chord_tolerance_s >= 0:
            problems.append("chord_tolerance_s must be >= 0")
        if self.max_low < 1 or self.max_high < 1:
            problems.append("max_low and max_high must be >= 1")
        if not 0 < self.min_dt_s < self.max_dt_s:
            problems.append("need 0 < min_dt_s < max_dt_s")
        if self.fan_out < 1:
            problems.append("fan_out must be >= 1")
        if not 1 <= self.pitch_clip <= 63:
            problems.append("pitch_clip must be in 1..63")
        if not self.tau_bins_per_octave > 0 or not self.tau_max_octaves > 0:
            problems.append("tau_bins_per_octave and tau_max_octaves must be > 0")
        elif self.n_hash > 2**31:
            problems.append("hash space too large")
        if problems:
            raise ValueError("invalid FingerprintParams: " + "; ".join(problems))

    @property
    def tau_bins(self) -> int:
        return 2 * int(self.tau_max_octaves * self.tau_bins_per_octave + 0.5) + 1

    @property
    def n_hash(self) -> int:
        return n_hash_values(self.pitch_clip, self.tau_bins)

    def to_dict(self) -> dict:
        """JSON-able dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "FingerprintParams":
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys raise ``ValueError``."""
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown fingerprint parameter(s): {', '.join(unknown)}")
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                kw[f.name] = int(d[f.name]) if isinstance(f.default, int) else float(d[f.name])
        return cls(**kw)

    def triplet_kwargs(self) -> dict:
        """Keyword arguments for :func:`~companion.fingerprint.hashing.extract_triplets`."""
        return dict(chord_tolerance_s=self.chord_tolerance_s, max_low=self.max_low, max_high=self.max_high,
                    min_dt_s=self.min_dt_s, max_dt_s=self.max_dt_s, fan_out=self.fan_out,
                    pitch_clip=self.pitch_clip, tau_bins_per_octave=self.tau_bins_per_octave,
                    tau_max_octaves=self.tau_max_octaves)


_ARRAY_SPEC = {
    "bucket_start": np.int64, "piece": np.int32, "t1": np.float32, "dt12": np.float32, "p1": np.int8,
    "note_onset_s": np.float32, "note_pitch": np.int8, "piece_start": np.int64,
}


@njit(cache=True)
def _counting_sort(hashes, n_hash):  # pragma: no cover - numba
    """Stable order of ``hashes`` and the bucket offsets (CSR) of a counting sort."""
    start = np.zeros(n_hash + 1, dtype=np.int64)
    for h in hashes:
        start[h + 1] += 1
    for i in range(n_hash):
        start[i + 1] += start[i]
    pos = start[:-1].copy()
    order = np.empty(hashes.shape[0], dtype=np.int64)
    for i in range(hashes.shape[0]):
        h = hashes[i]
        order[pos[h]] = i
        pos[h] += 1
    return order, start


class FingerprintIndex:
    """Sorted-array index of triplet fingerprints over a list of pieces (piece id = list position).

    Build with :meth:`build`, persist with :meth:`arrays`, reload with :meth:`from_arrays`.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], params: FingerprintParams) -> None:
        self.params = params
        self.bucket_start = arrays["bucket_start"]
        self.piece = arrays["piece"]
        self.t1 = arrays["t1"]
        self.dt12 = arrays["dt12"]
        self.p1 = arrays["p1"]
        self.note_onset_s = arrays["note_onset_s"]
        self.note_pitch = arrays["note_pitch"]
        self.piece_start = arrays["piece_start"]

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def build(cls, notes_list: Sequence[np.ndarray], *, params: FingerprintParams | None = None
              ) -> "FingerprintIndex":
        """Index the notes of several pieces.

        Parameters
        ----------
        notes_list : sequence of np.ndarray
            One ``NOTE_DTYPE`` array per piece (only ``onset_s`` and ``pitch`` are read), sorted by
            onset; piece id = position in the sequence.
        params : FingerprintParams, optional

        Returns
        -------
        FingerprintIndex
        """
        params = params or FingerprintParams()
        kw = params.triplet_kwargs()
        hashes, pieces, t1s, dts, p1s = [], [], [], [], []
        onsets, pitches = [], []
        piece_start = np.zeros(len(notes_list) + 1, dtype=np.int64)
        for pid, notes in enumerate(notes_list):
            onset = np.asarray(notes["onset_s"], dtype=np.float64)
            pitch = np.asarray(notes["pitch"], dtype=np.int64)
            if len(onset) and np.any(np.diff(onset) < 0):
                order = np.argsort(onset, kind="stable")
                onset, pitch = onset[order], pitch[order]
            tr = extract_triplets(onset, pitch, **kw)
            onsets.append(onset.astype(np.float32))
            pitches.append(pitch.astype(np.int8))
            piece_start[pid + 1] = piece_start[pid] + len(onset)
            hashes.append(tr["hash"])
            pieces.append(np.full(len(tr["hash"]), pid, dtype=np.int32))
            t1s.append(tr["t1"].astype(np.float32))
            dts.append(tr["dt12"].astype(np.float32))
            p1s.append(tr["p1"].astype(np.int8))

        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

        h = cat(hashes, np.uint32)
        order, bucket_start = _counting_sort(h.astype(np.int64), params.n_hash)
        arrays = {
            "bucket_start": bucket_start,
            "piece": cat(pieces, np.int32)[order],
            "t1": cat(t1s, np.float32)[order],
            "dt12": cat(dts, np.float32)[order],
            "p1": cat(p1s, np.int8)[order],
            "note_onset_s": cat(onsets, np.float32),
            "note_pitch": cat(pitches, np.int8),
            "piece_start": piece_start,
        }
        log.debug("fingerprint index: %d pieces, %d notes, %d triplets", len(notes_list),
                  piece_start[-1], len(h))
        return cls(arrays, params)

    def arrays(self) -> dict[str, np.ndarray]:
        """The complete state, by name (see module docstring)."""
        return {name: getattr(self, name) for name in _ARRAY_SPEC}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], params: FingerprintParams) -> "FingerprintIndex":
        """Rebuild from :meth:`arrays` (arrays may be memory-mapped; they are not copied).

        Raises
        ------
        ValueError
            When an array is missing, has the wrong dtype or inconsistent shapes.
        """
        missing = [k for k in _ARRAY_SPEC if k not in arrays]
        if missing:
            raise ValueError(f"fingerprint index is missing array(s): {', '.join(missing)}")
        for name, dtype in _ARRAY_SPEC.items():
            a = arrays[name]
            if a.dtype != np.dtype(dtype) or a.ndim != 1:
                raise ValueError(f"fingerprint index array {name!r}: expected 1-D {np.dtype(dtype)}, got "
                                 f"{a.ndim}-D {a.dtype}")
        m = len(arrays["piece"])
        if any(len(arrays[k]) != m for k in ("t1", "dt12", "p1")):
            raise ValueError("fingerprint index: entry arrays differ in length")
        if len(arrays["bucket_start"]) != params.n_hash + 1 or int(arrays["bucket_start"][-1]) != m:
            raise ValueError("fingerprint index does not match its parameters (rebuild the database)")
        ps = arrays["piece_start"]
        if len(ps) < 1 or int(ps[-1]) != len(arrays["note_onset_s"]) or len(arrays["note_pitch"]) != int(ps[-1]):
            raise ValueError("fingerprint index: note arrays are inconsistent")
        return cls(arrays, params)

    # -- properties ----------------------------------------------------------------------------------
    @property
    def n_pieces(self) -> int:
        return len(self.piece_start) - 1

    @property
    def n_entries(self) -> int:
        return len(self.piece)

    @property
    def nbytes(self) -> int:
        """Total size of the arrays in bytes."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def piece_notes(self, pid: int) -> tuple[np.ndarray, np.ndarray]:
        """``(onset_s, pitch)`` of one piece's notes."""
        a, b = int(self.piece_start[pid]), int(self.piece_start[pid + 1])
        return self.note_onset_s[a:b], self.note_pitch[a:b]

    def __repr__(self) -> str:
        return (f"FingerprintIndex({self.n_pieces} pieces, {len(self.note_onset_s)} notes, "
                f"{self.n_entries} triplets, {self.nbytes / 1e6:.1f} MB)")
