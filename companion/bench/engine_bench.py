"""Benchmark of the companion engine (issue 5) on rendered ASAP performances, with all 239 ASAP scores
in the database.

Data: the robustly aligned Chopin and Beethoven performances of ``dev_performances.csv`` (a
deterministic subset, :func:`companion.bench.follow_bench.select`), each performance MIDI rendered
whole, with its pedalling, by fluidsynth with every soundfont given (cached as FLAC). Excerpts are cut
from the rendered audio at seeded random times; the ground truth is the bar of every aligned performed
note (``note_alignment.tsv``). ASAP twins (``X`` / ``X_no_repeat`` ...) count as one piece.

Measured:

1. **Identification** (as ``companion identify`` on audio: the whole excerpt transcribed, then one
   query): right piece, and right piece with the bar within ±1 of the bar of the last aligned note,
   for 2/5/10 s excerpts. "top-1" is the best match; "tie" also accepts a match within 0.02
   confidence of the best (the same notes at another place: DESIGN.md §4).
2. **Following from a random start** (60 s excerpts through :class:`companion.engine.Engine`, 2048-
   sample blocks): time from the start to the first note shown in its right bar (piece and bar, state
   "tracking", the latest position available at the note's onset on the audio clock); the share of all
   aligned notes of the minute shown in the right bar (the search at the start included), and after
   the first right one.
3. **Recovery after a splice**: 15 s of a performance, then 15 s from ~25 bars further on (forward),
   ~20 bars back (backward), or another piece (change); the time from the splice to the first note of
   the second part shown in its right bar.
4. **CPU**: process CPU seconds per audio second of the engine offline (all 60 s runs), and of the
   threaded pipeline paced in real time (a file source with real-time pacing; all threads).
5. **Not in the database**: 5 s and 10 s excerpts of pieces whose scores (twins included) are left
   out of a second index built from the rest; a query is rejected when the identifier returns nothing.
6. **With the piece known** (``companion follow --piece``: the engine in piece mode): the excerpts of 2
   and the forward and backward splices of 3, one engine per run restricted to the piece played.

With ``--midi`` every experiment runs on the performance MIDI files themselves instead (a digital
piano: the same excerpts as the first soundfont's, the symbolic identifier, no transcriber;
:mod:`companion.bench.excerpts`). A bar shown in an ASAP twin score (``X`` / ``X_no_repeat``) is
judged at the bar the twins align (:mod:`companion.bench.twins`).

Run (about 10 min on 2 cores; the first run also builds the database and renders)::

    nice -n 5 .venv/bin/python -m companion.bench.engine_bench --n-follow 16 --n-splice 10 --out bench/out/engine.md
    nice -n 5 .venv/bin/python -m companion.bench.engine_bench --midi --n-follow 16 --n-splice 10 --out bench/out/engine_midi.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.bench.excerpts import SR, AudioExcerpts, MidiExcerpts, Renders

log = logging.getLogger("companion.bench.engine_bench")

PARTS = ("identify", "follow", "splice", "unknown", "piece", "cpu")
DEFAULT_DB = Path(tempfile.gettempdir()) / "companion-bench" / "asap_db"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "companion-bench" / "engine_render"


def ensure_asap_db(path: Path):
    """Open the ASAP database at ``path``, building (or updating) it from all ASAP scores first."""
    from companion.bench.asap import score_paths
    from companion.db import Database, build_database

    paths = score_paths()
    rep = build_database(path, paths)
    if rep.failed:
        log.warning("scores that could not be read: %s", rep.failed)
    return Database.open(path)


@dataclass
class Perf:
    """A rendered performance with its ground truth (aligned notes: onset, measure, piece key)."""

    perf: object
    key: str
    onset: np.ndarray
    measure: np.ndarray  # str
    bar: np.ndarray  # bar index in the piece
    numbers: np.ndarray  # the piece's bar numbers
    duration_s: float
    source: str = ""  # the piece's source (for the bar distance of a shown position)
    pid: int = -1  # and its id in the database


def load_perf(db, perf) -> Perf:
    from companion.bench.asap import piece_key
    from companion.bench.follow_bench import ground_truth

    pid = db.find(str(perf.score))
    piece = db.piece(pid)
    gt = ground_truth(perf, piece, max_s=1e9)
    bars = np.array([piece.bar_at(q) for q in gt.quarters], np.int64)
    return Perf(perf, piece_key(perf.folder), gt.onset_s, gt.measure, bars, piece.bars["number"],
                float(gt.onset_s[-1]) + 2.0, piece.meta.source, pid)


def _ok(measure: str) -> set[str]:
    out = {measure}
    if measure.isdigit():
        out |= {str(int(measure) - 1), str(int(measure) + 1)}
    return out


def _shown_right(positions, truth_t, truth_measure, truth_key, truth_source: str, twins) -> np.ndarray:
    """Per ground-truth note: the piece (twins count as one) and bar on show (state "tracking") at its
    onset. In a twin of the truth's score (``truth_source``) the bar must be the truth's as the twins
    align (``twins``: :class:`~companion.bench.twins.TwinBars`)."""
    from companion.bench.asap import piece_key

    ts = np.array([p.t for p in positions])
    k = np.searchsorted(ts, truth_t, side="right") - 1
    keys = {}
    out = np.zeros(len(truth_t), bool)
    for i, (kk, m, key) in enumerate(zip(k, truth_measure, truth_key)):
        if kk < 0:
            continue
        p = positions[kk]
        if p.state != "tracking" or p.source is None:
            continue
        pk = keys.get(p.source) or keys.setdefault(p.source, piece_key(p.source))
        out[i] = pk == key and twins.same(p.source, p.measure, truth_source, m)
    return out


#: where the notes of a following run are shown (:func:`_breakdown`), in table order
CAUSES = ("right", "before the first seed", "searching / lost", "wrong piece", "bar ±1", "2-8 bars off",
          "> 8 bars off, wrong seed", "> 8 bars off, drift", "> 1 bar off, same notes")


def _breakdown(positions, events, truth_t, truth_measure, truth_bar, perf: "Perf", db, twins) -> np.ndarray:
    """Why each ground-truth note was (not) shown in its right bar: an index into :data:`CAUSES`.

    A note before the engine's first seed counts there whatever is shown; a position far off (more
    than 8 bars) counts as a wrong seed when the last seed or re-seed before it was already more than
    8 bars from the truth at its time, as drift otherwise.
    """
    from companion.bench.asap import piece_key

    ts = np.array([p.t for p in positions])
    k = np.searchsorted(ts, truth_t, side="right") - 1
    seeds = [(t, pid, s) for t, what, pid, s in events if what in ("seed", "reseed")]
    seed_t = np.array([t for t, _, _ in seeds])
    piece = None
    # whether each seed landed within 8 bars of the truth (the bar of the last note sounded by then)
    seed_ok = []
    for t, pid, s in seeds:
        if db.metas[pid].source != perf.source:
            seed_ok.append(piece_key(db.metas[pid].source) == perf.key)
            continue
        piece = piece or db.piece(perf.pid)
        from companion.engine import score_axis

        s_ax, q_ax = score_axis(piece)
        j = np.searchsorted(truth_t, t, side="right") - 1
        b = piece.bar_at(float(np.interp(s, s_ax, q_ax)))
        seed_ok.append(j < 0 or abs(b - int(truth_bar[max(j, 0)])) <= 8)
    out = np.zeros(len(truth_t), np.int64)
    for i, (kk, t) in enumerate(zip(k, truth_t)):
        n_seed = int(np.searchsorted(seed_t, t, side="right"))
        p = positions[kk] if kk >= 0 else None
        if n_seed == 0:
            right = p is not None and p.state == "tracking" and p.source is not None \
                and piece_key(p.source) == perf.key and twins.same(p.source, p.measure, perf.source, truth_measure[i])
            out[i] = 0 if right else 1
            continue
        if p is None or p.state != "tracking" or p.source is None or p.score_quarters is None:
            out[i] = 2
            continue
        if piece_key(p.source) != perf.key:
            out[i] = 3
            continue
        if twins.same(p.source, p.measure, perf.source, truth_measure[i]):  # as _shown_right
            continue
        piece = piece or db.piece(perf.pid)
        d = abs(piece.bar_at(p.score_quarters) - int(truth_bar[i])) if p.source == perf.source else None
        if (d is None or d > 1) and twins.same_notes(p.source, p.measure, perf.source, truth_measure[i]):
            out[i] = 8  # the notes recur there: no excerpt can tell the places apart
            continue
        if d is None:  # a twin, not at the truth's bar
            out[i] = 5
            continue
        out[i] = 4 if d <= 1 else 5 if d <= 8 else 6 if not seed_ok[n_seed - 1] else 7
    return out


# ----------------------------------------------------------------------------------------- experiments
def bench_identify(db, ident, perfs, ex, lengths, n, rng, twins) -> dict:
    """One query per excerpt of each length (``ex``: :class:`AudioExcerpts` or :class:`MidiExcerpts`).
    A match in a twin of the performance's score counts at the bars the twins align (``twins``)."""
    from companion.bench.asap import piece_key
    from companion.engine import score_axis

    res = {}
    for length in lengths:
        rows = []
        for _ in range(n):
            p = perfs[int(rng.integers(len(perfs)))]
            t0 = float(rng.uniform(0.0, max(0.0, p.duration_s - length - 2.0)))
            sel = np.flatnonzero((p.onset >= t0) & (p.onset < t0 + length))
            notes = ex.notes(ex.cut(p.perf, t0, t0 + length))
            ms = ident.identify(notes, top_k=5) if len(notes) else []
            if len(sel) == 0:
                continue
            ok_m = _ok(str(p.measure[sel[-1]]))

            def at_bar(source, measure, ok_m=ok_m, p=p):
                return any(twins.same(source, measure, p.source, m) for m in ok_m)

            top = ms[0] if ms else None
            piece_ok = top is not None and piece_key(top.source) == p.key
            bar_ok = piece_ok and at_bar(top.source, top.measure)
            tie_ok = any(piece_key(m.source) == p.key and at_bar(m.source, m.measure) for m in ms
                         if m.confidence >= top.confidence - 0.02) if top else False
            # the bar as the engine maps the same top hypothesis (its own score axis, see score_axis)
            cands = ident.candidates(notes) if len(notes) else []
            axis_ok = False
            if cands and piece_key(db.metas[cands[0].piece].source) == p.key:
                pc = db.piece(cands[0].piece)
                s_ax, q_ax = score_axis(pc)
                axis_ok = at_bar(pc.meta.source, pc.measure_at(float(np.interp(cands[0].score_end_s, s_ax, q_ax)))[0])
            rows.append((piece_ok, bar_ok, tie_ok, axis_ok))
        a = np.array(rows, bool).reshape(-1, 4)
        res[length] = {"n": len(a), "piece": a[:, 0].mean(), "bar": a[:, 1].mean(), "bar_tie": a[:, 2].mean(),
                       "bar_axis": a[:, 3].mean()}
        log.info("%s identify %.0f s: %s", ex.name, length, res[length])
    return res


