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
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from companion.score.model import BAR_DTYPE, NOTE_DTYPE, Piece, ScoreError

__all__ = ["NOTATED_SUFFIXES", "MIDI_SUFFIXES", "SUPPORTED_SUFFIXES", "READER_VERSION", "load_score", "file_sha256",
           "dedupe_unisons", "verovio_load", "timemap_quarters", "close_silent_gaps"]

log = logging.getLogger(__name__)

NOTATED_SUFFIXES = (".musicxml", ".xml", ".mxl", ".mei", ".krn", ".abc")
MIDI_SUFFIXES = (".mid", ".midi")
SUPPORTED_SUFFIXES = NOTATED_SUFFIXES + MIDI_SUFFIXES

#: version of what this module makes of a score file; a database built by another version re-reads its
#: scores (2: quarter positions repaired from the timemap's times, see :func:`timemap_quarters`; 3: bars
#: holding silences of hundreds of quarters shortened, see :func:`close_silent_gaps`)
READER_VERSION = "3"

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
    try:
        if suffix in MIDI_SUFFIXES:
            from companion.score.midi import load_midi_score

            return load_midi_score(p)
        return _load_with_verovio(p)
    except ScoreError:
        raise
    except MemoryError:
        raise ScoreError(f"{p}: too large to load") from None
    except Exception as exc:  # a reader bug on odd input must not become a traceback for the user
        log.debug("unexpected error loading %s", p, exc_info=True)
        raise ScoreError(f"{p}: could not be read ({type(exc).__name__}: {exc})") from exc


_SURROGATE_BYTE = re.compile("[\udc80-\udcff]")


def verovio_load(tk, path: Path) -> bool:
    """Load ``path`` into verovio toolkit ``tk`` as :func:`load_score` does (use it wherever the ids
    must match the score model's, e.g. for rendering).

    Verovio reads ABC only when the text starts with its header (a leading blank line makes it fail),
    so ABC text goes in through ``loadData`` without leading blank lines; everything else through
    ``loadFile``.
    """
    if path.suffix.lower() == ".abc":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return bool(tk.loadData(text.lstrip("\r\n\t \ufeff")))
    return bool(tk.loadFile(str(path)))


def _load_with_verovio(p: Path) -> Piece:
    import verovio

    from companion.score.mei import measure_numbers, mei_pitches, tie_links
    from companion.score.metadata import read_metadata
    from companion.score.validate import check_score_file

    try:
        musicxml_root = check_score_file(p)  # keeps input that crashes verovio away from it
    except ScoreError as exc:
        raise ScoreError(f"{p}: {exc}") from None
    verovio.enableLog(verovio.LOG_OFF)
    sha = file_sha256(p)
    tk = verovio.toolkit()
    tk.setOptions(VEROVIO_OPTIONS)
    try:
        ok = verovio_load(tk, p)
    except Exception as exc:  # verovio raises on some malformed input
        raise ScoreError(f"{p}: verovio could not read it ({exc})") from exc
    if not ok:
        raise ScoreError(f"{p}: verovio could not read it (corrupt or not a score)")
    timemap = tk.renderToTimemap({"includeMeasures": True})
    if not timemap:
        raise ScoreError(f"{p}: the score has no timed content")
    try:
        # a latin-1 byte in the input comes back as a lone surrogate ("\udce9"): make it that character
        mei = _SURROGATE_BYTE.sub(lambda m: chr(ord(m.group()) - 0xDC00), tk.getMEI({"removeIds": False}))
        mei_root = ET.fromstring(mei)
    except (ET.ParseError, UnicodeError, ValueError) as exc:
        log.warning("%s: verovio's MEI export is unreadable (%s); ties are not merged", p, exc)
        mei_root = None
    ties = tie_links(mei_root) if mei_root is not None else {}
    pitches = mei_pitches(mei_root) if mei_root is not None else {}
    numbers = measure_numbers(mei_root) if mei_root is not None else {}
    notes, bars = _arrays_from_timemap(tk, timemap, ties=ties, pitches=pitches, numbers=numbers)
    notes, bars, closed = close_silent_gaps(notes, bars)
    if closed:
        log.warning("%s: %d bar(s) hold a silence of hundreds of quarters (inconsistent voice timing in the "
                    "file); shortened: %s", p, len(closed),
                    ", ".join(f"bar {num} by {cut:.0f} quarters" for num, cut in closed))
    if len(notes) == 0:
        raise ScoreError(f"{p}: the score holds no notes")
    meta = read_metadata(p, sha, musicxml_root=musicxml_root, mei_root=mei_root)
    return Piece(meta=meta, notes=notes, bars=bars)


