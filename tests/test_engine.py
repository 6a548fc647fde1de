"""The companion engine on real data with known answers: identify then follow, recover after jumps,
stay silent on silence, noise and speech.

The database holds three ASAP scores and the music21 default set (14 pieces, built once per session).
Audio is rendered from human ASAP performances (Disklavier MIDI) with fluidsynth; the ground truth is
the bar of each aligned performed note (``note_alignment.tsv``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from companion.audio.render import available_soundfonts, render_notes
from companion.engine import Engine, EngineParams, NoteBlock
from companion.pipeline import midi_blocks, run_offline

SR = 44100
BLOCK = 2048
PIECES = ("Beethoven/Piano_Sonatas/8-1", "Beethoven/Piano_Sonatas/5-1", "Chopin/Etudes_op_10/5")
#: the engine must show the right bar within this long after the audio starts or jumps
RECOVER_S = 6.0


@dataclass
class Segment:
    """An excerpt of a performance: its notes (onsets from 0), durations and ground truth per note."""

    notes: np.ndarray
    dur: np.ndarray
    source: str
    truth_t: np.ndarray  # onsets (s from the excerpt start) of the aligned notes
    truth_measure: np.ndarray  # their bar numbers


@pytest.fixture(scope="session")
def engine_db(asap, tmp_path_factory):
    from companion.db import Database, build_database
    from companion.db.default import default_score_paths

    d = tmp_path_factory.mktemp("engine_db") / "db"
    rep = build_database(d, [asap / p / "xml_score.mxl" for p in PIECES] + default_score_paths())
    assert not rep.failed, rep.failed
    return Database.open(d)


@pytest.fixture(scope="session")
def soundfont():
    fonts = available_soundfonts()
    if "timgm6mb" not in fonts:
        pytest.skip("fluidsynth with the timgm6mb soundfont is needed to render test audio")
    return "timgm6mb"


def segment(db, folder: str, start_s: float, length_s: float) -> Segment:
    """Notes of the first robustly aligned performance of ``folder`` in ``[start_s, start_s + length_s)``."""
    from companion.bench.asap import load_performance_notes, performances
    from companion.bench.follow_bench import ground_truth

    perf = next(p for p in performances() if p.name.rsplit("/", 1)[0] == folder)
    piece = db.piece(db.find(str(perf.score)))
    notes, dur = load_performance_notes(perf.midi)
    sel = (notes["onset_s"] >= start_s) & (notes["onset_s"] < start_s + length_s)
    gt = ground_truth(perf, piece, max_s=start_s + length_s)
    m = gt.onset_s >= start_s
    out = notes[sel].copy()
    out["onset_s"] -= start_s
    return Segment(out, dur[sel], piece.meta.source, gt.onset_s[m] - start_s, gt.measure[m])


def splice(segments: list[Segment], gap_s: float = 0.3) -> tuple[Segment, list[float]]:
    """Concatenate excerpts (``gap_s`` apart); returns the whole and each part's start time."""
    notes, dur, srcs, tt, tm, starts = [], [], [], [], [], []
    t = 0.0
    for s in segments:
        starts.append(t)
        n = s.notes.copy()
        n["onset_s"] += t
        notes.append(n)
        dur.append(s.dur)
        tt.append(s.truth_t + t)
        tm.append(s.truth_measure)
        srcs.append(np.full(len(s.truth_t), s.source, dtype=object))
        t += float(s.notes["onset_s"].max()) + gap_s
    whole = Segment(np.concatenate(notes), np.concatenate(dur), "", np.concatenate(tt), np.concatenate(tm))
    whole.truth_source = np.concatenate(srcs)  # type: ignore[attr-defined]
    return whole, starts


def render(seg: Segment, soundfont: str) -> np.ndarray:
    return render_notes(seg.notes["onset_s"], seg.notes["pitch"], seg.dur, seg.notes["velocity"], soundfont=soundfont)


def run(db, audio: np.ndarray, **params) -> tuple[list, Engine]:
    eng = Engine(db, params=EngineParams(**params))
    pos = run_offline((audio[i:i + BLOCK] for i in range(0, len(audio), BLOCK)), eng)
    return pos, eng


