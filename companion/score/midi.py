"""Load a MIDI file as a score (:func:`load_midi_score`), with mido.

A MIDI file has no notation, so the mapping is:

- ``onset_quarters`` = absolute tick / ``ticks_per_beat`` (MIDI's beat is the quarter note);
- ``onset_s`` from the tempo map (``set_tempo`` events; 120 bpm until the first one);
- bars from the time signatures (``time_signature`` events; 4/4 until the first one), numbered
  ``"1"``..``"N"`` (a MIDI file cannot say that its first bar is a pickup);
- ``note_id`` is ``midi-n<k>`` for the k-th note in score order, ``measure_id`` ``midi-m<k>``;
- notes on channel 10 (General MIDI percussion) are left out; a note without a note-off lasts to the
  end of the file.
Title and composer come from the path (see :mod:`companion.score.metadata`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from companion.score.model import BAR_DTYPE, NOTE_DTYPE, Piece, ScoreError

__all__ = ["load_midi_score", "midi_tempo_map"]

log = logging.getLogger(__name__)

_DRUM_CHANNEL = 9
_DEFAULT_TEMPO = 500_000  # microseconds per quarter (120 bpm)
_MAX_BARS = 100_000


def midi_tempo_map(tempo_events: list[tuple[int, int]], ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breakpoints of the tick -> seconds map.

    Parameters
    ----------
    tempo_events : list of (int, int)
        ``(absolute tick, microseconds per quarter)``, in any order.
    ticks_per_beat : int

    Returns
    -------
    ticks, seconds, sec_per_tick : np.ndarray [shape=(n_segments,)]
        Segment ``i`` starts at ``ticks[i]`` / ``seconds[i]`` and runs at ``sec_per_tick[i]``.
    """
    events = sorted(tempo_events)
    ticks = [0]
    tempos = [_DEFAULT_TEMPO]
    for tick, tempo in events:
        if tick == ticks[-1]:
            tempos[-1] = tempo
        else:
            ticks.append(tick)
            tempos.append(tempo)
    ticks_a = np.asarray(ticks, np.int64)
    spt = np.asarray(tempos, np.float64) / 1e6 / ticks_per_beat
    secs = np.zeros(len(ticks_a))
    if len(ticks_a) > 1:
        secs[1:] = np.cumsum(np.diff(ticks_a) * spt[:-1])
    return ticks_a, secs, spt


def _ticks_to_seconds(t: np.ndarray, tmap: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    ticks, secs, spt = tmap
    i = np.searchsorted(ticks, t, side="right") - 1
    return secs[i] + (t - ticks[i]) * spt[i]


def load_midi_score(path: str | os.PathLike) -> Piece:
    """Load a Standard MIDI File as a :class:`~companion.score.model.Piece`.

    Parameters
    ----------
    path : str or PathLike
        A ``.mid``/``.midi`` file (type 0 or 1).

    Returns
    -------
    Piece

    Raises
    ------
    ScoreError
        When the file is not a readable MIDI file, is of type 2, or holds no notes.
    """
    import mido

    from companion.score.load import dedupe_unisons, file_sha256
    from companion.score.metadata import read_metadata

    p = Path(path).expanduser().resolve()
    try:
        if p.stat().st_size == 0:
            raise ScoreError(f"{p}: empty file")
        mf = mido.MidiFile(str(p))
    except ScoreError:
        raise
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ScoreError(f"{p}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    if mf.type == 2:
        raise ScoreError(f"{p}: MIDI type 2 (independent sequences) is not supported")
    tpb = int(mf.ticks_per_beat or 0)
    if tpb <= 0:
        raise ScoreError(f"{p}: SMPTE time division is not supported (need ticks per quarter note)")

    tempos: list[tuple[int, int]] = []
    timesigs: list[tuple[int, int, int]] = []
    starts: list[tuple[int, int]] = []  # (tick, pitch)
    ends: list[int] = []
    open_notes: dict[tuple[int, int], list[int]] = {}
    end_tick = 0
    for track in mf.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.append((tick, int(msg.tempo)))
            elif msg.type == "time_signature":
                timesigs.append((tick, int(msg.numerator), int(msg.denominator)))
            elif msg.type == "note_on" and msg.velocity > 0:
                if msg.channel == _DRUM_CHANNEL:
                    continue
                open_notes.setdefault((msg.channel, msg.note), []).append(len(starts))
                starts.append((tick, int(msg.note)))
                ends.append(-1)
            elif msg.type in ("note_off", "note_on"):
                stack = open_notes.get((msg.channel, msg.note))
                if stack:
                    ends[stack.pop(0)] = tick
        end_tick = max(end_tick, tick)
    if not starts:
        raise ScoreError(f"{p}: the MIDI file holds no notes")

    on = np.asarray([s[0] for s in starts], np.int64)
    pitch = np.asarray([s[1] for s in starts], np.int16)
    off = np.asarray(ends, np.int64)
    off[off < 0] = end_tick
    end_tick = max(end_tick, int(off.max()))
    tmap = midi_tempo_map(tempos, tpb)

    try:
        bars = _bars(timesigs, tpb, end_tick, tmap)
    except ScoreError as exc:
        raise ScoreError(f"{p}: {exc}") from None
    notes = np.zeros(len(on), NOTE_DTYPE)
    notes["onset_quarters"] = on / tpb
    notes["onset_s"] = _ticks_to_seconds(on, tmap)
    notes["duration_quarters"] = (off - on) / tpb
    notes["pitch"] = pitch
    notes = dedupe_unisons(notes)  # sorted by (onset, pitch), one note per key and onset
    notes["note_id"] = [f"midi-n{k}" for k in range(len(notes))]
    bar_idx = np.searchsorted(bars["start_quarters"], notes["onset_quarters"] + 1e-9, side="right") - 1
    bar_idx = np.clip(bar_idx, 0, len(bars) - 1)
    notes["bar"] = bar_idx
    notes["measure_offset"] = notes["onset_quarters"] - bars["start_quarters"][bar_idx]
    meta = read_metadata(p, file_sha256(p))
    return Piece(meta=meta, notes=notes, bars=bars)


def _bars(timesigs: list[tuple[int, int, int]], tpb: int, end_tick: int, tmap) -> np.ndarray:
    """Bar starts from the time signature changes, up to ``end_tick``."""
    sigs: list[tuple[int, int, int]] = []
    for tick, num, den in sorted(timesigs):
        if num <= 0 or den <= 0:
            continue
        if sigs and sigs[-1][0] == tick:
            sigs[-1] = (tick, num, den)
        else:
            sigs.append((tick, num, den))
    if not sigs or sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    starts: list[int] = []
    for i, (tick, num, den) in enumerate(sigs):
        bar_ticks = max(int(round(num * 4 * tpb / den)), 1)
        stop = sigs[i + 1][0] if i + 1 < len(sigs) else max(end_tick, tick + 1)
        if (stop - tick) // bar_ticks + len(starts) > _MAX_BARS:
            raise ScoreError(f"the file would have more than {_MAX_BARS} bars")
        starts.extend(range(tick, stop, bar_ticks))  # a change starts a new bar, even mid-bar
    st = np.asarray(starts, np.int64)
    bars = np.zeros(len(st), BAR_DTYPE)
    bars["start_quarters"] = st / tpb
    bars["start_s"] = _ticks_to_seconds(st, tmap)
    bars["number"] = [str(k + 1) for k in range(len(st))]
    bars["measure_id"] = [f"midi-m{k}" for k in range(len(st))]
    return bars