def dedupe_unisons(notes: np.ndarray) -> np.ndarray:
    """Sort notes by ``(onset_quarters, pitch)`` and keep one of notes that share both.

    Two voices that meet on the same key at the same time (a unison, common where a melody is doubled
    in an inner voice) are struck once on a piano; the longest of them is kept, with its id.

    Parameters
    ----------
    notes : np.ndarray [shape=(n,), dtype=NOTE_DTYPE]

    Returns
    -------
    np.ndarray [shape=(m,), dtype=NOTE_DTYPE], m <= n
    """
    order = np.lexsort((-notes["duration_quarters"], notes["pitch"], notes["onset_quarters"]))
    notes = notes[order]
    if len(notes) < 2:
        return notes
    same = (np.diff(notes["onset_quarters"]) == 0) & (np.diff(notes["pitch"]) == 0)
    return notes[np.concatenate([[True], ~same])]


def timemap_quarters(timemap: list[dict]) -> np.ndarray:
    """Quarter-note position of every timemap entry, consistent with its time at score tempo.

    verovio 6.4 sometimes gives entries a wrong ``qstamp``: whole sections shifted by hundreds of
    quarters (ASAP's Chopin Barcarolle from bar 85, Beethoven op. 57 i), single notes far off
    (Chopin Ballade no. 1), or a passage that jumps back and forth (Chopin Sonata no. 3 iii), while
    their ``tstamp`` (ms at score tempo) stays right. The ``tempo`` entries cannot repair it alone:
    some scores have none although their tempo is not 120.

    So the entries are walked in time order and verovio's step ``Δq`` between neighbours is kept unless
    it goes backwards or is far longer than the current tempo allows (``Δq > 3 ρ Δt + 1``; a slower
    step is kept: fermatas and slow sections). A step that is not kept is replaced by ``ρ Δt``. ``ρ`` (quarters per second) starts at the median of verovio's steps, follows
    the kept steps, and scales with the ratio of the ``tempo`` entries where the score changes tempo.
    Where verovio is consistent, which is nearly always, its exact values come back unchanged.

    Parameters
    ----------
    timemap : list of dict
        ``renderToTimemap`` entries (``tstamp`` ms, ``qstamp``, optional ``tempo``), in any order.

    Returns
    -------
    np.ndarray [shape=(len(timemap),), dtype=float64]
    """
    n = len(timemap)
    t = np.array([float(e["tstamp"]) for e in timemap], dtype=np.float64) / 1000.0
    q_vrv = np.array([float(e["qstamp"]) for e in timemap], dtype=np.float64)
    if n == 0:
        return q_vrv
    order = np.argsort(t, kind="stable")
    dt_all = np.diff(t[order])
    dq_all = np.diff(q_vrv[order])
    steady = (dt_all > 0.05) & (dq_all > 0)
    rho = float(np.median(dq_all[steady] / dt_all[steady])) if steady.any() else 2.0
    q = np.empty(n, dtype=np.float64)
    first = order[0]
    q[first] = q_vrv[first]
    tempo = timemap[first].get("tempo")
    n_bad = 0
    for a, b in zip(order[:-1], order[1:]):
        new_tempo = timemap[a].get("tempo")
        if new_tempo is not None and float(new_tempo) > 0:
            if tempo is not None and float(tempo) > 0:
                rho *= float(new_tempo) / float(tempo)
            tempo = new_tempo
        dt = t[b] - t[a]
        dv = q_vrv[b] - q_vrv[a]
        expect = rho * dt
        if -1e-9 <= dv <= 3.0 * expect + 1.0:
            q[b] = q[a] + dv if abs(q[a] - q_vrv[a]) > 1e-9 else q_vrv[b]
            if dt > 0.1 and dv > 0:
                rho = dv / dt
        else:
            q[b] = q[a] + expect
            n_bad += 1
    if n_bad:
        log.info("verovio gave %d of %d timemap entries an inconsistent quarter position; repaired from their "
                 "times", n_bad, n)
    return q


