"""Following MIDI input (a digital piano) from the start of a piece: the tracking benchmark's
performances and metrics (:mod:`companion.bench.follow_bench`), fed the performance MIDI files
themselves instead of rendered audio.

Followers, on the same files in the same run:

* **engine, piece mode**: ``companion follow --piece`` on a MIDI input, and the window with a chosen
  piece and a keyboard (:class:`companion.engine.Engine` with ``midi=True``, restricted to the piece:
  the position starts at the first note, played notes are matched to score notes, the identifier
  re-seeds where the player is), positions every 2048 / 44100 s;
* **engine, whole database**: ``companion follow`` without ``--piece`` (identify first), the same.

Until 2026-12-03 the window followed a keyboard in a chosen piece with the chroma tracker reading the
notes as spectrogram frames (``companion/gui/midi_follow.py``, removed); its row in BENCHMARKS.md was
measured with this tool at commit 2835b7d.

A note counts as shown in its right bar when the latest position available at its onset (the
positions computed from the notes before it) is in its bar; "lost" and searching count as wrong.

Run::

    nice -n 5 .venv/bin/python -m companion.bench.midi_follow_bench --n 6 --offset 0.5 --seconds 60
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

log = logging.getLogger("companion.bench.midi_follow_bench")

FOLLOWERS = ("engine, piece mode", "engine, whole database")


def _positions_arrays(rows: list[dict], source: str, twins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(available at, quarters, measures)`` of position dicts; not tracking -> no position. A bar shown
    in a twin of ``source`` (ASAP's ``_no_repeat`` scores) is given the number of the bar of ``source``
    it aligns with (:class:`~companion.bench.twins.TwinBars`; the quarters stay the twin's)."""
    from companion.bench.asap import piece_key

    ok = [r.get("state") == "tracking" and r.get("score_quarters") is not None
          and piece_key(r["source"]) == piece_key(source) for r in rows]
    t = np.array([r["t"] for r in rows], float)
    q = np.array([r["score_quarters"] if k else np.nan for r, k in zip(rows, ok)], float)
    m = []
    for r, k in zip(rows, ok):
        if k and r["source"] != source:
            aligned = twins.mapping(r["source"], source).get(str(r["measure"]), set())
            m.append(next(iter(aligned)) if len(aligned) == 1 else None)
        else:
            m.append(r["measure"] if k else None)
    return t, q, np.array(m, dtype=object)


def follow_engine(engine, clip) -> list[dict]:
    from companion.bench.excerpts import MidiExcerpts

    pos, _ = MidiExcerpts().run(engine, clip)
    return [p.to_json() for p in pos]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.bench.midi_follow_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6, help="number of performances")
    ap.add_argument("--offset", type=float, default=0.5, help="follow_bench.select offset (0.5: its held-out set)")
    ap.add_argument("--seconds", type=float, default=60.0, help="excerpt length from the start")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override an EngineParams field of both engines (tuning runs; repeatable)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    from companion.bench.asap import SKIP_REASON, asap_root, performances
    from companion.bench.engine_bench import DEFAULT_DB, engine_params, ensure_asap_db
    from companion.bench.excerpts import MidiExcerpts
    from companion.bench.follow_bench import TOLERANCES_MS, evaluate, ground_truth, select
    from companion.engine import Engine, EngineParams
    from companion.fingerprint.identify import Identifier

    if asap_root() is None:
        print(SKIP_REASON, file=sys.stderr)
        return 2
    db = ensure_asap_db(DEFAULT_DB)
    from companion.bench.twins import TwinBars

    twins = TwinBars(lambda source: db.piece(db.find(source)))
    params = engine_params(EngineParams, args.param)
    whole = Engine(db, identifier=Identifier(db), midi=True, params=params)
    perfs = select(performances(), args.n, args.offset)
    ex = MidiExcerpts()
    res: dict[str, list[dict]] = {f: [] for f in FOLLOWERS}
    cpu: dict[str, float] = {f: 0.0 for f in FOLLOWERS}
    for perf in perfs:
        pid = db.find(str(perf.score))
        piece = db.piece(pid)
        gt = ground_truth(perf, piece, max_s=args.seconds)
        clip = ex.cut(perf, 0.0, args.seconds)
        for name in FOLLOWERS:
            c0 = time.process_time()
            if name == FOLLOWERS[0]:
                rows = follow_engine(Engine(db, piece=pid, midi=True, params=params), clip)
            else:
                rows = follow_engine(whole, clip)
            cpu[name] += time.process_time() - c0
            m = evaluate(gt, *_positions_arrays(rows, piece.meta.source, twins))
            res[name].append(m)
            log.info("%s, %s: bar %.3f within 250 ms %.3f", perf.name, name, m["bar"], m["within_250"])
    n_notes = sum(m["n_notes"] for m in res[FOLLOWERS[0]])
    print(f"Performances ({len(perfs)}, first {args.seconds:.0f} s each, {n_notes} aligned notes): "
          + ", ".join(p.name for p in perfs))
    print()
    print("| follower | bar right | " + " | ".join(f"≤{t} ms" for t in TOLERANCES_MS) + " | CPU s / input s |")
    print("|---|---|" + "---|" * (len(TOLERANCES_MS) + 1))
    for name in FOLLOWERS:
        ms = res[name]

        def pooled(key, ms=ms):
            return sum(m[key] * m["n_notes"] for m in ms) / max(n_notes, 1)

        print(f"| {name} | {100 * pooled('bar'):.1f}% | "
              + " | ".join(f"{100 * pooled(f'within_{t}'):.1f}%" for t in TOLERANCES_MS)
              + f" | {cpu[name] / (len(perfs) * args.seconds):.4f} |")
    print()
    print("Per file (bar right): " + "; ".join(
        f"{p.name.split('/', 1)[1]} " + " / ".join(f"{res[f][i]['bar']:.2f}" for f in FOLLOWERS)
        for i, p in enumerate(perfs)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