def bench_follow(engine, perfs, ex, length, n, rng, db=None, *, twins) -> dict:
    """60 s runs from random starts. ``engine``: an :class:`~companion.engine.Engine`, or a function
    ``engine(perf) -> Engine`` (a new one per run: the piece mode of ``companion follow --piece``)."""
    firsts, shares, after, cpu, audio_s = [], [], [], 0.0, 0.0
    make = engine if callable(engine) else None
    causes = np.zeros(len(CAUSES))
    losses = seeds = reseeds = 0
    cands = [p for p in perfs if p.duration_s > length + 5]
    for _ in range(n):
        p = cands[int(rng.integers(len(cands)))]
        t0 = float(rng.uniform(0.0, p.duration_s - length - 2.0))
        x = ex.cut(p.perf, t0, t0 + length)
        if make is not None:
            engine = make(p)
        pos, c = ex.run(engine, x)
        cpu += c
        audio_s += ex.seconds(x)
        m = (p.onset >= t0) & (p.onset < t0 + length)
        tt = p.onset[m] - t0
        ok = _shown_right(pos, tt, p.measure[m], [p.key] * int(m.sum()), p.source, twins)
        first = float(tt[np.argmax(ok)]) if ok.any() else np.inf
        firsts.append(first)
        shares.append(ok.mean() if len(ok) else np.nan)
        after.append(ok[tt >= first].mean() if ok.any() else 0.0)
        st = engine.stats
        losses, seeds, reseeds = losses + st.losses, seeds + st.seeds, reseeds + st.reseeds
        why = ""
        if db is not None and len(tt) and make is None:  # (piece mode: the events hold the subset's ids)
            b = _breakdown(pos, st.events, tt, p.measure[m], p.bar[m], p, db, twins)
            assert np.array_equal(b == 0, ok)
            cnt = np.bincount(b, minlength=len(CAUSES)) / len(b)
            causes += cnt
            why = " ".join(f"{c}={100 * v:.0f}" for c, v in zip(CAUSES, cnt) if v > 0)
        log.info("%s follow %s @%.1f: first %.2f share %.3f (seeds %d, reseeds %d, losses %d) %s", ex.name,
                 p.perf.name, t0, first, shares[-1], st.seeds, st.reseeds, st.losses, why)
    f = np.array(firsts)
    return {"n": len(f), "median_first": float(np.median(f)), "p90_first": float(np.percentile(f, 90)),
            "never": int(np.isinf(f).sum()), "share": float(np.nanmean(shares)),
            "share_after": float(np.mean(after)), "cpu": cpu / max(audio_s, 1e-9),
            "causes": causes / max(len(f), 1), "losses": losses, "seeds": seeds, "reseeds": reseeds,
            "audio_s": audio_s}


