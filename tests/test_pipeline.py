"""The pipeline: threaded stages give exactly the offline results; inputs; errors; ``companion follow``
without ``--piece`` (identify, then follow).

Data: the music21 default scores as the database and the project's own demo recording
(``assets/demo.ogg``: BWV 846 from bar 5, rendered with FluidR3 Mono), so no ASAP data is needed.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from companion.engine import Engine, NoteBlock
from companion.events import NoteEvent
from companion.pipeline import LatestQueue, Pipeline, blocks, midi_blocks, open_input, run_offline

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo.ogg"
SECONDS = 12.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import soundfile as sf

    from companion.audio.sources import load_audio
    from companion.db import Database, build_database
    from companion.db.default import default_score_paths

    tmp = tmp_path_factory.mktemp("pipeline")
    rep = build_database(tmp / "db", default_score_paths())
    assert not rep.failed, rep.failed
    db = Database.open(tmp / "db")
    wav = tmp / "demo12.wav"
    sf.write(str(wav), load_audio(DEMO)[: int(SECONDS * 44100)], 44100)
    return db, tmp / "db", wav


def _key(p):
    return p.to_json()


def test_threaded_pipeline_equals_offline(setup):
    db, _, wav = setup
    engine = Engine(db)
    offline = run_offline(blocks(open_input(str(wav))), engine)
    got = []
    latest = LatestQueue()
    pipe = Pipeline(blocks(open_input(str(wav))), engine, listeners=[got.append, latest.put], queue_blocks=4)
    assert pipe.run() == len(offline)
    assert [_key(p) for p in got] == [_key(p) for p in offline]
    assert latest.take().to_json() == offline[-1].to_json() and latest.take() is None
    # it did identify and follow the piece (so the comparison is not between two empty runs)
    tracking = [p for p in offline if p.state == "tracking"]
    assert tracking and all(p.source.endswith("bwv846.mxl") for p in tracking)
    assert 5 <= int(tracking[-1].measure) <= 10


def test_midi_file_threaded_equals_offline(setup, tmp_path):
    from companion.audio.render import write_midi

    db, _, _ = setup
    piece = db.piece(db.find("bwv846"))
    n = piece.notes[(piece.notes["onset_s"] >= 20.0) & (piece.notes["onset_s"] < 32.0)]
    mid = write_midi(tmp_path / "x.mid", 0.9 * (n["onset_s"] - 20.0) + 0.5, n["pitch"], 0.3, 70)
    inp = open_input(str(mid))
    assert inp.midi and inp.finite
    engine = Engine(db, midi=True)
    offline = run_offline(blocks(inp), engine)
    got = []
    Pipeline(blocks(open_input(str(mid))), engine, listeners=[got.append]).run()
    assert [_key(p) for p in got] == [_key(p) for p in offline]
    tracking = [p for p in offline if p.state == "tracking"]
    assert tracking and tracking[-1].source.endswith("bwv846.mxl")
    true_bar = piece.bars["number"][piece.notes["bar"][np.searchsorted(piece.notes["onset_s"], 31.5)]]
    assert abs(int(tracking[-1].measure) - int(true_bar)) <= 1


def test_stage_error_reaches_the_caller(setup):
    db, _, _ = setup
    engine = Engine(db, midi=True)  # takes notes; audio blocks are an error
    pipe = Pipeline(iter([np.zeros(2048, np.float32)] * 3), engine)
    with pytest.raises(ValueError, match="MIDI"):
        pipe.run()
    assert not any(t.is_alive() for t in pipe._threads)


def test_stop_ends_a_live_like_source(setup):
    db, _, _ = setup
    stop = threading.Event()

    def endless():
        k = 1
        while not stop.is_set():
            yield NoteBlock(k * 0.05, np.zeros(0, dtype=[("onset_s", "f8"), ("pitch", "i2"), ("velocity", "i2")]))
            k += 1

    got = []
    pipe = Pipeline(endless(), Engine(db, midi=True), listeners=[got.append], finite=False).start()
    while len(got) < 20:
        threading.Event().wait(0.01)
    pipe.stop()
    stop.set()
    assert pipe.join(5.0)
    assert pipe.error is None and all(p.state == "searching" for p in got)


def test_latest_queue_keeps_only_the_newest():
    q = LatestQueue()
    assert q.take() is None
    q.put(1)
    q.put(2)
    assert q.take() == 2 and q.take() is None and q.overwritten == 1


def test_midi_blocks_advance_through_pauses():
    ev = [NoteEvent(0.01, 60), NoteEvent(0.02, 64), NoteEvent(0.55, 67)]
    out = list(midi_blocks(ev, step_s=0.1))
    assert [round(b.end_s, 2) for b in out] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert [len(b.notes) for b in out] == [2, 0, 0, 0, 0, 1]
    assert out[0].notes["pitch"].tolist() == [60, 64]


def test_benchmark_midi_excerpts_are_read_as_a_midi_file_is():
    """The engine benchmark's MIDI input (``--midi``): the product's blocks, then silence to the clip's end;
    a splice puts the second clip ``part_s`` after the first."""
    from companion.bench.excerpts import BLOCK, SR, MidiClip, MidiExcerpts
    from companion.events import PERF_NOTE_DTYPE
    from companion.pipeline import BLOCK_S

    assert BLOCK / SR == BLOCK_S  # the audio benchmarks' blocks are the product's too

    ex = MidiExcerpts()
    a = MidiClip(np.array([(0.0, 60, 80), (0.5, 64, 80), (0.51, 67, 70)], PERF_NOTE_DTYPE), 2.0)
    b = MidiClip(np.array([(0.2, 72, 90)], PERF_NOTE_DTYPE), 1.0)
    x = ex.splice(a, b, 2.0)
    assert ex.seconds(x) == 3.0 and x.notes["onset_s"][-1] == pytest.approx(2.2)
    got = ex.blocks(x)
    want = list(midi_blocks([NoteEvent(float(n["onset_s"]), int(n["pitch"]), int(n["velocity"])) for n in x.notes],
                            step_s=BLOCK_S))
    assert [g.end_s for g in got[:len(want)]] == [w.end_s for w in want]
    assert all(np.array_equal(g.notes, w.notes) for g, w in zip(got, want))
    assert np.allclose(np.diff([g.end_s for g in got]), BLOCK_S)
    assert got[-1].end_s >= 3.0 > got[-2].end_s
    assert sum(len(g.notes) for g in got) == 4


def test_open_input_kinds_and_errors(tmp_path):
    from companion.audio.sources import AudioFileError, SoundDeviceSource

    inp = open_input("device:3")
    assert isinstance(inp.source, SoundDeviceSource) and inp.source.device == 3 and not inp.finite
    assert open_input("mic").source.device is None
    assert open_input("device:pulse").source.device == "pulse"
    assert open_input("midi:Digital Piano").midi
    with pytest.raises(AudioFileError, match="no such file"):
        open_input(str(tmp_path / "missing.wav"))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioFileError):
        open_input(str(bad))


# ------------------------------------------------------------------------------------------------ CLI
def _follow(argv: list[str]) -> int:
    from companion.commands import follow

    p = argparse.ArgumentParser(prog="companion follow")
    follow.add_arguments(p)
    return follow.run(p.parse_args(argv))


def test_follow_without_piece_identifies_then_follows(setup, capsys):
    _, db_dir, wav = setup
    assert _follow(["--db", str(db_dir), str(wav), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert set(lines[0]) == {"t", "state", "source", "measure", "measure_offset", "score_quarters", "tempo",
                             "confidence"}
    ts = [x["t"] for x in lines]
    assert np.all(np.diff(ts) <= 0.1 + 1e-9) and ts[-1] == pytest.approx(SECONDS, abs=0.01)
    assert lines[0]["state"] == "searching" and lines[0]["source"] is None
    tracking = [x for x in lines if x["state"] == "tracking"]
    assert tracking and tracking[0]["t"] < 6.0
    assert all(x["source"].endswith("bwv846.mxl") for x in tracking)


def test_follow_without_piece_errors(setup, capsys, tmp_path):
    _, db_dir, wav = setup
    assert _follow(["--db", str(tmp_path / "nodb"), str(wav)]) == 2
    assert "error" in capsys.readouterr().err
    assert _follow(["--db", str(db_dir), str(tmp_path / "missing.flac")]) == 2
    assert "no such file" in capsys.readouterr().err
