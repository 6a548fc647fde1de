"""Score loading: bar numbers, ties, repeats, MIDI scores, metadata and malformed files (known answers)."""

from __future__ import annotations

import collections
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest

from companion.score.load import load_score
from companion.score.model import BAR_DTYPE, NOTE_DTYPE, ScoreError

CORPUS = Path(__import__("music21").__file__).resolve().parent / "corpus"
K545 = CORPUS / "mozart/k545/movement1_exposition.mxl"
BWV846 = CORPUS / "bach/bwv846.mxl"
MAZURKA = CORPUS / "chopin/mazurka06-2.krn"
OP19_2 = CORPUS / "schoenberg/opus19/movement2.mxl"


def _musicxml_notes(mxl: Path) -> dict[str, dict]:
    """Every pitched ``<note id>`` of an .mxl with its ``<measure number>`` and tie/grace flags,
    read straight from the XML (independent of verovio)."""
    with zipfile.ZipFile(mxl) as z:
        name = next(n for n in z.namelist() if not n.startswith("META-INF"))
        root = ET.fromstring(z.read(name))
    out = {}
    for measure in root.iter("measure"):
        for note in measure.iter("note"):
            nid = note.get("id")
            if nid is None or note.find("rest") is not None:
                continue
            ties = {t.get("type") for t in note.findall("tie")}
            pitch = note.find("pitch")
            midi = None
            if pitch is not None:
                step = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[pitch.findtext("step")]
                midi = 12 * (int(pitch.findtext("octave")) + 1) + step + int(float(pitch.findtext("alter") or 0))
            out[nid] = {"measure": measure.get("number"), "tie_stop": "stop" in ties, "pitch": midi,
                        "grace": note.find("grace") is not None, "chord": note.find("chord") is not None}
    return out


@pytest.fixture(scope="module")
def sonata17(asap):
    folder = asap / "Beethoven/Piano_Sonatas/17-1"
    return folder, load_score(folder / "xml_score.mxl")


def test_bar_numbers_match_musicxml(sonata17):
    folder, piece = sonata17
    xml = _musicxml_notes(folder / "xml_score.mxl")
    numbers = piece.bars["number"][piece.notes["bar"]]
    assert piece.notes.dtype == NOTE_DTYPE and piece.bars.dtype == BAR_DTYPE
    checked = 0
    for nid, number in zip(piece.notes["note_id"], numbers):
        assert nid in xml, f"{nid} is not a notated note id"
        assert number == xml[nid]["measure"], nid
        checked += 1
    assert checked == len(piece.notes) > 3000
    # a few notes by hand: n1 opens bar 1, the first notes carry the file's own ids
    assert piece.measure_at(0.0) == ("1", 0.0)
    assert set(piece.notes["note_id"][piece.notes["onset_quarters"] == 0.0]) >= {"n1", "n2", "n3", "n7"}


def test_ties_sound_once_with_merged_duration(sonata17):
    folder, piece = sonata17
    xml = _musicxml_notes(folder / "xml_score.mxl")
    ids = set(piece.notes["note_id"])
    tie_stops = {nid for nid, d in xml.items() if d["tie_stop"]}
    assert len(tie_stops) == 124
    assert not ids & tie_stops, "a tie continuation is sounding"
    # every other pitched note sounds (grace notes and chord notes included), except the second note
    # of a unison between two voices: the same key in the same bar sounds at that time already
    missing = set(xml) - tie_stops - ids
    assert ids <= set(xml) - tie_stops and len(missing) < 0.02 * len(ids)
    numbers = piece.bars["number"][piece.notes["bar"]]
    for nid in missing:
        same = (piece.notes["pitch"] == xml[nid]["pitch"]) & (numbers == xml[nid]["measure"])
        assert same.any(), nid
    # the pitches read from the MEI equal the MusicXML's <pitch> for every note
    for nid, pitch in zip(piece.notes["note_id"], piece.notes["pitch"]):
        assert pitch == xml[nid]["pitch"], nid
    assert {nid for nid, d in xml.items() if d["grace"]} <= ids
    # n7 (4 quarters) is tied to n17 (3 quarters): one note of 7 quarters
    n7 = piece.notes[piece.notes["note_id"] == "n7"][0]
    assert n7["duration_quarters"] == pytest.approx(7.0)