def shown_right(pos: list, truth_t: np.ndarray, truth_measure: np.ndarray, truth_source) -> np.ndarray:
    """Per ground-truth note: was the right piece and bar on show (state tracking) when it sounded?"""
    ts = np.array([p.t for p in pos])
    k = np.searchsorted(ts, truth_t, side="right") - 1
    src = np.broadcast_to(np.asarray(truth_source, dtype=object), truth_t.shape)
    return np.array([kk >= 0 and pos[kk].state == "tracking" and pos[kk].source == s and pos[kk].measure == m
                     for kk, m, s in zip(k, truth_measure, src)])


# --------------------------------------------------------------------------------------------- tests
def test_excerpt_from_mid_piece_is_identified_then_followed(engine_db, soundfont):
    seg = segment(engine_db, "Beethoven/Piano_Sonatas/5-1", 30.0, 25.0)
    pos, eng = run(engine_db, render(seg, soundfont))
    assert pos[0].state == "searching" and pos[0].source is None
    ok = shown_right(pos, seg.truth_t, seg.truth_measure, seg.source)
    assert ok.any(), "never showed the right bar"
    first = seg.truth_t[np.argmax(ok)]
    assert first <= RECOVER_S, f"first right bar only at {first:.1f} s"
    after = ok[seg.truth_t >= first]
    assert after.mean() >= 0.75, f"right bar for {after.mean():.0%} of the notes after identification"
    assert eng.stats.seeds >= 1
    # positions come at least every 0.1 s of input, on the audio clock
    ts = np.array([p.t for p in pos])
    assert np.all(np.diff(ts) <= 0.1 + 1e-9) and ts[-1] == pytest.approx(len(render(seg, soundfont)) / SR, abs=0.01)


def test_spliced_input_is_recovered_at_each_change(engine_db, soundfont):
    a = segment(engine_db, "Beethoven/Piano_Sonatas/8-1", 150.0, 15.0)
    # the same performance ~20 bars earlier: find where the bar 20 before the end of `a` is played
    end_bar = int(a.truth_measure[-1])
    back = segment(engine_db, "Beethoven/Piano_Sonatas/8-1", 0.0, 400.0)
    i = int(np.argmax(back.truth_measure.astype(int) >= max(1, end_bar - 20)))
    a_back = segment(engine_db, "Beethoven/Piano_Sonatas/8-1", float(back.truth_t[i]), 15.0)
    b = segment(engine_db, "Chopin/Etudes_op_10/5", 20.0, 15.0)
    whole, starts = splice([a, a_back, b])
    assert int(a_back.truth_measure[0]) <= end_bar - 15
    pos, eng = run(engine_db, render(whole, soundfont))
    ok = shown_right(pos, whole.truth_t, whole.truth_measure, whole.truth_source)
    ends = starts[1:] + [np.inf]
    for k, (t0, t1) in enumerate(zip(starts, ends)):
        seg_ok = ok[(whole.truth_t >= t0) & (whole.truth_t < t1)]
        seg_t = whole.truth_t[(whole.truth_t >= t0) & (whole.truth_t < t1)]
        assert seg_ok.any(), f"part {k} never recovered"
        rec = seg_t[np.argmax(seg_ok)] - t0
        assert rec <= RECOVER_S, f"part {k}: right bar only {rec:.1f} s after the change"
        assert seg_ok[seg_t >= seg_t[np.argmax(seg_ok)]].mean() >= 0.6, f"part {k}: not followed after recovery"
    assert eng.stats.reseeds + eng.stats.seeds >= 3


