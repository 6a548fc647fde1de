"""Access to the ASAP / (n)ASAP development data in ``../shared/data/asap`` (CC BY-NC-SA 4.0).

The data is read in place and never copied into the project. It is absent on a user's fresh clone:
:func:`asap_root` returns ``None`` then, and tests skip with :data:`SKIP_REASON`.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["asap_root", "SKIP_REASON", "score_paths", "piece_key", "Performance", "performances",
           "ALIGN_DTYPE", "load_alignment", "load_performance_notes"]

SKIP_REASON = "ASAP data not found (set COMPANION_ASAP or put it in ../shared/data/asap)"
_TWIN_SUFFIXES = re.compile(r"(_no_repeat|_no_first_repeat|_no_2_repeat|_extra_repeat|_repeat|_no_trio)$")


def asap_root() -> Path | None:
    """``$COMPANION_ASAP``, else ``<repo>/../shared/data/asap``; ``None`` where it does not exist."""
    env = os.environ.get("COMPANION_ASAP")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "asap")
    for c in cands:
        if (c / "dev_performances.csv").is_file():
            return c
    return None


def score_paths(root: Path | None = None) -> list[Path]:
    """All ``xml_score.mxl`` files, sorted."""
    root = root or asap_root()
    return sorted(root.rglob("xml_score.mxl")) if root else []


def piece_key(score_or_folder: str | os.PathLike) -> str:
    """Folder relative to the ASAP root with twin suffixes stripped: twins count as one piece."""
    p = Path(score_or_folder)
    if p.suffix:
        p = p.parent
    parts = list(p.parts)
    if "asap" in parts:
        parts = parts[parts.index("asap") + 1:]
    return _TWIN_SUFFIXES.sub("", "/".join(parts))


@dataclass(frozen=True)
class Performance:
    """One human performance with its note alignment to the score."""

    composer: str
    folder: Path  # absolute score folder
    midi: Path
    alignment: Path
    robust: bool

    @property
    def score(self) -> Path:
        return self.folder / "xml_score.mxl"

    @property
    def name(self) -> str:
        return f"{piece_key(self.folder)}/{self.midi.stem}"


def performances(root: Path | None = None, *, robust_only: bool = True) -> list[Performance]:
    """Performances listed in ``dev_performances.csv`` (Chopin and Beethoven), sorted by name."""
    root = root or asap_root()
    if root is None:
        return []
    out = []
    with open(root / "dev_performances.csv", newline="") as f:
        for row in csv.DictReader(f):
            robust = row.get("robust_note_alignment", "0") in ("1", "1.0")
            if robust_only and not robust:
                continue
            folder = root / row["folder"]
            perf = Performance(row["composer"], folder, root / row["midi_performance"],
                               root / row["note_alignments"], robust)
            if perf.score.is_file() and perf.midi.is_file() and perf.alignment.is_file():
                out.append(perf)
    return sorted(out, key=lambda p: p.name)


#: matched notes of a note_alignment.tsv: notated note id, repeat pass (1-based), onset and pitch
ALIGN_DTYPE = np.dtype([("note_id", "U40"), ("repeat", np.int16), ("onset_s", np.float64), ("pitch", np.int16)])


def load_alignment(perf: Performance) -> np.ndarray:
    """Matched (score note, performed note) pairs of a performance, sorted by performed onset."""
    rows = []
    with open(perf.alignment, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            xml_id, midi_id = row["xml_id"], row["midi_id"]
            if "insertion" in xml_id or "deletion" in (midi_id or "") or not row.get("onset"):
                continue
            base, _, rep = xml_id.rpartition("-")
            rows.append((base, int(rep) if rep.isdigit() else 1, float(row["onset"]), int(row["pitch"])))
    arr = np.array(rows, dtype=ALIGN_DTYPE)
    return arr[np.argsort(arr["onset_s"], kind="stable")]


def load_performance_notes(perf_midi: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """All notes of a performance MIDI file: ``(notes, duration_s)``, see
    :func:`companion.audio.midi.read_midi_file`."""
    from companion.audio.midi import read_midi_file

    return read_midi_file(perf_midi)
