"""Which confidence and threshold for transcribed audio? Calibration of ``IdentifyParams.for_audio``.

A transcriber misses many of the notes it hears (recall 0.64-0.86 on rendered ASAP performances) but
invents few (precision 0.86-0.93), so the F-measure of a right hypothesis is pulled down by the score's
notes the query lacks. This tool measures, on transcribed excerpts, how well an F-beta confidence
``(1 + β²) m / (β² n_score + n_query)`` with the threshold ``a + b / sqrt(n_query)`` (plus a margin
for transposed hypotheses) separates the right pieces from pieces not in the database.

Data: the engine benchmark's development sets (``bench_sets(db, 20, offset, 6, 1)`` for each
``--offsets``; the reported set is offset 0), with its left-out pieces (not in a second index). For
each soundfont, length and offset, ``--n`` excerpts of known and ``--n`` of unknown pieces at seeded
random times are transcribed offline and asked once (:meth:`Identifier.candidates` with the symbolic
parameters and a slack that keeps every checked hypothesis); each hypothesis' counts (``matched``,
``n_query``, ``n_score``) give its confidence under any β. A known query is "right" when its best
hypothesis that passes the threshold is the right piece (a transposed one ranks ``key_prior`` lower,
as in the identifier); an unknown query is "rejected" when none passes.

Run (about 2 minutes per offset)::

    nice -n 5 .venv/bin/python -m companion.bench.audio_confidence --offsets 0.5 0.25 --n 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.fingerprint.identify import f_beta

log = logging.getLogger("companion.bench.audio_confidence")

#: (β, a, b, transposed margin) rows of the table: the symbolic setting, then grids around the audio one
DEFAULT_GRID = ([(1.0, 0.45, 0.9, 0.0)]
                + [(beta, a, b, 0.0) for beta in (0.7, 0.5, 0.35) for a, b in ((0.5, 0.9), (0.42, 1.2), (0.55, 0.5))]
                + [(0.5, a, b, tm) for tm in (0.1, 0.2, 0.3) for a, b in ((0.45, 0.6), (0.42, 0.6), (0.4, 0.6),
                                                                         (0.37, 0.9))])


@dataclass(frozen=True)
class Query:
    soundfont: str
    length: float
    known: bool
    key: str  # the excerpt's piece
    # per hypothesis: piece key, matched, n_query, n_score, transposition
    hyps: tuple[tuple[str, int, int, int, int], ...]


def decide(q: Query, beta: float, a: float, b: float, transposed_margin: float = 0.0,
           key_prior: float = 0.15) -> str | None:
    """The key of the best hypothesis passing ``a + b / sqrt(n)`` (plus ``transposed_margin`` for a
    transposed one); None: "not in the database"."""
    if not q.hyps:
        return None
    keys = [h[0] for h in q.hyps]
    m, nq, ns, tr = (np.array([h[i] for h in q.hyps], float) for i in range(1, 5))
    conf = f_beta(m, nq, ns, beta)
    ok = conf >= a + b / np.sqrt(np.maximum(nq, 1)) + transposed_margin * (tr != 0)
    if not ok.any():
        return None
    rank = np.where(ok, conf - key_prior * (tr != 0), -np.inf)
    return keys[int(np.argmax(rank))]


def collect(db, offsets: list[float], lengths: list[float], n: int, soundfonts: list[str], cache: Path) -> list[Query]:
    from companion.bench import engine_bench as eb
    from companion.bench.excerpts import SR, Renders
    from companion.bench.asap import piece_key
    from companion.fingerprint.identify import Identifier, IdentifyParams
    from companion.transcription.transcriber import Transcriber

    symbolic = IdentifyParams()
    ident = Identifier(db, params=symbolic)
    renders = Renders(cache)
    tr = Transcriber()
    out: list[Query] = []
    for offset in offsets:
        known, unknown, out_keys = eb.bench_sets(db, 20, offset, 6, 1)
        out_ident = eb.leave_out_identifier(db, set(out_keys), symbolic)
        for font in soundfonts:
            for length in lengths:
                rng = np.random.default_rng([7, int(100 * offset), len(font), int(length)])
                for known_piece, pool, idn in ((True, known, ident), (False, unknown, out_ident)):
                    for _ in range(n):
                        p = pool[int(rng.integers(len(pool)))]
                        t0 = float(rng.uniform(0.0, max(0.0, p.duration_s - length - 2.0)))
                        audio = renders.audio(p.perf, font)[int(t0 * SR):int((t0 + length) * SR)]
                        notes = tr.transcribe(audio, online=False)
                        cands = idn.candidates(notes, slack=1.0) if len(notes) >= 3 else []
                        hyps = tuple((piece_key(idn.db.metas[c.piece].source), c.matched, c.n_query, c.n_score,
                                      c.transposition) for c in cands)
                        out.append(Query(font, length, known_piece, p.key, hyps))
                log.info("offset %.2f %s %.0f s: %d queries so far", offset, font, length, len(out))
    return out


def table(queries: list[Query], grid: list[tuple[float, float, float, float]]) -> str:
    fonts = sorted({q.soundfont for q in queries}, reverse=True)
    lengths = sorted({q.length for q in queries})
    head = "| β | a | b | transposed margin | " + " | ".join(f"{L:.0f} s {f}: right / wrong / unknown rejected"
                                          for L in lengths for f in fonts) + " |"
    lines = [head, "|" + "---|" * (4 + len(lengths) * len(fonts))]
    for beta, a, b, tm in grid:
        cells = []
        for L in lengths:
            for f in fonts:
                qs = [q for q in queries if q.soundfont == f and q.length == L]
                kn = [(q, decide(q, beta, a, b, tm)) for q in qs if q.known]
                un = [decide(q, beta, a, b, tm) for q in qs if not q.known]
                right = np.mean([d == q.key for q, d in kn]) if kn else np.nan
                wrong = np.mean([d is not None and d != q.key for q, d in kn]) if kn else np.nan
                rej = np.mean([d is None for d in un]) if un else np.nan
                cells.append(f"{100 * right:.0f} / {100 * wrong:.0f} / {100 * rej:.0f} %")
        lines.append(f"| {beta:g} | {a:g} | {b:g} | {tm:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.bench.audio_confidence", description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=Path("/tmp/companion-bench/asap_db"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/companion-bench/engine_render"))
    ap.add_argument("--offsets", type=float, nargs="+", default=[0.5, 0.25],
                    help="development sets (bench_sets offsets; 0 is the reported set)")
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    ap.add_argument("--n", type=int, default=100, help="known and unknown queries per offset, length and soundfont")
    ap.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "fluidr3mono"])
    ap.add_argument("--queries", type=Path, default=None,
                    help="JSON file of the collected queries: read if it exists (same arguments), else written")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    from companion.bench import engine_bench as eb
    from companion.bench.asap import SKIP_REASON, asap_root

    if asap_root() is None:
        print(SKIP_REASON)
        return 0
    if args.queries is not None and args.queries.exists():
        queries = [Query(q["soundfont"], q["length"], q["known"], q["key"], tuple(tuple(h) for h in q["hyps"]))
                   for q in json.loads(args.queries.read_text())]
    else:
        db = eb.ensure_asap_db(args.db)
        queries = collect(db, args.offsets, args.lengths, args.n, args.soundfonts, args.cache)
        if args.queries is not None:
            args.queries.write_text(json.dumps([dataclasses.asdict(q) for q in queries]))
    print(f"Transcribed audio queries, {args.n} known + {args.n} unknown per offset ({', '.join(map(str, args.offsets))}), "
          f"length and soundfont; confidence F-beta, threshold a + b / sqrt(n):\n")
    print(table(queries, DEFAULT_GRID))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