@pytest.mark.parametrize("kind", ["silence", "noise", "speech"])
def test_no_identification_without_music(engine_db, kind, tmp_path):
    rng = np.random.default_rng(5)
    if kind == "silence":
        audio = np.zeros(8 * SR, np.float32)
    elif kind == "noise":
        audio = (0.1 * rng.standard_normal(8 * SR)).astype(np.float32)
    else:
        if shutil.which("espeak-ng") is None:
            pytest.skip("espeak-ng is not installed")
        wav = tmp_path / "speech.wav"
        text = ("The piano music companion listens to a performance, recognises the piece and follows "
                "the score. This is only speech, and no piece should be found in it at all.")
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        from companion.audio.sources import load_audio

        audio = load_audio(wav)
    pos, eng = run(engine_db, audio)
    assert all(p.state == "searching" and p.source is None and p.measure is None for p in pos)
    assert eng.stats.seeds == 0


def test_silence_pauses_without_losing_the_position(engine_db, soundfont):
    seg = segment(engine_db, "Beethoven/Piano_Sonatas/5-1", 30.0, 10.0)
    audio = render(seg, soundfont)
    pause = np.zeros(5 * SR, np.float32)
    pos, eng = run(engine_db, np.concatenate([audio, pause]))
    n = len(audio) // BLOCK
    before = pos[n - 1]
    assert before.state == "tracking" and before.source == seg.source
    during = pos[n + 5:]
    assert all(p.state == "tracking" and p.source == seg.source for p in during)
    q = [p.score_quarters for p in during]
    assert max(q) - min(q) < 1.0, "the position moved during the silence"


def test_midi_notes_are_identified_without_transcription(engine_db):
    seg = segment(engine_db, "Beethoven/Piano_Sonatas/5-1", 30.0, 20.0)
    from companion.events import NoteEvent

    events = [NoteEvent(float(n["onset_s"]), int(n["pitch"]), int(n["velocity"])) for n in seg.notes]
    eng = Engine(engine_db, midi=True)
    assert eng.transcriber is None
    pos = run_offline(midi_blocks(events), eng)
    ok = shown_right(pos, seg.truth_t, seg.truth_measure, seg.source)
    assert ok.any() and seg.truth_t[np.argmax(ok)] <= RECOVER_S
    assert ok[seg.truth_t >= seg.truth_t[np.argmax(ok)]].mean() >= 0.6
    with pytest.raises(ValueError):
        eng.process(np.zeros(100, np.float32))
    assert isinstance(next(iter(midi_blocks(events))), NoteBlock)


def test_reseed_prefers_the_equally_good_place_near_the_tracker():
    """A passage that recurs (a da capo written out) gives equal hypotheses at each occurrence: a
    re-seed goes to the one near the tracker (a slip), unless none is near."""
    from companion.engine import Hypothesis

    eng = Engine(None, identifier=object(), midi=True)
    eng._current = Hypothesis(7, 100.0, 1.0, 0.9, 10.0)
    far = Hypothesis(7, 20.0, 1.0, 0.80, 10.0)
    near = Hypothesis(7, 106.0, 1.0, 0.78, 10.0)
    other = Hypothesis(3, 100.0, 1.0, 0.79, 10.0)
    assert eng._nearest([far, other, near], 10.0) is near
    assert eng._nearest([far, other, Hypothesis(7, 180.0, 1.0, 0.78, 10.0)], 10.0) is far
    assert eng._nearest([far, other, Hypothesis(7, 106.0, 1.0, 0.5, 10.0)], 10.0) is far  # clearly worse


def test_midi_piece_mode_shows_the_first_bar_before_the_identifier_answers(engine_db):
    """``companion follow --piece`` on a MIDI input (the window with a known piece and a keyboard): the
    position waits at the first note, the played notes move it, and the bar on show is that of the next
    note to play; the first notes are shown in their bars before any query could answer."""
    seg = segment(engine_db, "Beethoven/Piano_Sonatas/5-1", 0.0, 20.0)
    from companion.events import NoteEvent

    pid = engine_db.find(seg.source)
    events = [NoteEvent(float(n["onset_s"]), int(n["pitch"]), int(n["velocity"])) for n in seg.notes]
    eng = Engine(engine_db, midi=True, piece=pid)
    pos = run_offline(midi_blocks(events), eng)
    assert pos[0].state == "tracking" and pos[0].measure == "1"
    ok = shown_right(pos, seg.truth_t, seg.truth_measure, seg.source)
    early = seg.truth_t < 1.5  # before a query of min_notes notes can have seeded
    assert early.sum() >= 5 and ok[early].mean() >= 0.8
    assert ok.mean() >= 0.75  # 0.80 measured: one wrong re-seed in a sequence at 11-13 s