def bench_splices(engine, perfs, ex, part_s, n, rng,
                  kinds: tuple[str, ...] = ("forward", "backward", "change"), *, twins) -> dict:
    """Recovery after splices. ``engine`` as for :func:`bench_follow` (a function of the first
    part's performance: piece mode)."""
    out = {}
    make = engine if callable(engine) else None
    for kind in ("forward", "backward", "change"):
        if kind not in kinds:
            continue
        recs = []
        for _ in range(n):
            for _attempt in range(50):
                p = perfs[int(rng.integers(len(perfs)))]
                if p.duration_s < 3 * part_s + 5:
                    continue
                t1 = float(rng.uniform(part_s, p.duration_s - 2 * part_s - 2))
                sel = np.flatnonzero((p.onset >= t1) & (p.onset < t1 + part_s))
                if len(sel) == 0:
                    continue
                b = int(p.bar[sel[-1]])
                if kind == "change":
                    q = perfs[int(rng.integers(len(perfs)))]
                    if q.key == p.key or q.duration_s < part_s + 5:
                        continue
                    t2 = float(rng.uniform(0.0, q.duration_s - part_s - 2))
                else:
                    q = p
                    target = b + 25 if kind == "forward" else b - 20
                    j = np.flatnonzero(p.bar == target)
                    if target < 0 or len(j) == 0:
                        continue
                    t2 = float(p.onset[j[0]])
                    if t2 + part_s > p.duration_s:
                        continue
                break
            else:
                continue
            x = ex.splice(ex.cut(p.perf, t1, t1 + part_s), ex.cut(q.perf, t2, t2 + part_s), part_s)
            if make is not None:
                engine = make(p)
            pos, _ = ex.run(engine, x)
            m = (q.onset >= t2) & (q.onset < t2 + part_s)
            tt = q.onset[m] - t2 + part_s
            ok = _shown_right(pos, tt, q.measure[m], [q.key] * int(m.sum()), q.source, twins)
            rec = float(tt[np.argmax(ok)] - part_s) if ok.any() else np.inf
            recs.append(rec)
            log.info("%s splice %s %s@%.1f -> %s@%.1f: %.2f", ex.name, kind, p.perf.name, t1, q.perf.name, t2, rec)
        r = np.array(recs)
        out[kind] = {"n": len(r), "median": float(np.median(r)) if len(r) else np.nan,
                     "p90": float(np.percentile(r, 90)) if len(r) else np.nan, "never": int(np.isinf(r).sum())}
    return out


