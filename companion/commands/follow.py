"""``companion follow --db DIR INPUT [--piece SOURCE] [--realtime] [--json]``: follow a performance.

Prints a position for every block of input (2048 samples, at least every 0.1 s; DESIGN.md §2)::

    {"t", "state": "searching"|"tracking"|"lost", "source", "measure", "measure_offset",
     "score_quarters", "tempo", "confidence"}

``t`` is the input consumed, on the audio clock. Without ``--realtime`` the file runs as fast as the CPU
allows through the same block-by-block path as live input; with it, blocks are paced in real time.

The companion engine (:mod:`companion.engine`) runs it. Without ``--piece`` it identifies the piece
first, then follows it and re-identifies after jumps. With ``--piece`` it follows that piece from its
first note at once, and the identifier, restricted to the piece, re-seeds the tracker when the player
started elsewhere or the tracker has lost its way (``Engine(piece=...)``). INPUT is an audio file, a
MIDI file (its notes go straight to the identifier), or a live input (``mic``, ``device:N``,
``midi:NAME``; see :func:`companion.pipeline.open_input`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger("companion.follow")

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="score database directory (companion db build)")
    p.add_argument("input", metavar="INPUT",
                   help="audio file (.wav .flac .ogg .mp3), a MIDI file (.mid; its notes "
                        "go straight to the identifier), 'mic' (the default input device), 'device:N' or "
                        "'device:NAME' (a sound device), 'midi' or 'midi:NAME' (a MIDI input port); live "
                        "inputs run until Ctrl-C")
    p.add_argument("--piece", help="the piece to follow (from any bar): its source path, or a unique part of its path "
                                  "or title (without it: identify the piece first, then follow, re-identify "
                                  "after jumps)")
    p.add_argument("--realtime", action="store_true", help="pace the input in real time")
    p.add_argument("--json", action="store_true", help="print JSON lines only")


def _error(msg: str) -> int:
    print(f"companion follow: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Identify (without ``--piece``) and follow, through the companion engine (files, devices, MIDI)."""
    from companion.audio.sources import AudioError
    from companion.db import Database, DatabaseError
    from companion.engine import Engine
    from companion.pipeline import Pipeline, blocks, open_input, run_offline

    inp = None
    try:
        db = Database.open(args.db)
        pid = db.find(args.piece) if args.piece else None
        inp = open_input(args.input, realtime=args.realtime)
        engine = Engine(db, midi=inp.midi, piece=pid)
    except (DatabaseError, KeyError, AudioError, ValueError) as exc:
        if inp is not None:
            _close(inp)
        if isinstance(exc, KeyError):
            return _error(exc.args[0] if exc.args else f"no piece matches {args.piece!r}")
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
        _close(inp)
    out.flush()
    return 0


def _close(inp) -> None:
    close = getattr(inp.source, "close", None)
    if callable(close):
        close()


def _print_position(pos, as_json: bool, out) -> None:
    if as_json:
        out.write(json.dumps(pos.to_json()) + "\n")
    else:
        where = "-" if pos.measure is None else f"bar {pos.measure} +{pos.measure_offset:.2f}q"
        piece = "" if pos.source is None else f"  {pos.source}"
        out.write(f"{pos.t:8.2f}s  {pos.state:9s}  {where:18s}  tempo {pos.tempo:.2f}  "
                  f"confidence {pos.confidence:.2f}{piece}\n")