def test_note_follower_moves_to_the_matched_note_and_stops_after_a_pause():
    """MIDI's position between answers (:class:`companion.engine.midi.NoteFollower`): a played note moves
    it to the score note of its pitch near the prediction (and ends the wait at the first note), another
    pitch does not; it is carried on at the tempo until ``pause_s`` after the last note; the bar on show
    is that of the next note once ``midi_chord_s`` has passed since the last one matched."""
    import music21

    from companion.engine import Hypothesis
    from companion.engine.midi import NoteFollower
    from companion.events import PERF_NOTE_DTYPE
    from companion.score.load import load_score

    bach = load_score(Path(music21.__file__).resolve().parent / "corpus" / "bach" / "bwv846.mxl")
    p = EngineParams()
    nf = NoteFollower(lambda pid: bach, p)
    onsets, bars = nf.onsets(0)
    s0, s1 = float(onsets[0]), float(onsets[onsets > onsets[0] + 1e-6][0])
    p0 = int(bach.notes["pitch"][np.argmin(bach.notes["onset_s"])])

    def played(t, pitch):
        n = np.zeros(1, PERF_NOTE_DTYPE)
        n["onset_s"], n["pitch"], n["velocity"] = t, pitch, 64
        return n

    start = Hypothesis(0, s0 - p.midi_chord_s, 1.0, 0.9, 0.0)
    h, waiting = nf.follow(start, played(0.3, p0 + 1), True)
    assert h is start and waiting  # no score note of that pitch near: nothing moves
    h, waiting = nf.follow(start, played(0.3, p0), True)
    assert h.score_s == pytest.approx(s0) and h.t == 0.3 and not waiting
    assert nf.score_s(h, 0.8, 0.3, False) == pytest.approx(s0 + 0.5)  # at the tempo (1.0)
    assert nf.score_s(h, 9.0, 0.3, False) == pytest.approx(s0 + p.pause_s)  # stopped pause_s after it
    assert nf.score_s(start, 9.0, None, True) == pytest.approx(start.score_s)  # waiting: no move
    assert nf.next_note(h, 0.3 + p.midi_chord_s / 2, False)[0] == pytest.approx(s0)  # the chord's own
    nxt = nf.next_note(h, 0.3 + 2 * p.midi_chord_s, False)
    assert nxt[0] == pytest.approx(s1) and nxt[1] == bars[onsets > onsets[0] + 1e-6][0]
    assert nf.next_note(Hypothesis(0, float(onsets[-1]) + 1.0, 1.0, 0.9, 0.0), 5.0, False) is None


def test_a_seed_among_equal_places_moves_at_the_first_query_that_tells_them_apart():
    """A seed chosen among places the identifier ranks alike (a theme and its recapitulation) keeps the
    others as rivals: the first query that ranks a rival clearly above the tracker's place moves the
    tracker there at once; one that ranks the tracker's place clearly above them ends the doubt."""
    import music21

    from companion.bench.identify_data import MemoryDatabase
    from companion.engine import Hypothesis
    from companion.score.load import load_score

    bach = load_score(Path(music21.__file__).resolve().parent / "corpus" / "bach" / "bwv846.mxl")
    db = MemoryDatabase([bach.notes], [bach.meta], lambda i: bach)
    eng = Engine(db, identifier=object(), midi=True)
    recap, theme = Hypothesis(0, 60.0, 1.0, 0.9, 5.0), Hypothesis(0, 10.0, 1.0, 0.9, 5.0)
    eng._seed(recap, 5.0, "seed")
    eng._rivals = [theme]
    same = [Hypothesis(0, 61.0, 1.0, 0.9, 6.0), Hypothesis(0, 11.0, 1.0, 0.9, 6.0)]
    assert eng._settle_rivals(same, same[:1], 6.0) is None and eng._rivals  # still alike: nothing moves
    parted = [Hypothesis(0, 12.0, 1.0, 0.96, 7.0), Hypothesis(0, 62.0, 1.0, 0.9, 7.0)]
    assert eng._settle_rivals(parted, parted[1:], 7.0) is parted[0]
    assert eng._current.score_s == pytest.approx(12.0) and not eng._rivals and eng.stats.reseeds == 1
    eng._rivals = [recap]
    kept = [Hypothesis(0, 13.0, 1.0, 0.97, 8.0), Hypothesis(0, 63.0, 1.0, 0.9, 8.0)]
    assert eng._settle_rivals(kept, kept[:1], 8.0) is None and not eng._rivals  # told apart: doubt over