def test_repeats_unfolded(asap, sonata17):
    _, rep = sonata17
    norep = load_score(asap / "Beethoven/Piano_Sonatas/17-1_no_repeat/xml_score.mxl")
    assert len(rep.notes) > len(norep.notes) + 1000
    assert len(rep.bars) > len(norep.bars)
    # the repeated exposition: some bar numbers occur twice in performance order, ids stay notated
    counts = collections.Counter(rep.bars["number"])
    assert counts["2"] == 2 and counts.most_common(1)[0][1] == 2
    assert all(counts_n == 1 for counts_n in collections.Counter(norep.bars["number"]).values())
    assert not any("-rend" in i for i in rep.notes["note_id"])
    # bars strictly increasing in unfolded time, notes sorted and inside their bar
    for p in (rep, norep):
        assert np.all(np.diff(p.bars["start_quarters"]) > 0)
        assert np.all(np.diff(p.notes["onset_quarters"]) >= 0)
        assert np.all(np.diff(p.notes["onset_s"]) >= -1e-9)
        assert np.all(p.notes["measure_offset"] >= 0)
    # the same notated note sounds once per pass
    per_id = collections.Counter(rep.notes["note_id"])
    assert per_id["n1"] == 2


def test_asap_midi_score_matches_musicxml(asap):
    folder = asap / "Chopin/Etudes_op_10/3"
    midi = load_score(folder / "midi_score.mid")
    xml = load_score(folder / "xml_score.mxl")
    assert len(midi.notes) == len(xml.notes) == 1876  # 1932 in the files, less 56 unison doublings
    np.testing.assert_array_equal(np.sort(midi.notes["pitch"]), np.sort(xml.notes["pitch"]))
    # the score MIDI places a few grace notes slightly earlier (< 0.05 quarters); all else is exact
    diff = np.abs(midi.notes["onset_quarters"] - xml.notes["onset_quarters"])
    assert diff.max() < 0.05 and np.mean(diff < 1e-6) > 0.98
    assert midi.notes["note_id"][0] == "midi-n0" and midi.bars["number"][0] == "1"
    # a pickup bar: MusicXML <measure number="0" implicit="yes"> of an eighth, then bar "1"
    assert list(xml.bars["number"][:3]) == ["0", "1", "2"]
    np.testing.assert_allclose(xml.bars["start_quarters"][:3], [0.0, 0.5, 2.5])
    assert xml.measure_at(0.75) == ("1", 0.25)
    # the score MIDI marks the pickup with a 1/8 time signature, so its bars start at the same places
    np.testing.assert_allclose(midi.bars["start_quarters"][:3], [0.0, 0.5, 2.5])
    assert midi.meta.composer == "Chopin" and midi.meta.title == "Etudes op 10 3"


