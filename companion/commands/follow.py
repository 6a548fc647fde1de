"""``companion follow --db DIR INPUT --piece SOURCE [--realtime] [--json]``: follow audio in a score.

Prints a position at least every 0.1 s of input (DESIGN.md §2)::

    {"t", "state": "searching"|"tracking"|"lost", "source", "measure", "measure_offset",
     "score_quarters", "tempo", "confidence"}

``t`` is the input consumed, on the audio clock. Without ``--realtime`` the file runs as fast as the CPU
allows through the same block-by-block path as live input; with it, blocks are paced in real time.

Without ``--piece`` the companion engine (:mod:`companion.engine`) identifies the piece first, then
follows it and re-identifies after jumps; INPUT may then also be a live input (``mic``, ``device:N``,
``midi:NAME``) or a MIDI file (see :func:`companion.pipeline.open_input`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger("companion.follow")

#: seconds of input per block (and per printed line)
BLOCK_S = 0.1
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="score database directory (companion db build)")
    p.add_argument("input", metavar="INPUT",
                   help="audio file (.wav .flac .ogg .mp3). Without --piece also: a MIDI file (.mid; its notes "
                        "go straight to the identifier), 'mic' (the default input device), 'device:N' or "
                        "'device:NAME' (a sound device), 'midi' or 'midi:NAME' (a MIDI input port); live "
                        "inputs run until Ctrl-C")
    p.add_argument("--piece", help="the piece to follow: its source path, or a unique part of its path or title "
                                  "(without it: identify the piece first, then follow, re-identify after jumps)")
    p.add_argument("--realtime", action="store_true", help="pace the input in real time")
    p.add_argument("--json", action="store_true", help="print JSON lines only")


def _error(msg: str) -> int:
    print(f"companion follow: error: {msg}", file=sys.stderr)
    return 2


def read_audio(path: str):
    """Mono float32 audio at 44.1 kHz. Raises ValueError with a readable message."""
    import numpy as np
    import soundfile as sf

    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise ValueError(f"{path}: cannot read audio ({exc})") from exc
    audio = audio.mean(axis=1)
    if sr != 44100:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sr), 44100)
        audio = resample_poly(audio, 44100 // g, int(sr) // g).astype(np.float32)
    return audio


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not args.piece:
        return _run_engine(args)
    inp = Path(args.input)
    if not inp.is_file():
        return _error(f"{inp}: no such file")
    if inp.suffix.lower() not in AUDIO_SUFFIXES:
        return _error(f"{inp}: unsupported input type {inp.suffix!r} (audio: {' '.join(AUDIO_SUFFIXES)})")

    from companion.db import Database, DatabaseError

    try:
        db = Database.open(args.db)
        pid = db.find(args.piece)
        piece = db.piece(pid)
    except DatabaseError as exc:
        return _error(str(exc))
    except KeyError as exc:
        return _error(exc.args[0] if exc.args else f"no piece matches {args.piece!r}")
    try:
        audio = read_audio(str(inp))
    except ValueError as exc:
        return _error(str(exc))

    from companion.tracking.follower import SAMPLE_RATE, Follower

    try:
        follower = Follower(piece)
    except ValueError as exc:
        return _error(str(exc))
    block = int(round(BLOCK_S * SAMPLE_RATE))
    out = sys.stdout
    start_wall = time.monotonic()
    last = None
    n = len(audio)
    starts = list(range(0, n, block)) or [0]
    for b, s0 in enumerate(starts):
        chunk = audio[s0:s0 + block]
        res = follower.process(chunk)
        if b == len(starts) - 1:
            tail = follower.flush()
            if len(tail):
                res = tail
        consumed = min(s0 + block, n)
        t = consumed / SAMPLE_RATE
        if args.realtime:
            delay = start_wall + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if len(res):
            last = follower.position(res, len(res) - 1, t)
        elif last is not None:
            last = type(last)(**{**last.__dict__, "t": t})
        if last is None:
            from companion.tracking.follower import ScorePosition

            pos = ScorePosition(t, "searching", piece.meta.source, None, None, None, 1.0, 0.0)
        else:
            pos = last
        if args.json:
            out.write(json.dumps(pos.to_json()) + "\n")
        else:
            where = "-" if pos.measure is None else f"bar {pos.measure} +{pos.measure_offset:.2f}q"
            out.write(f"{pos.t:8.2f}s  {pos.state:9s}  {where:18s}  tempo {pos.tempo:.2f}  "
                      f"confidence {pos.confidence:.2f}\n")
        if args.realtime:
            out.flush()
    out.flush()
    return 0


def _print_position(pos, as_json: bool, out) -> None:
    if as_json:
        out.write(json.dumps(pos.to_json()) + "\n")
    else:
        where = "-" if pos.measure is None else f"bar {pos.measure} +{pos.measure_offset:.2f}q"
        piece = "" if pos.source is None else f"  {pos.source}"
        out.write(f"{pos.t:8.2f}s  {pos.state:9s}  {where:18s}  tempo {pos.tempo:.2f}  "
                  f"confidence {pos.confidence:.2f}{piece}\n")


def _run_engine(args: argparse.Namespace) -> int:
    """No ``--piece``: identify, then follow, through the companion engine (files, devices, MIDI)."""
    from companion.audio.sources import AudioError
    from companion.db import Database, DatabaseError
    from companion.engine import Engine
    from companion.pipeline import Pipeline, blocks, open_input, run_offline

    try:
        db = Database.open(args.db)
        inp = open_input(args.input, realtime=args.realtime)
        engine = Engine(db, midi=inp.midi)
    except DatabaseError as exc:
        return _error(str(exc))
    except AudioError as exc:
        return _error(str(exc))
    out = sys.stdout
    live = args.realtime or not inp.finite

    def show(pos) -> None:
        _print_position(pos, args.json, out)
        if live:
            out.flush()

    try:
        if live:  # stage threads, as the GUI runs it
            Pipeline(blocks(inp), engine, listeners=[show], finite=inp.finite).run()
        else:  # as fast as the CPU allows, the same processors synchronously
            run_offline(blocks(inp), engine, finite=True, on_position=show)
    except AudioError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(inp.source, "close", None)
        if callable(close):
            close()
    out.flush()
    return 0