def close_silent_gaps(notes: np.ndarray, bars: np.ndarray, *, factor: float = 10.0
                      ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float]]]:
    """Shorten silences inside a bar that are far longer than a bar (broken voice timing in a file).

    Some files carry inconsistent ``<forward>``/``<backup>`` durations (ASAP's Beethoven op. 57 i moves a
    voice ~660 quarters ahead in bars 69-163), so the bar holds hundreds of quarters in which nothing
    sounds; no performer plays that and no tracker can cross it. Where a bar is longer than ``factor``
    times the piece's median bar and holds a silence (no note sounding) longer than that, the silence is
    shortened so that the bar gets the median length (or to nothing when its notes need more), and all
    later notes and bars move earlier, in quarters and in seconds. Cadenzas (long bars full of notes)
    are left alone.

    Parameters
    ----------
    notes : np.ndarray [shape=(n,), dtype=NOTE_DTYPE], sorted by onset, with ``bar`` set
    bars : np.ndarray [shape=(m,), dtype=BAR_DTYPE]
    factor : float

    Returns
    -------
    notes, bars : repaired copies (the inputs when nothing changed)
    closed : list of (bar number, quarters removed)
    """
    closed: list[tuple[str, float]] = []
    if len(bars) < 3 or len(notes) == 0:
        return notes, bars, closed
    q = notes["onset_quarters"]
    ends = q + notes["duration_quarters"]
    end_q = max(float(bars["start_quarters"][-1]), float(ends.max()))
    lengths = np.diff(np.append(bars["start_quarters"], end_q))
    nominal = float(np.median(lengths))
    if nominal <= 0 or not np.any(lengths > factor * nominal):
        return notes, bars, closed
    notes, bars = notes.copy(), bars.copy()
    for i in np.flatnonzero(lengths > factor * nominal)[::-1]:  # from the end: earlier bars stay valid
        total = 0.0
        for _ in range(8):  # a bar may hold several such silences (one per broken voice)
            q = notes["onset_quarters"]
            ends = q + notes["duration_quarters"]
            lo = float(bars["start_quarters"][i])
            hi = float(bars["start_quarters"][i + 1]) if i + 1 < len(bars) else end_q
            if hi - lo <= factor * nominal:
                break
            points = np.unique(np.concatenate([[lo], q[(q >= lo) & (q < hi)], [hi]]))
            best_gap, gap_start, gap_end = 0.0, lo, lo
            for a, b in zip(points[:-1], points[1:]):
                sounding = ends[q <= a + 1e-9]
                start = max(a, float(sounding.max())) if len(sounding) else a
                if b - start > best_gap:
                    best_gap, gap_start, gap_end = b - start, start, b
            if best_gap <= factor * nominal:
                break
            cut = best_gap - max(nominal - ((hi - lo) - best_gap), 0.0)
            axis_q = np.concatenate([notes["onset_quarters"], bars["start_quarters"]])
            axis_s = np.concatenate([notes["onset_s"], bars["start_s"]])
            order = np.argsort(axis_q, kind="stable")
            s0, s1 = np.interp([gap_start, gap_end], axis_q[order], axis_s[order])
            cut_s = (s1 - s0) * cut / best_gap
            later = notes["onset_quarters"] >= gap_end - 1e-9
            notes["onset_quarters"][later] -= cut
            notes["onset_s"][later] -= cut_s
            later_bars = bars["start_quarters"] >= gap_end - 1e-9
            bars["start_quarters"][later_bars] -= cut
            bars["start_s"][later_bars] -= cut_s
            end_q -= cut
            total += cut
        if total > 0:
            closed.append((str(bars["number"][i]), total))
    notes["measure_offset"] = notes["onset_quarters"] - bars["start_quarters"][notes["bar"]]
    return notes, bars, closed[::-1]


