"""Is the identifier's rejection threshold right for transcribed audio? A slack sweep.

On the engine benchmark's tuning subset (``follow_bench.select(n=20, offset=0.5)``, disjoint from the
reported one) ``--n`` random excerpts of ``--length`` seconds per soundfont, from pieces in the index
and from pieces left out of it (the engine benchmark's leave-out index, same seed), are transcribed
offline and asked with ``Identifier.candidates(slack=0.4)``. For each slack the table gives the share of
known queries whose best hypothesis passes ``threshold - slack`` and is the right piece (or a wrong
one), and the share of unknown queries rejected.

Run: ``.venv/bin/python -m companion.bench.audio_threshold --length 5 --n 60``
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("companion.bench.audio_threshold")

SLACKS = (0.0, 0.03, 0.05, 0.08, 0.1, 0.15)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.bench.audio_threshold", description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/companion-bench/asap_db"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/companion-bench/engine_render"))
    ap.add_argument("--length", type=float, default=5.0)
    ap.add_argument("--n", type=int, default=60, help="known and unknown queries per soundfont")
    ap.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "fluidr3mono"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    from companion.bench import engine_bench as eb
    from companion.bench.excerpts import SR, Renders
    from companion.bench.asap import SKIP_REASON, asap_root, piece_key
    from companion.fingerprint.identify import Identifier
    from companion.transcription.transcriber import Transcriber

    if asap_root() is None:
        print(SKIP_REASON)
        return 0
    db = eb.ensure_asap_db(args.db)
    ident = Identifier(db)
    # the engine benchmark's tuning subset and left-out pieces (its defaults: 20 performances, 6, seed 1)
    known, unknown, out_keys = eb.bench_sets(db, 20, 0.5, 6, 1)
    renders = Renders(args.cache)
    out_ident = eb.leave_out_identifier(db, set(out_keys), ident.params)
    tr = Transcriber()
    print(f"{args.length:.0f} s audio queries, {args.n} known + {args.n} unknown per soundfont "
          f"(tuning subset); best hypothesis passing threshold - slack:\n")
    print("| soundfont | slack | right piece | wrong piece | unknown rejected |\n|---|---|---|---|---|")
    for font in args.soundfonts:
        r = np.random.default_rng([7, len(font)])
        rows: dict[str, list[tuple[float | None, bool]]] = {"known": [], "unknown": []}
        for kind, pool, idn in (("known", known, ident), ("unknown", unknown, out_ident)):
            for _ in range(args.n):
                p = pool[int(r.integers(len(pool)))]
                t0 = float(r.uniform(0.0, max(0.0, p.duration_s - args.length - 2.0)))
                audio = renders.audio(p.perf, font)[int(t0 * SR):int((t0 + args.length) * SR)]
                notes = tr.transcribe(audio, online=False)
                cands = idn.candidates(notes, slack=0.4) if len(notes) >= 3 else []
                if not cands:
                    rows[kind].append((None, False))
                    continue
                best = cands[0]
                right = kind == "known" and piece_key(idn.db.metas[best.piece].source) == p.key
                rows[kind].append((best.confidence - idn.threshold(len(notes)), right))
        for slack in SLACKS:
            ok = [(m is not None and m >= -slack, right) for m, right in rows["known"]]
            right = np.mean([a and b for a, b in ok])
            wrong = np.mean([a and not b for a, b in ok])
            rejected = np.mean([m is None or m < -slack for m, _ in rows["unknown"]])
            print(f"| {font} | {slack:.2f} | {100 * right:.0f}% | {100 * wrong:.0f}% | {100 * rejected:.0f}% |")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
