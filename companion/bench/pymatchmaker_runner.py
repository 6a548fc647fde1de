"""Run one pymatchmaker 0.3.0 audio follower on one file and print its path as one JSON line.

Runs in ``bench/.venv-pymatchmaker`` (pymatchmaker needs numpy<2; see ``setup_pymatchmaker.sh``), as a
subprocess of :mod:`companion.bench.follow_bench`; it imports nothing from ``companion``.

Output: ``{"method", "t": [...], "quarters": [...], "hop_s", "cpu_s", "setup_cpu_s", "duration_s"}`` where
``t`` is the performance time (s) of each alignment-path entry (pymatchmaker's ``current_perf_time``:
``k * hop`` for its ``k``-th feature frame), ``quarters`` its score position converted from partitura
beats to quarter notes along the (maximally) unfolded score, and ``hop_s`` the hop of its audio stream
(its file input feeds one hop per step and emits frame ``k`` once it has read ``k + 2`` hops).

Usage: ``bench/.venv-pymatchmaker/bin/python companion/bench/pymatchmaker_runner.py --score S.mxl
--audio X.wav --method arzt``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--score", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--method", default="arzt")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("MPLBACKEND", "Agg")

    import numpy as np
    import soundfile as sf
    from matchmaker import Matchmaker

    duration = sf.info(args.audio).duration
    c0 = time.process_time()
    mm = Matchmaker(score_file=args.score, performance_file=args.audio, input_type="audio", method=args.method)
    c1 = time.process_time()
    follower = mm.score_follower
    beats, t = [], []
    for beat in mm.run(verbose=False):  # one position per input frame, at its performance time
        beats.append(float(beat))
        t.append(float(follower.current_perf_time))
    c2 = time.process_time()
    beats = np.asarray(beats, dtype=float)
    part = mm.score_part
    # partitura beats -> timeline divs -> quarters
    divs = part.inv_beat_map(beats)
    quarters = np.asarray(part.quarter_map(divs), dtype=float)
    q0 = float(part.quarter_map(part.first_point.t)) if part.first_point is not None else 0.0
    quarters = quarters - q0
    print(json.dumps({"method": args.method, "t": [round(float(x), 4) for x in t],
                      "quarters": [round(float(x), 4) for x in quarters],
                      "hop_s": mm.hop_length / float(mm.sample_rate), "cpu_s": c2 - c1,
                      "setup_cpu_s": c1 - c0, "duration_s": duration}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