def test_searching_in_slow_music_reaches_back_for_enough_notes():
    """While searching, a query whose horizon (5 s) holds fewer than ``sparse_notes`` notes reaches back
    up to ``sparse_horizon_s`` for them; while tracking, the short checking window stays as it is."""
    from companion.events import PERF_NOTE_DTYPE

    class Recorder:
        def __init__(self):
            self.queries = []

        def candidates(self, notes, slack=0.0):
            self.queries.append(notes.copy())
            return []

    def slow_notes(t0, t1):  # one note a second
        n = np.zeros(int(t1 - t0), PERF_NOTE_DTYPE)
        n["onset_s"] = np.arange(t0, t1) + 0.5
        n["pitch"] = 60 + np.arange(len(n)) % 12
        return n

    for sparse, expect in ((20, 10), (0, 5)):
        rec = Recorder()
        eng = Engine(None, identifier=rec, midi=True, params=EngineParams(sparse_notes=sparse, min_notes=3))
        for t in range(1, 13):
            eng.process(NoteBlock(float(t), slow_notes(t - 1, t)))
        q = rec.queries[-1]
        assert len(q) == expect  # the notes of the last 10 s (5 s without the reach back)
        assert q["onset_s"][-1] - q["onset_s"][0] == expect - 1


def test_unsure_hypothesis_seeds_only_when_confirmed():
    """While searching, the engine also asks for hypotheses ``confirm_slack`` below the identifier's
    threshold: one alone never seeds; the next query agreeing with it does."""
    from companion.events import PERF_NOTE_DTYPE
    from companion.fingerprint.identify import Candidate

    class Ident:
        def __init__(self, sure):
            self.sure, self.slacks = sure, []

        def candidates(self, notes, slack=0.0):
            self.slacks.append(slack)
            t = float(notes["onset_s"][-1])
            c = Candidate(piece=0, confidence=0.62, score_end_s=40.0 + t, tempo_ratio=1.0, transposition=0,
                          votes=10.0, matched=20, error_s=0.02, sure=self.sure)
            return [c] if (self.sure or slack > 0) else []

    import music21

    from companion.bench.identify_data import MemoryDatabase
    from companion.score.load import load_score

    bach = load_score(Path(music21.__file__).resolve().parent / "corpus" / "bach" / "bwv846.mxl")
    db = MemoryDatabase([bach.notes], [bach.meta], lambda i: bach)

    def notes(t0, t1):
        n = np.zeros(int((t1 - t0) * 8), PERF_NOTE_DTYPE)
        n["onset_s"] = t0 + np.arange(len(n)) / 8
        n["pitch"] = 60 + np.arange(len(n)) % 7
        return n

    for sure, slack, first_seed in ((False, 0.05, 2), (False, 0.0, None), (True, 0.05, 1)):
        ident = Ident(sure)
        eng = Engine(db, identifier=ident, midi=True, params=EngineParams(confirm_slack=slack))
        seeded_at = None
        for k in range(1, 5):
            eng.process(NoteBlock(k * 1.0, notes(k - 1.0, k * 1.0)))
            if eng.stats.seeds and seeded_at is None:
                seeded_at = eng.stats.queries
        assert seeded_at == first_seed, (sure, slack)
        assert ident.slacks[0] == slack


