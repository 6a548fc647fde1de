"""Load score files into :class:`~companion.score.model.Piece` objects.

Notated formats (MusicXML ``.musicxml/.xml/.mxl``, MEI ``.mei``, Humdrum ``.krn``, ABC ``.abc``) go
through verovio, so that note and bar ids are the ones the rendered score will carry. Verovio's timemap
(``renderToTimemap``) gives the performance order with repeats expanded (ids of later passes get a
``-rendN`` suffix, mapped back with ``getNotatedIdForElement``), the quarter-note position ``qstamp``
and the time at score tempo ``tstamp``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from companion.score.model import BAR_DTYPE, NOTE_DTYPE, Piece, PieceMeta, ScoreError

__all__ = ["NOTATED_SUFFIXES", "MIDI_SUFFIXES", "SUPPORTED_SUFFIXES", "load_score", "file_sha256"]

log = logging.getLogger(__name__)

NOTATED_SUFFIXES = (".musicxml", ".xml", ".mxl", ".mei", ".krn", ".abc")
MIDI_SUFFIXES = (".mid", ".midi")
SUPPORTED_SUFFIXES = NOTATED_SUFFIXES + MIDI_SUFFIXES

#: verovio options used for every load; xmlIdSeed makes generated ids stable between runs
VEROVIO_OPTIONS = {"xmlIdSeed": 1}


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_score(path: str | os.PathLike) -> Piece:
    """Load one score file.

    Parameters
    ----------
    path : str or PathLike
        A file with one of :data:`SUPPORTED_SUFFIXES`.

    Returns
    -------
    Piece

    Raises
    ------
    ScoreError
        When the file is missing, of an unsupported type, unreadable, or holds no notes.
    """
    p = Path(path).expanduser().resolve()
    suffix = p.suffix.lower()
    if not p.is_file():
        raise ScoreError(f"{p}: no such file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise ScoreError(f"{p}: unsupported file type {suffix!r} (supported: {' '.join(SUPPORTED_SUFFIXES)})")
    if suffix in MIDI_SUFFIXES:
        from companion.score.midi import load_midi_score

        return load_midi_score(p)
    return _load_with_verovio(p)


def _default_meta(p: Path, sha: str) -> PieceMeta:
    return PieceMeta(source=str(p), title=p.stem, composer="", sha256=sha)


def _load_with_verovio(p: Path) -> Piece:
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    sha = file_sha256(p)
    tk = verovio.toolkit()
    tk.setOptions(VEROVIO_OPTIONS)
    try:
        ok = tk.loadFile(str(p))
    except Exception as exc:  # verovio raises on some malformed input
        raise ScoreError(f"{p}: verovio could not read it ({exc})") from exc
    if not ok:
        raise ScoreError(f"{p}: verovio could not read it (corrupt or not a score)")
    timemap = tk.renderToTimemap({"includeMeasures": True})
    if not timemap:
        raise ScoreError(f"{p}: the score has no timed content")
    notes, bars = _arrays_from_timemap(tk, timemap)
    if len(notes) == 0:
        raise ScoreError(f"{p}: the score holds no notes")
    from companion.score.metadata import read_metadata

    meta = read_metadata(p, tk, sha) or _default_meta(p, sha)
    return Piece(meta=meta, notes=notes, bars=bars)


def _arrays_from_timemap(tk, timemap: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Turn verovio's timemap into note and bar arrays (performance order, repeats unfolded)."""
    onsets: dict[str, tuple[float, float]] = {}
    offsets: dict[str, float] = {}
    bar_rows: list[tuple[float, float, str]] = []
    for entry in timemap:
        q = float(entry["qstamp"])
        t = float(entry["tstamp"]) / 1000.0
        m = entry.get("measureOn")
        if m is not None:
            bar_rows.append((q, t, m))
        for nid in entry.get("on", ()):
            onsets.setdefault(nid, (q, t))
        for nid in entry.get("off", ()):
            offsets[nid] = q

    notated_cache: dict[str, str] = {}

    def notated(elem_id: str) -> str:
        if "-rend" not in elem_id:
            return elem_id
        got = notated_cache.get(elem_id)
        if got is None:
            got = tk.getNotatedIdForElement(elem_id) or elem_id.split("-rend")[0]
            notated_cache[elem_id] = got
        return got

    bars = np.zeros(len(bar_rows), dtype=BAR_DTYPE)
    number_cache: dict[str, str] = {}
    for i, (q, t, mid) in enumerate(bar_rows):
        nid = notated(mid)
        num = number_cache.get(nid)
        if num is None:
            num = tk.getElementAttr(nid).get("n", "") or str(i + 1)
            number_cache[nid] = num
        bars[i] = (q, t, num, nid)
    if len(bars) == 0:
        bars = np.zeros(1, dtype=BAR_DTYPE)
        bars[0] = (0.0, 0.0, "1", "")
    # bars must be strictly increasing in start (verovio repeats measureOn for empty bars at one qstamp)
    keep = np.ones(len(bars), bool)
    keep[:-1] = bars["start_quarters"][1:] > bars["start_quarters"][:-1]
    bars = bars[keep]

    notes = np.zeros(len(onsets), dtype=NOTE_DTYPE)
    pitch_cache: dict[str, int] = {}
    n = 0
    for nid, (q, t) in onsets.items():
        base = notated(nid)
        pitch = pitch_cache.get(base)
        if pitch is None:
            vals = tk.getMIDIValuesForElement(nid)
            pitch = int(vals.get("pitch", -1)) if vals else -1
            pitch_cache[base] = pitch
        if pitch < 0 or pitch > 127:
            continue  # rests, unpitched or unresolvable elements
        off = offsets.get(nid, q)
        notes[n] = (q, t, max(off - q, 0.0), pitch, 0, 0.0, base)
        n += 1
    notes = notes[:n]
    order = np.lexsort((notes["pitch"], notes["onset_quarters"]))
    notes = notes[order]
    bar_idx = np.searchsorted(bars["start_quarters"], notes["onset_quarters"] + 1e-9, side="right") - 1
    bar_idx = np.clip(bar_idx, 0, len(bars) - 1)
    notes["bar"] = bar_idx
    notes["measure_offset"] = notes["onset_quarters"] - bars["start_quarters"][bar_idx]
    return notes, bars
