"""Regenerate the demo recording ``assets/demo.ogg`` (deterministic).

A pianist's take on Bach's Prelude in C major, BWV 846 (music21's corpus, so it is in the default
database), bars 5 to 16 — not from the beginning — with a gently varying tempo (rubato), rendered
with fluidsynth and the FluidR3 Mono soundfont (MIT licence). Run:

    .venv/bin/python scripts/make_demo.py
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from companion.audio.render import render_notes
from companion.score.load import load_score

log = logging.getLogger("make_demo")

OUT = Path(__file__).resolve().parents[1] / "assets" / "demo.ogg"
START_BAR_NUMBER = "5"
END_BAR_NUMBER = "17"  # exclusive: the take stops at the end of bar 16 and rings for TAIL_S
TAIL_S = 2.5
SAMPLE_RATE = 44100


def main() -> None:
    import music21

    score_path = music21.corpus.getWork("bach/bwv846")
    piece = load_score(score_path)
    notes = piece.notes
    first = int(np.flatnonzero(piece.bars["number"] == START_BAR_NUMBER)[0])
    last = int(np.flatnonzero(piece.bars["number"] == END_BAR_NUMBER)[0])
    q0, q1 = piece.bars["start_quarters"][first], piece.bars["start_quarters"][last]
    sel = notes[(notes["onset_quarters"] >= q0) & (notes["onset_quarters"] < q1)]
    q = sel["onset_quarters"] - q0
    # rubato: local tempo 66..78 quarter-notes per minute, a slow sine over ~8 bars
    bpm = 72.0 + 6.0 * np.sin(2 * np.pi * np.arange(0, q.max() + 8, 0.25) / 32.0)
    sec_per_step = 60.0 / bpm * 0.25
    t_grid = np.concatenate([[0.0], np.cumsum(sec_per_step)])
    q_grid = np.arange(len(t_grid)) * 0.25
    onset_s = np.interp(q, q_grid, t_grid) + 0.5
    end_s = np.interp(q1 - q0, q_grid, t_grid) + 0.5
    dur_s = np.maximum(np.interp(q + sel["duration_quarters"], q_grid, t_grid) + 0.5 - onset_s, 0.08)
    dur_s = np.minimum(dur_s, end_s + TAIL_S - 0.5 - onset_s)
    rng = np.random.default_rng(846)
    velocity = np.clip(rng.normal(70, 8, len(sel)), 40, 100).astype(int)
    audio = render_notes(onset_s, sel["pitch"], dur_s, velocity, soundfont="fluidr3mono",
                         sample_rate=SAMPLE_RATE)
    audio = audio[: int((end_s + TAIL_S) * SAMPLE_RATE)]
    audio = 0.7 * audio / max(float(np.abs(audio).max()), 1e-6)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(OUT), audio, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    log.info("wrote %s (%.1f s, bars %s to %s of %s)", OUT, len(audio) / SAMPLE_RATE, START_BAR_NUMBER,
             int(END_BAR_NUMBER) - 1, score_path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
