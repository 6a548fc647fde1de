"""Regenerate the demo recording ``assets/demo.ogg`` (deterministic).

A pianist's take on Bach's Prelude in C major, BWV 846 (music21's corpus, so it is in the default
database), starting at bar 5 — not at the beginning — with a gently varying tempo (rubato), rendered
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
DURATION_S = 40.0
SAMPLE_RATE = 44100


def main() -> None:
    import music21

    score_path = music21.corpus.getWork("bach/bwv846")
    piece = load_score(score_path)
    notes = piece.notes
    first = int(np.flatnonzero(piece.bars["number"] == START_BAR_NUMBER)[0])
    q0 = piece.bars["start_quarters"][first]
    sel = notes[notes["onset_quarters"] >= q0]
    q = sel["onset_quarters"] - q0
    # rubato: local tempo 66..78 quarter-notes per minute, a slow sine over ~8 bars
    bpm = 72.0 + 6.0 * np.sin(2 * np.pi * np.arange(0, q.max() + 8, 0.25) / 32.0)
    sec_per_step = 60.0 / bpm * 0.25
    t_grid = np.concatenate([[0.0], np.cumsum(sec_per_step)])
    q_grid = np.arange(len(t_grid)) * 0.25
    onset_s = np.interp(q, q_grid, t_grid) + 0.5
    dur_s = np.maximum(np.interp(q + sel["duration_quarters"], q_grid, t_grid) + 0.5 - onset_s, 0.08)
    keep = onset_s < DURATION_S
    rng = np.random.default_rng(846)
    velocity = np.clip(rng.normal(70, 8, keep.sum()), 40, 100).astype(int)
    audio = render_notes(onset_s[keep], sel["pitch"][keep], dur_s[keep], velocity,
                         soundfont="fluidr3mono", sample_rate=SAMPLE_RATE)
    audio = audio[: int((DURATION_S + 2.0) * SAMPLE_RATE)]
    audio = 0.7 * audio / max(float(np.abs(audio).max()), 1e-6)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(OUT), audio, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    log.info("wrote %s (%.1f s, from bar %s of %s)", OUT, len(audio) / SAMPLE_RATE, START_BAR_NUMBER, score_path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
