"""The markdown tables of :mod:`companion.bench.engine_bench` (``--out``; bench/results/engine.md holds
them with the discussion written by hand)."""

from __future__ import annotations

import sys

import numpy as np

from companion.bench.engine_bench import CAUSES
from companion.bench.excerpts import BLOCK

__all__ = ["report"]


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def _sec(x) -> str:
    return "never" if not np.isfinite(x) else f"{x:.2f} s"


def _follow_table(fonts, results, part: str) -> list[str]:
    L = ["| input | n | first right bar: median | p90 | never | notes in right bar (whole minute) "
         "| after the first right bar | engine CPU s / audio s |", "|---|---|---|---|---|---|---|---|"]
    for f in fonts:
        v = results[f][part]
        L.append(f"| {f} | {v['n']} | {_sec(v['median_first'])} | {_sec(v['p90_first'])} | {v['never']} | "
                 f"{_pct(v['share'])} | {_pct(v['share_after'])} | {v['cpu']:.3f} |")
    return L


def _splice_table(fonts, results, part: str) -> list[str]:
    L = ["| input | splice | n | median recovery | p90 | never |", "|---|---|---|---|---|---|"]
    for f in fonts:
        for kind, v in results[f][part].items():
            L.append(f"| {f} | {kind} | {v['n']} | {_sec(v['median'])} | {_sec(v['p90'])} | {v['never']} |")
    return L


def report(args, argv, fonts, results, rt_cpu, perfs, out_keys, db, wall_s) -> str:
    """The markdown report of a full run (``engine_bench --out``): its tables, with the targets."""
    cmd = "nice -n 5 .venv/bin/python -m companion.bench.engine_bench " + " ".join(argv or sys.argv[1:])
    inputs = ("Input: the performance MIDI files themselves (what a digital piano sends), the same excerpts "
              "as the first soundfont's of the audio report, in note blocks of 2048 / 44100 s; the symbolic "
              "identifier (`IdentifyParams()`), no transcriber." if args.midi else
              f"Soundfonts: {', '.join(fonts)}; performances rendered whole with their pedalling.")
    L = ["# Companion engine benchmark (issue 5)" + (": MIDI input" if args.midi else ""), "",
         f"Command: `{cmd.strip()}` (wall time {wall_s / 60:.1f} min on this 2-core machine, shared).", "",
         f"Database: all {len(db.metas)} ASAP scores ({db.n_notes} notes), `{args.db}`. {inputs} "
         f"Performances: {len(perfs)} robustly aligned Chopin/Beethoven performances "
         "of distinct pieces (`follow_bench.select`); excerpts at "
         f"seeded random times (seed {args.seed}).", "",
         "Performances: " + ", ".join(p.perf.name for p in perfs) + ".", "",
         "## Identification " + ("from the played notes (one query)" if args.midi else
                                 "from audio (transcribe the excerpt, one query)"), "",
         "| input | excerpt | n | right piece | piece + bar ±1 (top-1) | piece + bar ±1 (ties) "
         "| piece + bar ±1 (top-1, engine's score axis) |",
         "|---|---|---|---|---|---|---|"]
    for f in fonts:
        for length, v in results[f]["identify"].items():
            L.append(f"| {f} | {length:.0f} s | {v['n']} | {_pct(v['piece'])} | {_pct(v['bar'])} | "
                     f"{_pct(v['bar_tie'])} | {_pct(v.get('bar_axis'))} |")
    L += ["", "Targets (5 s): right piece ≥ 95 %, bar ±1 ≥ 90 %.", "",
          f"## Following {args.follow_s:.0f} s excerpts from random starts (engine, {BLOCK}-sample blocks)", "",
          *_follow_table(fonts, results, "follow")]
    L += ["", "Targets: median time to the first right bar ≤ 3 s; ≥ 90 % of notes in the right bar over the "
          "minute.", "", "Where the notes of the minute were shown (share of the notes, mean over the runs; "
          "\"wrong seed\": the last seed or re-seed before the note was already > 8 bars off; \"same notes\": a "
          "bar more than one away, or in a twin score, that holds the same notes as the right one, counted "
          "there whatever its distance):", "",
          "| input | " + " | ".join(CAUSES) + " | seeds + re-seeds / min | tracker lost / min |",
          "|---" * (len(CAUSES) + 3) + "|"]
    for f in fonts:
        v = results[f]["follow"]
        per_min = 60.0 / max(v["audio_s"], 1e-9)
        L.append(f"| {f} | " + " | ".join(_pct(x) for x in v["causes"]) +
                 f" | {(v['seeds'] + v['reseeds']) * per_min:.1f} | {v['losses'] * per_min:.1f} |")
    L += ["", f"## Recovery after splices ({args.part_s:.0f} s + {args.part_s:.0f} s)", "",
          *_splice_table(fonts, results, "splice")]
    L += ["", "Forward: ~25 bars ahead in the same performance; backward: ~20 bars back; change: another "
          "piece. Target: median recovery ≤ 3 s."]
    L += ["", f"## Following with the piece known (`companion follow --piece`), {args.follow_s:.0f} s from random "
          "starts", "", "The following part's excerpts, through the engine in piece mode: the "
          "tracker starts at the piece's first note at once, and the identifier, restricted to the piece, "
          "re-seeds it where the player is. Notes shown while the tracker doubts itself (state \"lost\", "
          "its best guess on show) count as not shown.", "",
          *_follow_table(fonts, results, "piece")]
    L += ["", "Recovery after the same forward and backward splices in piece mode (the first part starts "
          "mid-piece, so the engine has found it first):", "",
          *_splice_table(fonts, results, "piece_splice")]
    L += ["", "## Pieces not in the database", "",
          f"Left out of a second index (twins too): {', '.join(out_keys)}.", "",
          "| input | excerpt | n | rejected (\"not in database\") | highest confidence accepted |",
          "|---|---|---|---|---|"]
    for f in fonts:
        for length, v in results[f]["unknown"].items():
            mc = "-" if v["max_conf_accepted"] is None else f"{v['max_conf_accepted']:.2f}"
            L.append(f"| {f} | {length:.0f} s | {v['n']} | {_pct(v['rejected'])} | {mc} |")
    L += ["", "The engine on 30 s excerpts of the left-out pieces (about 60 queries per run; it seeds on a "
          "clear hypothesis or on two consecutive agreeing ones):", "",
          "| input | n | runs never identified | share of positions showing a piece |", "|---|---|---|---|"]
    for f in fonts:
        v = results[f]["unknown_engine"]
        L.append(f"| {f} | {v['n']} | {_pct(v['never_seeded'])} | {_pct(v['tracking_share'])} |")
    cpu_off = np.mean([results[f]["follow"]["cpu"] for f in fonts])
    L += ["", "Target: ≥ 95 % rejected.", "", "## CPU", "",
          "| mode | CPU s per audio s |", "|---|---|",
          f"| engine offline (mean over the 60 s runs) | {cpu_off:.3f} |",
          f"| threaded pipeline paced in real time ({args.realtime_s:.0f} s file, all threads) | "
          + ("not run (MIDI)" if rt_cpu is None else f"{rt_cpu:.3f}") + " |",
          "", "Target: the whole pipeline ≤ 0.5 (50 % of one core).", ""]
    return "\n".join(L)
