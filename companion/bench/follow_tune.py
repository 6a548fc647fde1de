"""Fast tuning runs of the score follower: the tracking benchmark's files, spectrograms cached.

The tracking benchmark (:mod:`companion.bench.follow_bench`) renders its performances and runs
pymatchmaker too; for trying tracker parameters only our follower needs to run again. This tool
renders the tuning set (``offset=0``) and the held-out set (``offset=0.5``) of ``follow_bench.select``
(or the sets given with ``--sets``) once, keeps each file's STFT frames, the transcriber's note
activations (both with the block that completed them) and ground truth in ``--cache`` (``.npz``, no
pickle), and then follows them with the parameters given on the command
line, through the same block sequence as ``follow_bench`` (``--block`` samples) and the same metrics
(:func:`follow_bench.evaluate`).

Run::

    .venv/bin/python -m companion.bench.follow_tune                      # defaults
    .venv/bin/python -m companion.bench.follow_tune --tp tempo_rate=0.5  # TrackerParams overrides
    .venv/bin/python -m companion.bench.follow_tune --cp gamma=2 --fw switch_margin=0.1

``--tp`` overrides :class:`~companion.tracking.oltw.TrackerParams` fields, ``--cp``
:class:`~companion.tracking.chroma.ChromaParams` fields and ``--fw`` keyword arguments of
:class:`~companion.tracking.follower.Follower`. One line per run: bar right and the share within
100 / 250 / 500 ms for each set, the CPU time of following (mean CPU s per audio s, without the cached
STFT and activations), and per soundfont (bar right / within 250 ms).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from companion.bench.engine_bench import parse_overrides
from companion.bench.follow_bench import BLOCK, GroundTruth, evaluate, ground_truth, render_excerpt, select

log = logging.getLogger("companion.bench.follow_tune")

SETS = (0.0, 0.5)  # offsets: the tuning set and the held-out set
SOUNDFONTS = ("timgm6mb", "fluidr3mono")


def prepare(cache: Path, n: int = 6, seconds: float = 60.0, sets: tuple[float, ...] = SETS,
            block: int = BLOCK) -> list[dict]:
    """Render and analyse the files of each set once; returns their index entries (one index file per
    set in ``cache``, ``index-<offset>.json``)."""
    index: list[dict] = []
    for offset in sets:
        path = cache / f"index-{offset:g}.json"
        if not path.is_file():
            path.write_text(json.dumps(_prepare_set(cache, offset, n, seconds, block), indent=1))
        index += json.loads(path.read_text())
    return index


def _prepare_set(cache: Path, offset: float, n: int, seconds: float, block: int) -> list[dict]:
    import soundfile as sf

    from companion.bench.asap import asap_root, performances
    from companion.score.load import load_score
    from companion.transcription.transcriber import Transcriber

    root = asap_root()
    if root is None:
        raise SystemExit("ASAP is not available (../shared/data/asap)")
    cache.mkdir(parents=True, exist_ok=True)
    index = []
    for perf in select(performances(root), n, offset):
        piece = load_score(perf.score)
        gt = ground_truth(perf, piece, max_s=seconds)
        for font in SOUNDFONTS:
            wav = render_excerpt(perf, font, seconds, cache)
            audio, sr = sf.read(str(wav), dtype="float32")
            tr = Transcriber(sample_rate=sr)
            specs, avail, acts, act_avail = [], [], [], []
            for start in range(0, len(audio) + 1, block):
                tr.process(audio[start:start + block]) if start < len(audio) else tr.flush()
                t = min(start + block, len(audio)) / sr
                specs.append(tr.last_features.spec)
                avail.append(np.full(len(tr.last_features.spec), t))
                acts.append(tr.last_activations)
                act_avail.append(np.full(len(tr.last_activations), t))
            np.savez(cache / f"{wav.stem}.npz", spec=np.concatenate(specs).astype(np.float32),
                     avail=np.concatenate(avail), act=np.concatenate(acts).astype(np.float32),
                     act_avail=np.concatenate(act_avail), onset=gt.onset_s, quarters=gt.quarters,
                     measure=gt.measure.astype(str))
            wav.unlink()
            index.append({"key": wav.stem, "score": str(perf.score), "offset": offset, "soundfont": font})
            log.info("prepared %s", wav.stem)
    return index


def run(index: list[dict], cache: Path, *, tracker_kw: dict, chroma_kw: dict, follower_kw: dict) -> dict:
    """Follow every cached file; returns ``{offset: {soundfont: [metrics per file]}}``."""
    from companion.score.load import load_score
    from companion.tracking.chroma import ChromaParams
    from companion.tracking.follower import Follower
    from companion.tracking.oltw import TrackerParams, TrackResult

    tp = TrackerParams(**tracker_kw)
    cp = ChromaParams(**chroma_kw)
    pieces: dict[str, object] = {}
    res: dict[float, dict[str, list[dict]]] = {}
    for e in index:
        z = np.load(cache / f"{e['key']}.npz", allow_pickle=False)
        piece = pieces.get(e["score"]) or pieces.setdefault(e["score"], load_score(e["score"]))
        if "act" not in z:
            raise SystemExit(f"{cache} holds spectrograms without activations (made before 2026-12-03): delete it")
        f = Follower(piece, tracker_params=tp, chroma_params=cp, **follower_kw)
        spec, avail, act, act_avail = z["spec"], z["avail"], z["act"], z["act_avail"]
        outs = []
        blocks = [(spec[avail == t], act[act_avail == t] if cp.note_onsets else None)
                  for t in np.unique(np.concatenate([avail, act_avail]))]  # the blocks, as they came
        c0 = time.process_time()
        for s, a in blocks:
            outs.append(f.process_spec(s, a))
        cpu = (time.process_time() - c0) / (len(spec) / 100.0)
        r = TrackResult.concat(outs)
        bars = piece.bars["number"]
        measures = np.array([str(bars[b]) if b >= 0 else None for b in r.bar], dtype=object)
        gt = GroundTruth(z["onset"], z["quarters"], z["measure"].astype(object))
        m = evaluate(gt, avail, r.score_quarters, measures)
        m["cpu_track"] = cpu  # CPU s per audio s of following (spectrogram and activations cached)
        res.setdefault(e["offset"], {}).setdefault(e["soundfont"], []).append(m)
        log.debug("%s: %s", e["key"], m)
    return res


def _pooled(ms: list[dict], key: str) -> float:
    n = sum(m["n_notes"] for m in ms)
    return sum(m[key] * m["n_notes"] for m in ms) / max(n, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.bench.follow_tune", description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/companion-bench/follow_tune"),
                    help="cache folder (a sub-folder per block size)")
    ap.add_argument("--block", type=int, default=BLOCK, help="audio block size, samples (as follow_bench's)")
    ap.add_argument("--tp", nargs="*", default=[], metavar="NAME=VALUE", help="TrackerParams overrides")
    ap.add_argument("--cp", nargs="*", default=[], metavar="NAME=VALUE", help="ChromaParams overrides")
    ap.add_argument("--fw", nargs="*", default=[], metavar="NAME=VALUE", help="Follower keyword overrides")
    ap.add_argument("--sets", nargs="+", type=float, default=list(SETS),
                    help="follow_bench.select offsets: 0 the tuning set, 0.5 the held-out one, 0.25 / 0.75 the "
                         "other development sets")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    from companion.tracking.chroma import ChromaParams
    from companion.tracking.oltw import TrackerParams

    t0 = time.time()
    cache = args.cache / f"block{args.block}"
    index = prepare(cache, sets=tuple(args.sets), block=args.block)
    res = run(index, cache, tracker_kw=parse_overrides(args.tp, TrackerParams),
              chroma_kw=parse_overrides(args.cp, ChromaParams), follower_kw=parse_overrides(args.fw))
    parts = []
    for offset, by_font in sorted(res.items()):
        ms = sum(by_font.values(), [])
        name = {0.0: "tuning", 0.5: "held-out"}.get(offset, f"dev {offset:g}")
        parts.append(f"{name}: bar {100 * _pooled(ms, 'bar'):.1f} w100 {100 * _pooled(ms, 'within_100'):.1f} "
                     f"w250 {100 * _pooled(ms, 'within_250'):.1f} w500 {100 * _pooled(ms, 'within_500'):.1f} "
                     f"cpu {np.mean([m['cpu_track'] for m in ms]):.3f} ("
                     + ", ".join(f"{font} {100 * _pooled(v, 'bar'):.1f}/{100 * _pooled(v, 'within_250'):.1f}"
                                 for font, v in by_font.items()) + ")")
    print(" ".join(args.tp + args.cp + args.fw) or "defaults", "|", " || ".join(parts), f"[{time.time() - t0:.0f} s]")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