def test_piece_mode_tracks_from_the_first_note_and_never_gives_up():
    """``Engine(db, piece=...)``: tracking (the first bar) before any note, a one-piece identifier, and
    no identifier of its own alongside."""
    import music21

    from companion.db.subset import PieceList
    from companion.score.load import load_score

    bach = load_score(Path(music21.__file__).resolve().parent / "corpus" / "bach" / "bwv846.mxl")
    db = PieceList([bach])
    eng = Engine(db, piece=0)
    assert len(eng.db) == 1 and eng.db.metas[0].source == bach.meta.source
    pos = eng.process(np.zeros(2048, np.float32))[0]
    assert pos.state == "tracking" and pos.measure == "1" and pos.source == bach.meta.source
    # silence: nothing moves, nothing is lost
    for _ in range(100):
        pos = eng.process(np.zeros(2048, np.float32))[0]
    assert pos.state == "tracking" and pos.measure == "1"
    with pytest.raises(ValueError):
        Engine(db, piece=0, identifier=eng.identifier)


def test_a_reseed_into_another_piece_when_the_tracker_is_lost_shows_the_new_piece():
    """When the tracker says "lost" and a fresh hypothesis elsewhere re-seeds it in another piece, the
    position of that block is the new piece's (the block's tracking result is the old piece's, and its
    bar index may not exist in the new one)."""
    import music21

    from companion.db.subset import PieceList
    from companion.engine import Hypothesis
    from companion.score.load import load_score

    corpus = Path(music21.__file__).resolve().parent / "corpus"
    short = load_score(corpus / "bach" / "bwv846.mxl")
    long = load_score(corpus / "schumann_clara" / "polonaise_op1n1.mxl")
    assert len(long.bars) > len(short.bars) + 5

    class NoAnswers:
        def candidates(self, notes, slack=0.0):
            return []

    db = PieceList([short, long])
    eng = Engine(db, identifier=NoAnswers())
    late_s = float(long.notes["onset_s"][-20])
    eng._seed(Hypothesis(1, late_s, 1.0, 0.9, 0.0), 0.0, "seed")
    eng.process(np.zeros(2048, np.float32))
    real = eng._follower.process_spec

    def lost(*args, **kwargs):  # the tracker's verdict on this block: lost, near the end of the long piece
        r = real(*args, **kwargs)
        r.state[:] = 2
        r.bar[:] = len(long.bars) - 1
        return r

    eng._follower.process_spec = lost
    eng._last_hyps = [Hypothesis(0, 5.0, 1.0, 0.9, eng._t)]
    pos = eng.process(np.zeros(2048, np.float32))[0]
    assert eng.stats.reseeds == 1 and eng._follower_piece == 0
    assert pos.state == "tracking" and pos.source == short.meta.source
    assert pos.measure == short.measure_at(eng._to_q(0, eng._current.score_s))[0]
    assert abs(eng._current.score_s - 5.0) < 0.5


def test_identify_cli_on_audio_files(engine_db, soundfont, tmp_path, capsys):
    """``companion identify`` transcribes audio inputs and asks with the audio parameters, many inputs
    per process: a rendered excerpt is found at its bar; silence is "not in the database"."""
    import argparse
    import json

    import soundfile as sf

    from companion.commands import identify

    seg = segment(engine_db, "Beethoven/Piano_Sonatas/5-1", 40.0, 8.0)
    wav, quiet = tmp_path / "excerpt.wav", tmp_path / "silence.flac"
    sf.write(wav, render(seg, soundfont), SR)
    sf.write(quiet, np.zeros(3 * SR, np.float32), SR)
    p = argparse.ArgumentParser()
    identify.add_arguments(p)
    assert identify.run(p.parse_args(["--db", str(engine_db.path), str(wav), str(quiet), "--json"])) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [ln["input"] for ln in lines] == [str(wav), str(quiet)]
    best = lines[0]["matches"][0]
    assert best["source"] == seg.source and best["transposition"] == 0
    assert abs(int(best["measure"]) - int(seg.truth_measure[-1])) <= 1
    assert lines[1]["matches"] == []


