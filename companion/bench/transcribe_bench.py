"""Transcription benchmark on rendered ASAP performances (Chopin, Beethoven).

For each chosen performance a 20 s excerpt of its (Disklavier) MIDI notes is rendered with fluidsynth
and every soundfont asked for; then, per system:

* onset-F1 at 50 ms with pitch (``mir_eval.transcription``, ``offset_ratio=None``), micro-averaged
  over all notes of all excerpts (and per soundfont);
* for the online path, the latency of each correctly found note: samples consumed when its
  ``NoteEvent`` came out minus its true onset (median, p95);
* CPU seconds per audio second (``time.process_time``; rendering and file reading excluded).

Systems: ours offline (full-context BRNN), ours online (block-wise windows), madmom's offline
``RNNPianoNoteProcessor`` + ``NotePeakPickingProcessor`` (threshold 0.35, smooth 0.09 s, combine 0.05 s,
pre/post max 0.01 s: madmom's former PianoTranscriptor settings) and madmom's 2019 CNN +
``ADSRNoteTrackingProcessor`` (today's PianoTranscriptor).

Run (prints a markdown table)::

    nice -n 10 .venv/bin/python -m companion.bench.transcribe_bench --pieces 12 --soundfonts timgm6mb fluidr3mono

``--dev`` picks other performances (those between the test ones), for tuning parameters without
touching the test excerpts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from companion.bench.asap import Performance, asap_root, load_performance_notes, performances, piece_key

log = logging.getLogger("companion.bench.transcribe")


@dataclass
class Excerpt:
    name: str
    soundfont: str
    audio: np.ndarray
    ref: np.ndarray  # PERF_NOTE_DTYPE, onsets from the excerpt start


@dataclass
class Tally:
    tp: int = 0
    n_ref: int = 0
    n_est: int = 0
    cpu_s: float = 0.0
    audio_s: float = 0.0
    latencies: list = field(default_factory=list)

    def f1(self) -> tuple[float, float, float]:
        p = self.tp / self.n_est if self.n_est else 0.0
        r = self.tp / self.n_ref if self.n_ref else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def choose_performances(n_pieces: int, *, dev: bool = False) -> list[Performance]:
    """Deterministic choice: one performance per piece, half Chopin half Beethoven, evenly spread over
    the sorted piece list. ``dev`` spreads the same number over the pieces that the test choice (same
    ``n_pieces``) leaves out, so tuning never sees a test piece."""
    chosen = []
    for composer, n in (("Chopin", n_pieces // 2), ("Beethoven", n_pieces - n_pieces // 2)):
        by_piece: dict[str, Performance] = {}
        for p in performances():
            if p.composer == composer:
                by_piece.setdefault(piece_key(p.folder), p)
        keys = sorted(by_piece)
        test = _spread(keys, n)
        pool = [k for k in keys if k not in test] if dev else keys
        chosen += [by_piece[k] for k in (_spread(pool, n) if dev else test)]
    return chosen


def _spread(keys: list[str], n: int) -> list[str]:
    step = len(keys) / max(n, 1)
    return [keys[i] for i in sorted({min(len(keys) - 1, int(i * step)) for i in range(n)})]


def excerpt_notes(perf: Performance, duration_s: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Notes of a ``duration_s`` excerpt starting 30 s in (earlier in short pieces), shifted to 0."""
    notes, dur = load_performance_notes(perf.midi)
    last = float(notes["onset_s"][-1]) if len(notes) else 0.0
    t0 = float(min(30.0, max(0.0, (last - duration_s) / 2)))
    m = (notes["onset_s"] >= t0) & (notes["onset_s"] < t0 + duration_s)
    n = notes[m].copy()
    n["onset_s"] -= t0
    return n, np.minimum(dur[m], t0 + duration_s + 2.0 - notes["onset_s"][m]), t0


def make_excerpts(perfs: list[Performance], soundfonts: list[str], duration_s: float) -> list[Excerpt]:
    from companion.audio.render import render_notes

    out = []
    for perf in perfs:
        ref, dur, t0 = excerpt_notes(perf, duration_s)
        for sf in soundfonts:
            audio = render_notes(ref["onset_s"], ref["pitch"], dur, ref["velocity"], soundfont=sf)
            out.append(Excerpt(f"{perf.name}@{t0:.0f}s", sf, audio, ref))
    return out


def match_count(ref: np.ndarray, est_onset: np.ndarray, est_pitch: np.ndarray) -> list[tuple[int, int]]:
    """mir_eval note matching on onsets (50 ms) and pitch; pairs (ref index, est index)."""
    import mir_eval

    if len(ref) == 0 or len(est_onset) == 0:
        return []
    ref_iv = np.c_[ref["onset_s"], ref["onset_s"] + 0.1]
    est_iv = np.c_[est_onset, est_onset + 0.1]
    return mir_eval.transcription.match_notes(
        ref_iv, mir_eval.util.midi_to_hz(ref["pitch"].astype(float)), est_iv,
        mir_eval.util.midi_to_hz(np.asarray(est_pitch, float)), onset_tolerance=0.05, offset_ratio=None)