def test_midi_score_tempo_map_and_time_signatures(tmp_path):
    """A hand-made MIDI file: 3/4, 120 bpm for two bars, then 60 bpm; known onsets and bars."""
    tpb = 480
    mf = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta = mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
        mido.MetaMessage("set_tempo", tempo=500_000, time=0),
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=6 * tpb),  # bar 3 at 60 bpm
    ])
    notes = mido.MidiTrack()
    # quarters 0, 1, 5, 7 (+ a drum hit on channel 10 at 2 that must be ignored)
    events = [(0, 60), (1, 64), (5, 67), (7, 72)]
    t_prev = 0
    msgs = []
    for q, p in events:
        msgs.append((q * tpb, mido.Message("note_on", note=p, velocity=80)))
        msgs.append((q * tpb + tpb // 2, mido.Message("note_off", note=p, velocity=0)))
    msgs.append((2 * tpb, mido.Message("note_on", channel=9, note=36, velocity=100)))
    for tick, m in sorted(msgs, key=lambda x: x[0]):
        notes.append(m.copy(time=tick - t_prev))
        t_prev = tick
    mf.tracks += [meta, notes]
    path = tmp_path / "tune.mid"
    mf.save(path)
    piece = load_score(path)
    np.testing.assert_array_equal(piece.notes["pitch"], [60, 64, 67, 72])
    np.testing.assert_allclose(piece.notes["onset_quarters"], [0, 1, 5, 7])
    np.testing.assert_allclose(piece.notes["onset_s"], [0, 0.5, 2.5, 3.0 + 1.0])
    np.testing.assert_allclose(piece.notes["duration_quarters"], 0.5)
    np.testing.assert_allclose(piece.bars["start_quarters"], [0, 3, 6])
    np.testing.assert_allclose(piece.bars["start_s"], [0, 1.5, 3.0])
    assert list(piece.bars["number"]) == ["1", "2", "3"]
    assert list(piece.bars["number"][piece.notes["bar"]]) == ["1", "1", "2", "3"]
    np.testing.assert_allclose(piece.notes["measure_offset"], [0, 1, 2, 1])
    assert list(piece.notes["note_id"]) == ["midi-n0", "midi-n1", "midi-n2", "midi-n3"]
    assert piece.meta.title == "tune"


def test_music21_corpus_metadata_and_formats():
    k545 = load_score(K545)
    assert (k545.meta.title, k545.meta.composer) == ("k545 movement1 exposition", "Mozart")
    bach = load_score(BWV846)
    assert (bach.meta.title, bach.meta.composer) == ("Prelude I: In C major", "Johann Sebastian Bach")
    assert len(bach.bars) == 35 - 1 and bach.bars["number"][-1] == "34"
    # the prelude: 16 semiquavers per bar in bars 1-32 (ties merged), so 4 beats of 4 onsets each
    first_bar = bach.notes[bach.notes["bar"] == 0]
    assert len(np.unique(first_bar["onset_quarters"])) == 16
    mazurka = load_score(MAZURKA)  # Humdrum **kern, metadata from !!!COM / !!!OTL
    assert mazurka.meta.composer.startswith("Chopin")
    assert "Mazurka" in mazurka.meta.title
    assert len(mazurka.notes) > 700
    # a latin-1 kern file: verovio hands its bytes back as lone surrogates in the MEI export
    sanctus = load_score(CORPUS / "palestrina/Sanctus_87_c.krn")
    assert "Palestrina" in sanctus.meta.composer and len(sanctus.notes) > 300


def test_unisons_sound_once():
    piece = load_score(CORPUS / "schumann_clara/polonaise_op1n3.mxl")  # melody doubled in inner voices
    key = np.stack([piece.notes["onset_quarters"], piece.notes["pitch"]], axis=1)
    assert len(np.unique(key, axis=0)) == len(piece.notes) > 1700


_TINY_XML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">{head}
  <part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
  <part id="P1"><measure number="1">
    <attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>
    <note><pitch><step>C</step><octave>4</octave></pitch><duration>4</duration><type>whole</type></note>
  </measure></part>
</score-partwise>
"""


@pytest.mark.parametrize("head, title, composer", [
    ('<work><work-title>Sonata</work-title></work><movement-title>Allegro</movement-title>'
     '<identification><creator type="composer">A. Composer (1700 - 1750)</creator></identification>',
     "Sonata: Allegro", "A. Composer"),
    # page-1 credits: the largest centred one is the title, the right-justified one the composer;
    # UTF-8 once mis-decoded as Korean CP949 (as in some ASAP files) is repaired
    ('<credit page="1"><credit-words justify="center" font-size="24">\ud68btude in E Major</credit-words></credit>'
     '<credit page="1"><credit-words justify="center" font-size="14">Opus 10 No. 3</credit-words></credit>'
     '<credit page="1"><credit-words justify="right" font-size="12">Fr\ucc55d\ucc55ric Chopin</credit-words></credit>',
     "\u00c9tude in E Major: Opus 10 No. 3", "Fr\u00e9d\u00e9ric Chopin"),
    ('<credit page="1"><credit-words justify="center" font-size="20">\ud55c\uad6d\uc5b4</credit-words></credit>',
     "\ud55c\uad6d\uc5b4", ""),  # real Korean stays as it is
    ("", "tiny", ""),  # nothing in the file: the file name
])
def test_musicxml_metadata(tmp_path, head, title, composer):
    path = tmp_path / "tiny.musicxml"
    path.write_text(_TINY_XML.format(head=head), encoding="utf-8")
    piece = load_score(path)
    assert (piece.meta.title, piece.meta.composer) == (title, composer)
    assert list(piece.notes["pitch"]) == [60]


def test_mei_score(tmp_path):
    """An MEI file (verovio's own export of op. 19/6, with a title and composer added to its header)
    loads with the same notes, bar numbers and ids as the MusicXML it came from."""
    import verovio

    ref = load_score(CORPUS / "schoenberg/opus19/movement6.mxl")
    tk = verovio.toolkit()
    tk.setOptions({"xmlIdSeed": 1})
    tk.loadFile(str(CORPUS / "schoenberg/opus19/movement6.mxl"))
    mei = tk.getMEI({"removeIds": False}).replace(
        "<title />", "<title>Sechs kleine Klavierst\u00fccke, Nr. 6</title>", 1).replace(
        "<respStmt />", '<respStmt><persName role="composer">Arnold Schoenberg</persName></respStmt>', 1)
    path = tmp_path / "op19-6.mei"
    path.write_text(mei, encoding="utf-8")
    piece = load_score(path)
    assert (piece.meta.title, piece.meta.composer) == ("Sechs kleine Klavierst\u00fccke, Nr. 6", "Arnold Schoenberg")
    for field in ("onset_quarters", "pitch", "note_id"):
        np.testing.assert_array_equal(piece.notes[field], ref.notes[field])
    np.testing.assert_array_equal(piece.bars["number"], ref.bars["number"])


def test_score_without_tempo_uses_120_bpm():
    piece = load_score(OP19_2)  # Schoenberg op. 19/2 carries no tempo in the file
    np.testing.assert_allclose(piece.notes["onset_s"], piece.notes["onset_quarters"] * 0.5, atol=2e-3)


def test_abc_score(tmp_path):
    path = tmp_path / "tune.abc"
    path.write_text("\n\nX:1\nT:Scale\nC:Nobody\nM:4/4\nL:1/4\nK:C\nC D E F|G A B c|]\n")
    piece = load_score(path)
    np.testing.assert_array_equal(piece.notes["pitch"], [60, 62, 64, 65, 67, 69, 71, 72])
    assert list(piece.bars["number"][piece.notes["bar"]]) == ["1"] * 4 + ["2"] * 4
    assert (piece.meta.title, piece.meta.composer) == ("Scale", "Nobody")


def _mxl_member(mxl: Path) -> bytes:
    with zipfile.ZipFile(mxl) as z:
        return z.read(next(n for n in z.namelist() if not n.startswith("META-INF")))


def _malformed(tmp_path: Path) -> list[Path]:
    files = {
        "empty.musicxml": b"",
        "empty.mxl": b"",
        "random.musicxml": bytes(range(256)) * 3,
        "random.mxl": bytes(range(255, -1, -1)) * 3,
        "truncated.mxl": BWV846.read_bytes()[:3000],
        "fakezip.mxl": b"PK\x03\x04garbage",
        "html.xml": b"<html><body>not a score</body></html>",
        "nopart.musicxml": b'<?xml version="1.0"?><score-partwise><part-list/></score-partwise>',
        "halfxml.musicxml": _mxl_member(BWV846)[:20000],  # verovio alone would load the first bars
        "noKey.abc": b"X:1\nT:no key line\n",  # crashes verovio 6.4.1 (SIGSEGV) if it gets there
        "nobody.abc": b"X:1\nK:C\n",
        "collection.abc": b"X:1\nT:a\nK:C\nCDEF|\n\nX:2\nT:b\nK:C\nGABc|\n",  # verovio reads tune 1 only
        "text.krn": b"hello world\n",
        "random.mei": b"\x00\x01\x02 not xml",
        "notes.txt": b"C D E F",
        "broken.mid": b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x01\x00",
        "empty.mid": b"",
    }
    out = []
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        out.append(p)
    return out


def test_malformed_files_raise_score_error(tmp_path):
    for path in _malformed(tmp_path):
        with pytest.raises(ScoreError) as err:
            load_score(path)
        msg = str(err.value)
        assert str(path) in msg and len(msg) > len(str(path)) + 5, msg
    with pytest.raises(ScoreError, match="no such file"):
        load_score(tmp_path / "missing.mxl")


def test_symlinked_and_copied_scores_load_the_same(tmp_path):
    copy = tmp_path / "copy.mxl"
    shutil.copy(K545, copy)
    a, b = load_score(K545), load_score(copy)
    np.testing.assert_array_equal(a.notes, b.notes)
    assert a.meta.sha256 == b.meta.sha256 and a.meta.source != b.meta.source


def test_timemap_quarters_repairs_verovio_positions():
    """Entries whose qstamp contradicts their time (verovio 6.4 on some scores) are repaired from the time."""
    from companion.score.load import timemap_quarters

    tm = [
        {"tstamp": 0.0, "qstamp": 0.0, "tempo": 60},
        {"tstamp": 1000.0, "qstamp": 1.0},
        {"tstamp": 3000.0, "qstamp": -1303.0},  # wrong by a whole section; so is everything after it
        {"tstamp": 2000.0, "qstamp": 2.0},  # out of time order, as verovio sometimes lists them
        {"tstamp": 4000.0, "qstamp": -1302.0, "tempo": 120},
        {"tstamp": 4500.0, "qstamp": -1301.0},  # twice as fast from here: verovio's steps are kept
        {"tstamp": 5000.0, "qstamp": -1300.0},
    ]
    np.testing.assert_allclose(timemap_quarters(tm), [0.0, 1.0, 3.0, 2.0, 4.0, 5.0, 6.0])
    ok = [{"tstamp": 0.0, "qstamp": 0.0, "tempo": 90}, {"tstamp": 333.0, "qstamp": 0.5},
          {"tstamp": 1000.0, "qstamp": 1.5}]
    assert timemap_quarters(ok).tolist() == [0.0, 0.5, 1.5]  # verovio's exact values where it is consistent


def test_barcarolle_positions_follow_the_bars(asap):
    """ASAP's Chopin Barcarolle: verovio puts bars 85-116 at negative quarters; the reader does not."""
    piece = load_score(asap / "Chopin" / "Barcarolle" / "xml_score.mxl")
    q, s = piece.notes["onset_quarters"], piece.notes["onset_s"]
    assert q.min() >= 0 and np.all(np.diff(s) >= -1e-6)
    numbers = [int(n) for n in piece.bars["number"]]
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] >= 116
    np.testing.assert_allclose(piece.seconds_to_quarters(s), q, atol=1e-6)


def _bars_notes(rows, bar_starts):
    from companion.score.model import BAR_DTYPE, NOTE_DTYPE

    bars = np.zeros(len(bar_starts), dtype=BAR_DTYPE)
    bars["start_quarters"] = bar_starts
    bars["start_s"] = np.asarray(bar_starts) * 0.5
    bars["number"] = [str(i + 1) for i in range(len(bar_starts))]
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    for k, (q, d) in enumerate(rows):
        notes[k]["onset_quarters"], notes[k]["onset_s"], notes[k]["duration_quarters"] = q, 0.5 * q, d
        notes[k]["pitch"] = 60
    notes["bar"] = np.searchsorted(bars["start_quarters"], notes["onset_quarters"], side="right") - 1
    return notes, bars


def test_close_silent_gaps_shortens_broken_bars_only():
    from companion.score.load import close_silent_gaps

    # bar 3 (quarters 8..408) holds one note, 396 quarters of silence, then a note near its end
    starts = [0, 4, 8, 408, 412, 416]
    rows = [(0, 1), (4, 4), (8, 2), (407, 1), (408, 4), (412, 1), (416, 1)]
    notes, bars = _bars_notes(rows, starts)
    n2, b2, closed = close_silent_gaps(notes, bars)
    assert closed == [("3", pytest.approx(396.0))]
    np.testing.assert_allclose(b2["start_quarters"], [0, 4, 8, 12, 16, 20])
    np.testing.assert_allclose(n2["onset_quarters"], [0, 4, 8, 11, 12, 16, 20])
    np.testing.assert_allclose(n2["onset_s"], 0.5 * n2["onset_quarters"])
    np.testing.assert_allclose(n2["measure_offset"], [0, 0, 0, 3, 0, 0, 0])
    # a cadenza: a long bar full of notes stays as it is
    rows = [(0, 1), (4, 1)] + [(8 + 0.5 * k, 0.5) for k in range(400)] + [(208, 1), (212, 1)]
    notes, bars = _bars_notes(rows, [0, 4, 8, 208, 212])
    n2, b2, closed = close_silent_gaps(notes, bars)
    assert closed == []
    np.testing.assert_array_equal(n2["onset_quarters"], notes["onset_quarters"])
    np.testing.assert_array_equal(b2["start_quarters"], bars["start_quarters"])


def test_appassionata_has_no_silent_bars(asap):
    """ASAP's op. 57 i moves voices ~660 quarters ahead in 12 bars; the reader closes those silences."""
    piece = load_score(asap / "Beethoven" / "Piano_Sonatas" / "23-1" / "xml_score.mxl")
    lengths = np.diff(piece.bars["start_quarters"])
    assert lengths.max() <= 10 * np.median(lengths)
    assert 1500 <= piece.notes["onset_quarters"].max() <= 1700  # 262 bars of 12/8 (repeat unfolded: ~1600 q)
    assert np.all(np.diff(piece.notes["onset_s"]) >= -1e-6)