def bench_unknown(db, perfs_out, ex, lengths, n, rng) -> dict:
    """Queries from pieces left out of the index: share rejected (``[]``)."""
    res = {}
    for length in lengths:
        rejected, wrong = [], []
        for _ in range(n):
            p = perfs_out["perfs"][int(rng.integers(len(perfs_out["perfs"])))]
            t0 = float(rng.uniform(0.0, max(0.0, p.duration_s - length - 2.0)))
            notes = ex.notes(ex.cut(p.perf, t0, t0 + length))
            ms = perfs_out["ident"].identify(notes, top_k=1) if len(notes) >= 3 else []
            rejected.append(not ms)
            if ms:
                wrong.append(ms[0].confidence)
        res[length] = {"n": len(rejected), "rejected": float(np.mean(rejected)),
                       "max_conf_accepted": max(wrong) if wrong else None}
        log.info("%s unknown %.0f s: %s", ex.name, length, res[length])
    return res


def bench_unknown_engine(out_ident, perfs_out, ex, length, n, rng, params=None,
                         tracker_params=None) -> dict:
    """The engine on ``length`` s excerpts of pieces left out of the index: runs that never seed, and
    the share of positions that show a (necessarily wrong) piece."""
    from companion.engine import Engine

    engine = Engine(out_ident.db, identifier=out_ident, params=params, tracker_params=tracker_params, midi=ex.midi)
    never, shown = [], []
    for _ in range(n):
        p = perfs_out[int(rng.integers(len(perfs_out)))]
        t0 = float(rng.uniform(0.0, max(0.0, p.duration_s - length - 2.0)))
        pos, _ = ex.run(engine, ex.cut(p.perf, t0, t0 + length))
        never.append(engine.stats.seeds == 0)
        shown.append(np.mean([q.state == "tracking" for q in pos]))
    res = {"n": n, "never_seeded": float(np.mean(never)), "tracking_share": float(np.mean(shown))}
    log.info("%s unknown engine %.0f s: %s", ex.name, length, res)
    return res