def run_ours(ex: Excerpt, tr, *, online: bool, block_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Returns onsets, pitches, emission times (s of audio consumed) and CPU seconds."""
    c0 = time.process_time()
    if online:
        tr.reset()
        onsets, pitches, emitted = [], [], []
        x = ex.audio
        for i in range(0, len(x), block_size):
            for e in tr.process(x[i:i + block_size]):
                onsets.append(e.onset_s), pitches.append(e.pitch), emitted.append(tr.n_samples / 44100)
        for e in tr.flush():
            onsets.append(e.onset_s), pitches.append(e.pitch), emitted.append(len(x) / 44100)
        cpu = time.process_time() - c0
        return np.array(onsets), np.array(pitches), np.array(emitted), cpu
    notes = tr.transcribe(ex.audio, online=False)
    cpu = time.process_time() - c0
    return notes["onset_s"], notes["pitch"], np.full(len(notes), np.nan), cpu


class MadmomPeers:
    """madmom's own transcribers (offline)."""

    def __init__(self) -> None:
        from companion._madmom import madmom  # noqa: F401
        from madmom.features.notes import (ADSRNoteTrackingProcessor, CNNPianoNoteProcessor,
                                           NotePeakPickingProcessor, RNNPianoNoteProcessor)

        self.rnn = RNNPianoNoteProcessor()
        self.rnn_pp = NotePeakPickingProcessor(threshold=0.35, smooth=0.09, combine=0.05, pre_max=0.01,
                                               post_max=0.01, fps=100, pitch_offset=21)
        self.cnn = CNNPianoNoteProcessor()
        self.adsr = ADSRNoteTrackingProcessor()

    def run(self, which: str, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        from madmom.audio.signal import Signal

        c0 = time.process_time()
        sig = Signal(audio, sample_rate=44100)
        if which == "rnn":
            notes = self.rnn_pp(self.rnn(sig))
        else:
            notes = self.adsr(self.cnn(sig))
        cpu = time.process_time() - c0
        notes = np.asarray(notes).reshape(-1, np.asarray(notes).shape[-1] if np.asarray(notes).size else 2)
        return notes[:, 0], notes[:, 1].astype(int), cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", type=int, default=12)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--soundfonts", nargs="+", default=["timgm6mb", "fluidr3mono"])
    ap.add_argument("--block-size", type=int, default=1024, help="samples per online block")
    ap.add_argument("--window", type=int, default=None, help="online BRNN window (frames)")
    ap.add_argument("--lookahead", type=int, default=None, help="online window frames after the frame")
    ap.add_argument("--no-peers", action="store_true", help="skip madmom's transcribers")
    ap.add_argument("--dev", action="store_true", help="use the dev performances (for tuning)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if asap_root() is None:
        print("ASAP data not found; nothing to benchmark", file=sys.stderr)
        return 2
    from companion.audio.render import available_soundfonts
    from companion.transcription.transcriber import Transcriber

    missing = [s for s in args.soundfonts if s not in available_soundfonts()]
    if missing:
        print(f"soundfonts not available: {missing}", file=sys.stderr)
        return 2
    perfs = choose_performances(args.pieces, dev=args.dev)
    log.info("rendering %d excerpts x %d soundfonts", len(perfs), len(args.soundfonts))
    excerpts = make_excerpts(perfs, args.soundfonts, args.duration)
    kw = {}
    if args.window is not None:
        kw["window_frames"] = args.window
    if args.lookahead is not None:
        kw["lookahead_frames"] = args.lookahead
    tr = Transcriber(**kw)
    tr.transcribe(excerpts[0].audio[:44100], online=True)  # warm-up (torch, caches)
    systems = ["ours offline", "ours online"] + ([] if args.no_peers else ["madmom RNN offline",
                                                                           "madmom CNN+ADSR offline"])
    peers = None if args.no_peers else MadmomPeers()
    tallies = {(s, sf): Tally() for s in systems for sf in args.soundfonts + ["all"]}
    for ex in excerpts:
        for s in systems:
            if s.startswith("ours"):
                on, pi, emitted, cpu = run_ours(ex, tr, online=s.endswith("online"), block_size=args.block_size)
            else:
                on, pi, cpu = peers.run("rnn" if "RNN" in s else "cnn", ex.audio)
                emitted = np.full(len(on), np.nan)
            pairs = match_count(ex.ref, on, pi)
            for key in ((s, ex.soundfont), (s, "all")):
                t = tallies[key]
                t.tp += len(pairs)
                t.n_ref += len(ex.ref)
                t.n_est += len(on)
                t.cpu_s += cpu
                t.audio_s += len(ex.audio) / 44100
                t.latencies += [float(emitted[j] - ex.ref["onset_s"][i]) for i, j in pairs
                                if np.isfinite(emitted[j])]
        log.info("%s [%s] done", ex.name, ex.soundfont)
    print(f"Excerpts: {len(perfs)} performances x {len(args.soundfonts)} soundfonts "
          f"({', '.join(args.soundfonts)}), {args.duration:.0f} s each; online blocks of {args.block_size} samples; "
          f"window {tr.window_frames} frames, look-ahead {tr.lookahead_frames} + peak-picking "
          f"{tr.picker.lookahead}\n")
    print("| system | soundfont | P | R | onset-F1 | latency median (ms) | latency p95 (ms) | CPU-s / audio-s |")
    print("|---|---|---|---|---|---|---|---|")
    for (s, sf), t in tallies.items():
        p, r, f = t.f1()
        lat = np.array(t.latencies) * 1000
        lm = f"{np.median(lat):.0f}" if len(lat) else "-"
        lp = f"{np.percentile(lat, 95):.0f}" if len(lat) else "-"
        print(f"| {s} | {sf} | {p:.3f} | {r:.3f} | {f:.3f} | {lm} | {lp} | {t.cpu_s / t.audio_s:.3f} |")
    print("\nPerformances: " + ", ".join(p.name for p in perfs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
