"""`companion follow --piece` end to end: a database, a rendered file, JSON lines on stdout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from companion.audio.render import available_soundfonts, render_notes
from companion.commands import follow


def main(argv: list[str]) -> int:
    """``companion follow ...`` through the command module (the same add_arguments/run the CLI uses;
    the full CLI also imports the other subcommands' modules)."""
    import argparse

    assert argv[0] == "follow"
    p = argparse.ArgumentParser(prog="companion follow")
    follow.add_arguments(p)
    return follow.run(p.parse_args(argv[1:]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import soundfile as sf

    from companion.db import Database, build_database
    from companion.db.default import default_score_paths

    if "timgm6mb" not in available_soundfonts():
        pytest.skip("fluidsynth or the timgm6mb soundfont is not installed")
    paths = [p for p in default_score_paths() if p.name in ("bwv846.mxl", "maple_leaf_rag.mxl")]
    if len(paths) < 2:
        pytest.skip("music21 corpus scores not installed")
    tmp = tmp_path_factory.mktemp("follow")
    db_dir = tmp / "db"
    report = build_database(db_dir, paths)
    assert not report.failed
    db = Database.open(db_dir)
    piece = db.piece(db.find("bwv846"))
    n = piece.notes[piece.notes["onset_s"] < 15.0]
    audio = render_notes(0.3 + n["onset_s"], n["pitch"], 0.4, 80, soundfont="timgm6mb")
    wav = tmp / "bach.wav"
    sf.write(str(wav), audio, 44100)
    # the same at 22.05 kHz stereo (resampled and mixed down by the command)
    wav22 = tmp / "bach22.wav"
    sf.write(str(wav22), np.stack([audio[::2], audio[::2]], axis=1), 22050)
    return db_dir, wav, wav22, piece, len(audio) / 44100


def _run(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_follow_json_lines(setup, capsys):
    db_dir, wav, _, piece, dur = setup
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(wav), "--piece", "bwv846", "--json"])
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert len(lines) >= int(dur / 0.1)
    keys = {"t", "state", "source", "measure", "measure_offset", "score_quarters", "tempo", "confidence"}
    assert all(set(ln) == keys for ln in lines)
    t = np.array([ln["t"] for ln in lines])
    assert np.all(np.diff(t) <= 0.1 + 1e-9) and t[-1] == pytest.approx(dur, abs=1e-3)
    assert lines[0]["source"] == piece.meta.source
    tracking = [ln for ln in lines if ln["state"] == "tracking"]
    assert len(tracking) > 0.8 * len(lines)
    # played at notated tempo: the bar shown is (most of the time) the bar of the next note the player
    # plays at (t - 0.3 s), i.e. of the first onset at or after that score position
    onsets = np.unique(piece.notes["onset_quarters"])
    right = 0
    for ln in tracking:
        q = float(piece.seconds_to_quarters(max(ln["t"] - 0.3 - 0.05, 0.0)))
        nxt = onsets[min(int(np.searchsorted(onsets, q - 1e-6)), len(onsets) - 1)]
        right += ln["measure"] == str(piece.bars["number"][piece.bar_at(float(nxt))])
    assert right / len(tracking) > 0.85


def test_follow_resamples_other_rates(setup, capsys):
    db_dir, _, wav22, _, dur = setup
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(wav22), "--piece", "bwv846", "--json"])
    assert rc == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["state"] == "tracking" and last["t"] == pytest.approx(dur, abs=0.01)


def test_follow_piece_from_any_bar(setup, capsys, tmp_path):
    """--piece: the player starts in the middle (bar 12 on); the tracker starts at the first note, and
    the identifier, restricted to the piece, re-seeds it where the player is."""
    import soundfile as sf

    db_dir, _, _, piece, _ = setup
    n = piece.notes
    t0 = float(piece.bars["start_s"][11])
    sel = n[(n["onset_s"] >= t0) & (n["onset_s"] < t0 + 15.0)]
    audio = render_notes(0.3 + sel["onset_s"] - t0, sel["pitch"], 0.4, 80, soundfont="timgm6mb")
    wav = tmp_path / "middle.wav"
    sf.write(str(wav), audio, 44100)
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(wav), "--piece", "bwv846", "--json"])
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert lines[0]["measure"] == "1"  # from the first note until the identifier answers
    # the last 5 s: the bar of the note played then (or the next one), at notated tempo
    end = [ln for ln in lines if ln["t"] > lines[-1]["t"] - 5.0 and ln["t"] < 0.3 + 14.5]
    right = 0
    for ln in end:
        played = float(piece.seconds_to_quarters(t0 + ln["t"] - 0.3))
        bar = piece.bar_at(played)
        right += ln["measure"] in (str(piece.bars["number"][bar]), str(piece.bars["number"][min(bar + 1, len(piece.bars) - 1)]))
    assert right / len(end) > 0.8


def test_follow_errors(setup, capsys, tmp_path):
    db_dir, wav, _, _, _ = setup
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(wav), "--piece", "no-such-piece", "--json"])
    assert rc == 2 and "no-such-piece" in err and out == ""
    rc, out, err = _run(capsys, ["follow", "--db", str(tmp_path / "nodb"), str(wav), "--piece", "bwv846"])
    assert rc == 2 and "error" in err and out == ""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(bad), "--piece", "bwv846"])
    assert rc == 2 and "not a readable audio file" in err and out == ""
    rc, out, err = _run(capsys, ["follow", "--db", str(db_dir), str(tmp_path / "missing.wav"), "--piece", "bwv846"])
    assert rc == 2 and "no such file" in err