def leave_out_keys(others: list, n: int, seed: int) -> list[str]:
    """``n`` piece keys drawn (seeded) from the performances ``others``: the pieces left out of the index."""
    from companion.bench.asap import piece_key

    rng = np.random.default_rng(seed)
    out: list[str] = []
    for i in rng.permutation(len(others)):
        k = piece_key(others[int(i)].folder)
        if k not in out:
            out.append(k)
        if len(out) >= n:
            break
    return out


def bench_sets(db, n_perf: int, offset: float, n_unknown_pieces: int, seed: int) -> tuple[list, list, list[str]]:
    """The benchmark's performances (``follow_bench.select(n_perf, offset)``), the performances of the
    pieces left out of the index (one per piece) and those pieces' keys."""
    from companion.bench.asap import performances, piece_key
    from companion.bench.follow_bench import select

    all_perfs = performances()
    chosen = select(all_perfs, n_perf, offset)
    chosen_keys = {piece_key(p.folder) for p in chosen}
    others = [p for p in all_perfs if piece_key(p.folder) not in chosen_keys]
    out_keys = leave_out_keys(others, n_unknown_pieces, seed)
    perfs = [load_perf(db, p) for p in chosen]
    unknown = [load_perf(db, p) for p in others if piece_key(p.folder) in out_keys]
    return perfs, list({p.key: p for p in unknown}.values()), out_keys


def leave_out_identifier(db, keys: set[str], params):
    """An identifier over the database without the pieces in ``keys`` (twins included), with the
    :class:`~companion.fingerprint.identify.IdentifyParams` ``params``."""
    from companion.bench.asap import piece_key
    from companion.db.subset import PieceSubset
    from companion.fingerprint.identify import Identifier

    keep = [i for i, m in enumerate(db.metas) if piece_key(m.source) not in keys]
    log.info("leave-out index: %d of %d pieces", len(keep), len(db.metas))
    return Identifier(PieceSubset(db, keep), params=params)