def test_twin_scores_align_bar_by_bar(asap):
    """The engine benchmark judges a bar shown in an ASAP twin (``X`` / ``X_no_repeat``) at the bar the
    two scores align, not by its number: Beethoven op. 53 i leaves out the first ending's bars 86-87
    in ``21-1_no_repeat``, whose bar 86 is bar 88 of ``21-1``."""
    from companion.bench.twins import TwinBars
    from companion.score.load import load_score

    a = str(asap / "Beethoven/Piano_Sonatas/21-1/xml_score.mxl")
    b = str(asap / "Beethoven/Piano_Sonatas/21-1_no_repeat/xml_score.mxl")
    if not (Path(a).is_file() and Path(b).is_file()):
        pytest.skip("ASAP lacks Beethoven's op. 53 i or its _no_repeat twin")
    twins = TwinBars(load_score)
    assert twins.same(a, "88", b, "86") and twins.same(b, "86", a, "88")
    assert twins.same(a, "3", b, "3") and twins.same(a, "85", b, "85")
    assert not twins.same(a, "86", b, "86")  # the first ending is not in the _no_repeat score
    assert twins.same(a, "86", a, "86") and not twins.same(a, "87", a, "86")


@pytest.mark.parametrize("check,offset_s,agrees", [(True, 0.0, True), (False, 0.0, False), (True, 8.0, False)])
def test_a_query_without_the_trackers_place_has_the_identifier_check_it(check, offset_s, agrees):
    """Where the same notes recur (a repeat written out), a query's hypotheses may hold only the other
    occurrence. The engine then has the identifier verify the tracker's own place with the query's
    notes (``check_tracker``): as good there, the query agrees with the tracker. Without the check it
    is a disagreement (two in a row re-seed at the other occurrence), and so it is where the notes do not
    fit the tracker's place (8 s further on)."""
    import music21

    from companion.bench.identify_data import MemoryDatabase
    from companion.engine import TRACKING, Hypothesis
    from companion.fingerprint.identify import Identifier
    from companion.score.load import load_score

    bach = load_score(Path(music21.__file__).resolve().parent / "corpus" / "bach" / "bwv846.mxl")
    first = bach.notes[bach.notes["onset_s"] < 30.0]
    again = first.copy()
    again["onset_s"] += 32.0
    db = MemoryDatabase([np.concatenate([first, again])], [bach.meta], lambda i: bach)
    real = Identifier(db)

    class FirstOccurrenceOnly:  # what a vote that kept only one of the places gives
        check = staticmethod(real.check)

        def candidates(self, notes, slack=0.0):
            return [c for c in real.candidates(notes, slack=slack) if c.score_end_s < 31.0]

    from companion.events import PERF_NOTE_DTYPE

    sel = first[(first["onset_s"] >= 10.0) & (first["onset_s"] < 16.0)]
    notes = np.zeros(len(sel), PERF_NOTE_DTYPE)
    notes["onset_s"], notes["pitch"] = sel["onset_s"] - 10.0, sel["pitch"]
    t = float(notes["onset_s"][-1])
    eng = Engine(db, identifier=FirstOccurrenceOnly(), midi=True, params=EngineParams(check_tracker=check))
    eng.midi = False  # (audio, without loading the transcriber: the tracker's place is given below)
    eng.state, eng._follower_piece, eng._notes, eng._t, eng._n_notes = TRACKING, 0, notes, t, len(notes)
    eng._now_s = lambda: t
    eng._tracker_hypothesis = lambda now: Hypothesis(0, 42.0 + offset_s + now, 1.0, 1.0, now)  # the repeat
    hyps = FirstOccurrenceOnly().candidates(notes[notes["onset_s"] > t - eng.params.track_horizon_s])
    assert hyps and abs(hyps[0].score_end_s - (10.0 + t)) < 0.5  # only the first occurrence
    assert eng._arbitrate() is None
    assert (eng._n_disagree == 0) == agrees and eng._confirmed == agrees