def _arrays_from_timemap(
    tk,
    timemap: list[dict],
    *,
    ties: dict[str, str] | None = None,
    pitches: dict[str, int] | None = None,
    numbers: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn verovio's timemap into note and bar arrays (performance order, repeats unfolded).

    ``ties`` maps a tie's start note id to its end note id (notated ids); tie continuations are
    left out and their duration is merged into the first note of the tie. ``pitches`` gives MIDI
    pitches by notated id, read from the MEI (see :func:`companion.score.mei.mei_pitches`); it is
    spot-checked against verovio's ``getMIDIValuesForElement`` (0.5 ms a call), which is used for
    every note instead when a check fails. ``numbers`` gives bar numbers by measure id (else verovio
    is asked per measure).
    """
    ties = ties or {}
    pitches = dict(pitches or {})
    tie_ends = set(ties.values())
    onsets: dict[str, tuple[float, float]] = {}
    offsets: dict[str, float] = {}
    bar_rows: list[tuple[float, float, str]] = []
    qstamps = timemap_quarters(timemap)
    for entry, q in zip(timemap, qstamps):
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

    bar_rows.sort(key=lambda row: (row[0], row[1]))  # verovio lists the timemap by its own qstamp
    bars = np.zeros(len(bar_rows), dtype=BAR_DTYPE)
    number_cache: dict[str, str] = dict(numbers or {})
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

    def midi_pitch(elem_id: str) -> int:
        vals = tk.getMIDIValuesForElement(elem_id)
        return int(vals.get("pitch", -1)) if vals else -1

    if pitches:
        sample = [nid for nid in list(onsets)[:: max(len(onsets) // 8, 1)] if "-rend" not in nid]
        if any(pitches.get(nid, -1) != midi_pitch(nid) for nid in sample):
            log.warning("pitches read from the MEI disagree with verovio's MIDI values; asking verovio per note")
            pitches = {}
    pitch_cache.update(pitches)
    n = 0
    for nid, (q, t) in onsets.items():
        base = notated(nid)
        if base in tie_ends:
            continue  # continuation of a tied note: it does not sound again
        pitch = pitch_cache.get(base)
        if pitch is None:
            pitch = midi_pitch(nid)
            pitch_cache[base] = pitch
        if pitch < 0 or pitch > 127:
            continue  # rests, unpitched or unresolvable elements
        off = offsets.get(nid, q)
        if base in ties:  # follow the tie chain to its last note (same repeat pass: same id suffix)
            suffix = nid[len(base):] if nid.startswith(base) else ""
            cur = base
            for _ in range(64):
                cur = ties.get(cur)
                if cur is None:
                    break
                end = offsets.get(cur + suffix, offsets.get(cur))
                if end is not None and end > off:
                    off = end
        notes[n] = (q, t, max(off - q, 0.0), pitch, 0, 0.0, base)
        n += 1
    notes = dedupe_unisons(notes[:n])
    bar_idx = np.searchsorted(bars["start_quarters"], notes["onset_quarters"] + 1e-9, side="right") - 1
    bar_idx = np.clip(bar_idx, 0, len(bars) - 1)
    notes["bar"] = bar_idx
    notes["measure_offset"] = notes["onset_quarters"] - bars["start_quarters"][bar_idx]
    return notes, bars