def bench_realtime_cpu(db, ident, perf: Perf, renders, soundfont, seconds: float, params=None,
                       tracker_params=None) -> float:
    """Process CPU s per audio s of the threaded pipeline fed in real time from a file."""
    import soundfile as sf

    from companion.engine import Engine
    from companion.pipeline import Pipeline, blocks, open_input

    audio = renders.audio(perf.perf, soundfont)[int(30 * SR):int((30 + seconds) * SR)]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "x.wav"
        sf.write(str(wav), audio, SR)
        inp = open_input(str(wav), realtime=True)
        engine = Engine(db, identifier=ident, params=params, tracker_params=tracker_params)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        Pipeline(blocks(inp), engine, finite=True).run()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return cpu / (len(audio) / SR)


# ------------------------------------------------------------------------------------------------ main
def parse_overrides(items: list[str], cls=None) -> dict:
    """``NAME=VALUE`` strings -> keyword arguments, each value parsed as the type of ``cls``'s field of
    that name (a dataclass; unknown names stop the run), or as a float without ``cls``."""
    import dataclasses

    types = {f.name: type(f.default) for f in dataclasses.fields(cls)} if cls is not None else {}
    kw = {}
    for item in items:
        name, _, value = item.partition("=")
        if cls is not None and name not in types:
            raise SystemExit(f"{cls.__name__} has no field {name!r}")
        typ = types.get(name, float)
        kw[name] = value.lower() in ("1", "true", "yes") if typ is bool else typ(value)
    return kw


