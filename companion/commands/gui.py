"""``companion gui``: the window (score, bar highlight, page turns), or a screenshot of it."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="score database directory (default: the last one used, else "
                                                   "the default database, built from music21's corpus if missing)")
    parser.add_argument("--input", metavar="FILE", help="follow this audio file (played to the speakers) or "
                                                        "MIDI file (default: listen to the input device)")
    parser.add_argument("--piece", metavar="SOURCE", help="the piece played: a database source path, a unique "
                                                          "part of its title or path, or a score file (default: "
                                                          "identified from the first 10 s of --input)")
    parser.add_argument("--positions", metavar="JSONL", help="replay positions recorded with `companion follow "
                                                             "--json` instead of following an input")
    parser.add_argument("--screenshot", metavar="PNG", help="follow --input as fast as possible up to --at "
                                                           "seconds, save the window to PNG and exit")
    parser.add_argument("--at", type=float, default=10.0, metavar="SECONDS",
                        help="input time of the screenshot (default 10)")
    parser.add_argument("--json", action="store_true", help="with --screenshot: print what the screenshot shows (piece, "
                                                             "bar, pages, highlight rectangle) as one JSON line")


def run(args: argparse.Namespace) -> int:
    from companion.gui.app import run_gui

    return run_gui(args)
