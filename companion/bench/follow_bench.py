"""Benchmark of score following on rendered ASAP performances, against pymatchmaker 0.3.0.

For a deterministic subset of Chopin and Beethoven performances, the first ``--seconds`` of each
performance MIDI (with its pedal) is rendered with fluidsynth and every soundfont given. Our tracker
(:func:`companion.tracking.follower.follow_audio`, seeded at the first note, as ``companion follow
--piece``) and pymatchmaker's audio methods (run by ``companion/bench/pymatchmaker_runner.py`` in
``bench/.venv-pymatchmaker``, see ``setup_pymatchmaker.sh``) follow the same WAV files.

Metrics over every aligned performed note in the excerpt:

* **bar right**: the measure number shown when the note is played (the latest output available at its
  onset on the audio clock) is the note's measure number;
* **time error**: the time at which the follower first reached the note's score position (unfolded
  quarters, the pass given by the alignment) minus the note's onset; share within 50 ... 2000 ms and
  the median absolute error (never reached = infinite);
* **CPU s per audio s**: process time of the follower; ours both without the shared STFT (chroma +
  OLTW) and with it.

Run: ``.venv/bin/python -m companion.bench.follow_bench --n 10 --seconds 60 --soundfonts timgm6mb fluidr3mono``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.bench.excerpts import BLOCK  # samples per audio block, as ``companion follow`` reads a file

log = logging.getLogger("companion.bench.follow_bench")

TOLERANCES_MS = (50, 100, 250, 500, 1000, 2000)
#: pymatchmaker's audio frame of performance time ``k * hop`` is emitted after ``k + 2`` hops are read
#: (``matchmaker.io.audio.AudioStream``: the first hop only fills its cache)
PMM_INPUT_HOPS = 2
ROOT = Path(__file__).resolve().parents[2]
PMM_PYTHON = ROOT / "bench" / ".venv-pymatchmaker" / "bin" / "python"
PMM_RUNNER = Path(__file__).with_name("pymatchmaker_runner.py")


@dataclass
class GroundTruth:
    """Aligned performed notes of an excerpt: onset, unfolded score position, measure number."""

    onset_s: np.ndarray
    quarters: np.ndarray
    measure: np.ndarray  # str


def ground_truth(perf, piece, *, max_s: float) -> GroundTruth:
    """Match the performance's note alignment to the piece's unfolded notes (pass ``repeat``)."""
    from companion.bench.asap import load_alignment

    al = load_alignment(perf)
    al = al[al["onset_s"] < max_s]
    occ: dict[str, list[int]] = {}
    for i, nid in enumerate(piece.notes["note_id"]):
        occ.setdefault(str(nid), []).append(i)
    on, q, m = [], [], []
    for row in al:
        idx = occ.get(str(row["note_id"]))
        if not idx:
            continue
        r = int(row["repeat"]) - 1
        if r >= len(idx):
            continue
        i = idx[r]
        on.append(row["onset_s"])
        q.append(piece.notes["onset_quarters"][i])
        m.append(str(piece.bars["number"][piece.notes["bar"][i]]))
    return GroundTruth(np.array(on, float), np.array(q, float), np.array(m, dtype=object))


def evaluate(gt: GroundTruth, avail_s: np.ndarray, quarters: np.ndarray, measures: np.ndarray) -> dict:
    """Metrics of one follower output.

    Parameters
    ----------
    gt : GroundTruth
    avail_s : np.ndarray [shape=(n,)]
        Audio time at which each output became available (non-decreasing).
    quarters : np.ndarray [shape=(n,)]
        Reported unfolded score position (NaN when none).
    measures : np.ndarray [shape=(n,)] of str or None
        Reported measure number.
    """
    n = len(gt.onset_s)
    if n == 0:
        return {"n_notes": 0}
    k = np.searchsorted(avail_s, gt.onset_s, side="right") - 1
    bar_ok = np.array([kk >= 0 and measures[kk] is not None and str(measures[kk]) == gm
                       for kk, gm in zip(k, gt.measure)])
    qv = np.where(np.isnan(quarters), -np.inf, quarters)
    # first output at or past each note's score position
    reach = np.full(n, np.inf)
    run_max = np.maximum.accumulate(qv)
    idx = np.searchsorted(run_max, gt.quarters - 1e-6, side="left")
    ok = idx < len(run_max)
    reach[ok] = avail_s[idx[ok]]
    signed = reach - gt.onset_s
    err = np.abs(signed)
    out = {"n_notes": int(n), "bar": float(bar_ok.mean()), "median_ms": float(np.median(err) * 1000),
           "median_signed_ms": float(np.median(signed) * 1000)}
    for tol in TOLERANCES_MS:
        out[f"within_{tol}"] = float((err <= tol / 1000).mean())
    return out


def select(perfs: list, n: int, offset: float = 0.0) -> list:
    """A deterministic subset: ``n`` performances evenly spaced over the sorted list, half Chopin and
    half Beethoven (distinct pieces). ``offset`` (0..1) shifts the picks by a fraction of the spacing:
    the tracker's parameters were tuned on ``offset=0``; ``offset=0.5`` gives a disjoint, held-out set."""
    out = []
    for composer, k in (("Chopin", n // 2), ("Beethoven", n - n // 2)):
        from companion.bench.asap import piece_key

        cands, seen = [], set()
        for p in perfs:
            key = piece_key(p.folder)
            if p.composer == composer and key not in seen:
                seen.add(key)
                cands.append(p)
        if k and cands:
            step = len(cands) / k
            out += [cands[int((i + offset) * step)] for i in range(k)]
    return out


def render_excerpt(perf, soundfont: str, seconds: float, out_dir: Path) -> Path:
    """Render the performance MIDI (with its pedalling) and keep the first ``seconds``."""
    import soundfile as sf

    from companion.audio.render import render_midi

    name = perf.name.replace("/", "_")
    wav = out_dir / f"{name}_{soundfont}_{int(seconds)}s.wav"
    if wav.is_file():
        return wav
    # per-process names, renamed at the end: benchmarks running at once never see a half-written file
    full = out_dir / f"{name}_{soundfont}_full.{os.getpid()}.wav"
    render_midi(perf.midi, full, soundfont)
    audio, sr = sf.read(str(full), dtype="float32", always_2d=True)
    part = wav.with_name(f"{wav.name}.{os.getpid()}.part")
    sf.write(str(part), audio[: int(seconds * sr)].mean(axis=1), sr, subtype="FLOAT", format="WAV")
    full.unlink()
    os.replace(part, wav)
    return wav


def run_ours(piece, wav: Path, **follower_kw) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Follow ``wav`` with our tracker; returns timings and (avail_s, quarters, measures)."""
    import soundfile as sf

    from companion.tracking.follower import SAMPLE_RATE, Follower
    from companion.tracking.oltw import TrackResult

    audio, sr = sf.read(str(wav), dtype="float32")
    assert sr == SAMPLE_RATE
    f = Follower(piece, **follower_kw)
    block = BLOCK
    t_feat = t_track = 0.0
    outs, avail = [], []
    for start in range(0, len(audio) + 1, block):
        t0 = time.process_time()
        spec, act = f.analyse(audio[start:start + block] if start < len(audio) else None)
        t1 = time.process_time()
        r = f.process_spec(spec, act)
        t2 = time.process_time()
        t_feat += t1 - t0
        t_track += t2 - t1
        outs.append(r)
        avail.append(np.full(len(r), min(start + block, len(audio)) / sr))
    r = TrackResult.concat(outs)
    avail_s = np.concatenate(avail)
    bars = piece.bars["number"]
    measures = np.array([str(bars[b]) if b >= 0 else None for b in r.bar], dtype=object)
    dur = len(audio) / sr
    timing = {"cpu_track": t_track / dur, "cpu_all": (t_track + t_feat) / dur}
    return timing, avail_s, r.score_quarters, measures


def run_piece_mode(db, pid: int, wav: Path) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Follow ``wav`` as ``companion follow --piece`` does (the engine in piece mode: the tracker from
    the first note, the identifier restricted to the piece re-seeding it), 2048-sample blocks."""
    import soundfile as sf

    from companion.bench.excerpts import run_audio
    from companion.engine import Engine

    audio, sr = sf.read(str(wav), dtype="float32")
    pos, cpu_s = run_audio(Engine(db, piece=pid), audio)
    cpu = cpu_s / (len(audio) / sr)
    avail = np.array([p.t for p in pos])
    q = np.array([np.nan if p.score_quarters is None else p.score_quarters for p in pos])
    return {"cpu_all": cpu}, avail, q, np.array([p.measure for p in pos], dtype=object)


def run_pymatchmaker(score: Path, wav: Path, method: str, timeout_s: float, *, cache: bool = True) -> dict | None:
    """Run one pymatchmaker method in its venv; returns its JSON (or None on failure).

    The output (positions and CPU times) is kept next to the WAV file as ``<wav>.pmm-<method>.json`` and
    reused when ``cache`` is set (pymatchmaker is deterministic on a given file; ``--no-cache`` reruns)."""
    cached = wav.with_name(f"{wav.stem}.pmm-{method}.json")
    if cache and cached.is_file():
        out = json.loads(cached.read_text())
        if "hop_s" in out:  # (made before 2026-12-03's session 9 otherwise: rerun)
            return out
    if not PMM_PYTHON.is_file():
        return None
    cmd = [str(PMM_PYTHON), str(PMM_RUNNER), "--score", str(score), "--audio", str(wav), "--method", method]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("pymatchmaker %s timed out on %s", method, wav.name)
        return {"error": "timeout"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        log.warning("pymatchmaker %s failed on %s: %s", method, wav.name, res.stderr.strip()[-500:])
        return {"error": res.stderr.strip()[-300:]}
    out = json.loads(lines[-1])
    cached.write_text(json.dumps(out))
    return out


def _row(name: str, ms: list[dict], cpu: str) -> str:
    ms = [m for m in ms if m.get("n_notes")]
    n = sum(m["n_notes"] for m in ms)
    if not n:
        return f"| {name} | 0 | " + " | ".join(["-"] * (3 + len(TOLERANCES_MS))) + f" | {cpu} |"

    def w(key):
        return sum(m[key] * m["n_notes"] for m in ms) / n

    med = float(np.median([m["median_ms"] for m in ms]))
    cells = [f"{100 * w('bar'):.1f}%"] + [f"{100 * w(f'within_{t}'):.1f}%" for t in TOLERANCES_MS]
    return f"| {name} | {n} | " + " | ".join(cells) + f" | {med:.0f} | {cpu} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6, help="number of performances")
    ap.add_argument("--offset", type=float, default=0.5,
                    help="shift of the evenly spaced picks (0: the set the parameters were tuned on)")
    ap.add_argument("--seconds", type=float, default=60.0, help="excerpt length from the start")
    ap.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "fluidr3mono"])
    ap.add_argument("--methods", nargs="*", default=["arzt", "dixon", "skf"],
                    help="pymatchmaker methods (none: skip pymatchmaker)")
    ap.add_argument("--pmm-timeout", type=float, default=300.0)
    ap.add_argument("--no-cache", action="store_true", help="rerun pymatchmaker even where its output is kept")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "out" / "follow"))
    ap.add_argument("--json", default=None, help="also write all per-file metrics to this JSON file")
    ap.add_argument("--piece-mode", action="store_true",
                    help="also run `companion follow --piece` (the engine in piece mode; needs the ASAP database "
                         "of the engine benchmark, built on first use)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    from companion.audio.render import available_soundfonts
    from companion.bench.asap import SKIP_REASON, asap_root, performances
    from companion.score.load import load_score

    root = asap_root()
    if root is None:
        print(SKIP_REASON, file=sys.stderr)
        return 2
    sfs = available_soundfonts()
    missing = [s for s in args.soundfonts if s not in sfs]
    if missing:
        print(f"soundfonts not available: {missing} (have {sorted(sfs)})", file=sys.stderr)
        return 2
    if args.methods and not PMM_PYTHON.is_file():
        log.warning("pymatchmaker venv missing (run companion/bench/setup_pymatchmaker.sh); skipping it")
        args.methods = []
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    perfs = select(performances(root), args.n, args.offset)
    db = None
    if args.piece_mode:
        from companion.bench.engine_bench import DEFAULT_DB, ensure_asap_db

        db = ensure_asap_db(DEFAULT_DB)
    results: dict[str, dict[str, list[dict]]] = {}
    cpu: dict[str, list[float]] = {}
    per_file = []
    for perf in perfs:
        piece = load_score(perf.score)
        gt = ground_truth(perf, piece, max_s=args.seconds)
        for sf_name in args.soundfonts:
            wav = render_excerpt(perf, sf_name, args.seconds, out_dir)
            timing, avail_s, q, meas = run_ours(piece, wav)
            m = evaluate(gt, avail_s, q, meas)
            results.setdefault("companion OLTW", {}).setdefault(sf_name, []).append(m)
            cpu.setdefault("companion OLTW", []).append(timing["cpu_track"])
            cpu.setdefault("companion OLTW + shared STFT", []).append(timing["cpu_all"])
            per_file.append({"perf": perf.name, "soundfont": sf_name, "method": "companion", **m, **timing})
            log.info("%s %s ours: %s", perf.name, sf_name, json.dumps({k: round(v, 3) for k, v in m.items()}))
            if db is not None:
                pid = db.find(str(perf.score))
                timing, avail_s, q, meas = run_piece_mode(db, pid, wav)
                m = evaluate(ground_truth(perf, db.piece(pid), max_s=args.seconds), avail_s, q, meas)
                name = "companion follow --piece (engine)"
                results.setdefault(name, {}).setdefault(sf_name, []).append(m)
                cpu.setdefault(name, []).append(timing["cpu_all"])
                per_file.append({"perf": perf.name, "soundfont": sf_name, "method": "piece-mode", **m, **timing})
                log.info("%s %s piece mode: bar %.3f within250 %.3f", perf.name, sf_name, m["bar"], m["within_250"])
            for method in args.methods:
                res = run_pymatchmaker(perf.score, wav, method, args.pmm_timeout, cache=not args.no_cache)
                key = f"pymatchmaker {method}"
                if res is None or "error" in res:
                    pm = {"n_notes": len(gt.onset_s), "bar": 0.0, "median_ms": float("inf"),
                          **{f"within_{t}": 0.0 for t in TOLERANCES_MS}, "failed": True}
                else:
                    pq = np.asarray(res["quarters"], float)
                    # available once its input was read: its audio stream reads one hop per step and
                    # emits the frame of performance time k * hop after reading k + 2 hops (as ours is
                    # available at the end of the block that completed it)
                    pav = np.asarray(res["t"], float) + PMM_INPUT_HOPS * res["hop_s"]
                    pmeas = np.array([piece.measure_at(x)[0] if np.isfinite(x) else None for x in pq], object)
                    pm = evaluate(gt, pav, pq, pmeas)
                    cpu.setdefault(key, []).append(res["cpu_s"] / res["duration_s"])
                results.setdefault(key, {}).setdefault(sf_name, []).append(pm)
                per_file.append({"perf": perf.name, "soundfont": sf_name, "method": method, **pm})
                log.info("%s %s %s: bar %.3f within250 %.3f", perf.name, sf_name, method, pm["bar"],
                         pm["within_250"])
    header = ("| follower | notes | bar right | ≤50 ms | ≤100 ms | ≤250 ms | ≤500 ms | ≤1 s | ≤2 s | "
              "median err ms | CPU s / audio s |")
    sep = "|" + "---|" * 11
    lines = []
    for sf_name in args.soundfonts + ["all"]:
        lines += [f"\n**{sf_name}**\n", header, sep]
        for name, by_sf in results.items():
            ms = sum(by_sf.values(), []) if sf_name == "all" else by_sf.get(sf_name, [])
            c = cpu.get(name)
            cs = f"{np.mean(c):.4f}" if c else "-"
            if name == "companion OLTW":
                cs += f" ({np.mean(cpu['companion OLTW + shared STFT']):.4f} with STFT)"
            lines.append(_row(name, ms, cs))
    print(f"Performances ({len(perfs)}, first {args.seconds:.0f} s each): " + ", ".join(p.name for p in perfs))
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(per_file, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