def engine_params(cls, overrides: list[str], base=None):
    """``base`` (default ``cls()``) with ``NAME=VALUE`` overrides (:func:`parse_overrides`)."""
    return dataclasses.replace(base if base is not None else cls(), **parse_overrides(overrides, cls))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.bench.engine_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=DEFAULT_DB, help="ASAP database (built here if missing)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="rendered performances (FLAC)")
    ap.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "fluidr3mono"])
    ap.add_argument("--n-perf", type=int, default=20, help="performances used (distinct pieces)")
    ap.add_argument("--n-id", type=int, default=40, help="identification queries per length and soundfont")
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0, 10.0])
    ap.add_argument("--n-follow", type=int, default=8, help="60 s following runs per soundfont")
    ap.add_argument("--follow-s", type=float, default=60.0)
    ap.add_argument("--n-splice", type=int, default=6, help="splices per kind and soundfont")
    ap.add_argument("--part-s", type=float, default=15.0)
    ap.add_argument("--n-unknown-pieces", type=int, default=6)
    ap.add_argument("--n-unknown", type=int, default=25, help="unknown queries per length and soundfont")
    ap.add_argument("--n-unknown-engine", type=int, default=8, help="30 s engine runs on unknown pieces")
    ap.add_argument("--realtime-s", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--offset", type=float, default=0.0,
                    help="performance subset (follow_bench.select): 0 is the reported one, 0.5 a disjoint "
                         "one for tuning")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                    help="experiments to run (the report needs all of them)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override an EngineParams field (tuning runs; repeatable)")
    ap.add_argument("--tracker-param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a TrackerParams field of the engine's tracker (tuning runs; repeatable)")
    ap.add_argument("--ident-param", action="append", default=[], metavar="NAME=VALUE",
                    help="override an IdentifyParams field of IdentifyParams.for_audio() (IdentifyParams() with "
                         "--midi; tuning runs; repeatable)")
    ap.add_argument("--midi", action="store_true",
                    help="feed the performance MIDI itself (a digital piano) instead of rendered audio: the same "
                         "excerpts as the first soundfont's, the symbolic identifier, no transcriber")
    ap.add_argument("--out", type=Path, help="write the markdown report here too")
    ap.add_argument("--json", type=Path, help="write the results of the parts run to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    from companion.audio.render import available_soundfonts
    from companion.bench.asap import SKIP_REASON, asap_root
    from companion.engine import Engine, EngineParams
    from companion.fingerprint.identify import Identifier, IdentifyParams

    if asap_root() is None:
        print(SKIP_REASON)
        return 0
    fonts = ["midi"] if args.midi else [f for f in args.soundfonts if f in available_soundfonts()]
    if not fonts:
        print("no soundfont available (fluidsynth and Debian's soundfonts are needed)")
        return 0
    t_start = time.time()
    db = ensure_asap_db(args.db)
    ident_params = engine_params(IdentifyParams, args.ident_param,
                                 IdentifyParams() if args.midi else IdentifyParams.for_audio())
    ident = Identifier(db, params=ident_params)
    perfs, unknown_perfs, out_keys = bench_sets(db, args.n_perf, args.offset, args.n_unknown_pieces, args.seed)
    renders = Renders(args.cache)
    from companion.tracking.oltw import TrackerParams

    engine = Engine(db, identifier=ident, params=engine_params(EngineParams, args.param),
                    tracker_params=engine_params(TrackerParams, args.tracker_param), midi=args.midi)
    out_ident = leave_out_identifier(db, set(out_keys), ident_params)
    from companion.bench.twins import TwinBars

    twins = TwinBars(lambda source: db.piece(db.find(source)))
    results = {}
    for sf_i, font in enumerate(fonts):
        ex = MidiExcerpts() if args.midi else AudioExcerpts(renders, font)
        r = {}
        # one generator per experiment, so that --parts picks the same excerpts as a full run
        rng = {part: np.random.default_rng([args.seed, sf_i, k]) for k, part in enumerate(PARTS)}
        if "identify" in args.parts:
            r["identify"] = bench_identify(db, ident, perfs, ex, args.lengths, args.n_id, rng["identify"], twins)
        if "follow" in args.parts:
            r["follow"] = bench_follow(engine, perfs, ex, args.follow_s, args.n_follow, rng["follow"], db, twins=twins)
        if "splice" in args.parts:
            r["splice"] = bench_splices(engine, perfs, ex, args.part_s, args.n_splice, rng["splice"], twins=twins)
        if "unknown" in args.parts:
            r["unknown"] = bench_unknown(db, {"perfs": unknown_perfs, "ident": out_ident}, ex,
                                         [5.0, 10.0], args.n_unknown, rng["unknown"])
            r["unknown_engine"] = bench_unknown_engine(out_ident, unknown_perfs, ex, 30.0,
                                                       args.n_unknown_engine, rng["unknown"], engine.params,
                                                       engine.tracker_params)
        if "piece" in args.parts:  # companion follow --piece: a new engine in piece mode per run
            def in_piece(p, _tr=engine.transcriber):
                return Engine(db, piece=p.pid, transcriber=_tr, params=engine.params,
                              tracker_params=engine.tracker_params, midi=args.midi)

            # the follow part's excerpts (its generator, anew): the two modes compare run by run
            same = np.random.default_rng([args.seed, sf_i, PARTS.index("follow")])
            r["piece"] = bench_follow(in_piece, perfs, ex, args.follow_s, args.n_follow, same, twins=twins)
            same = np.random.default_rng([args.seed, sf_i, PARTS.index("splice")])
            r["piece_splice"] = bench_splices(in_piece, perfs, ex, args.part_s, args.n_splice, same,
                                              kinds=("forward", "backward"), twins=twins)
        results[font] = r
        log.info("%s: %s", font, r)
    rt_cpu = None
    if "cpu" in args.parts and not args.midi:
        rt_cpu = bench_realtime_cpu(db, ident, perfs[0], renders, fonts[0], args.realtime_s, engine.params,
                                    engine.tracker_params)
        log.info("threaded pipeline at real time: %.3f CPU s per audio s", rt_cpu)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"argv": argv or sys.argv[1:], "results": results, "realtime_cpu": rt_cpu},
                                        indent=1, default=lambda x: x.tolist() if isinstance(x, np.ndarray) else float(x)))
    if set(args.parts) != set(PARTS):
        return 0
    from companion.bench.engine_report import report as make_report

    report = make_report(args, argv, fonts, results, rt_cpu, perfs, out_keys, db, time.time() - t_start)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
