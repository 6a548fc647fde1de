"""The score database: round trip, incremental builds, atomicity, malformed input, errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import companion.db.build as build_mod
import companion.db.store as store_mod
from companion.db import Database, DatabaseError, build_database
from companion.fingerprint.index import FingerprintIndex, FingerprintParams
from companion.score.load import load_score

CORPUS = Path(__import__("music21").__file__).resolve().parent / "corpus"
SMALL = [  # three small, quick scores of three formats' worth of features
    CORPUS / "mozart/k545/movement1_exposition.mxl",
    CORPUS / "schoenberg/opus19/movement2.mxl",
    CORPUS / "schoenberg/opus19/movement6.mxl",
]


def _snapshot(db_dir: Path) -> dict[str, str]:
    """sha256 of every file under ``db_dir`` (byte-for-byte state)."""
    out = {}
    for f in sorted(db_dir.rglob("*")):
        if f.is_file():
            out[str(f.relative_to(db_dir))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def scores(tmp_path) -> list[Path]:
    folder = tmp_path / "scores"
    folder.mkdir()
    out = []
    for src in SMALL:
        dst = folder / f"{src.parent.name}_{src.name}"
        shutil.copy(src, dst)
        out.append(dst)
    return out


@pytest.fixture()
def built(tmp_path, scores):
    db_dir = tmp_path / "db"
    report = build_database(db_dir, scores)
    assert not report.failed and report.generation == "gen-1"
    return db_dir


def test_round_trip(built, scores):
    db = Database.open(built)
    assert len(db.metas) == 3 and db.generation == "gen-1"
    assert [m.source for m in db.metas] == [str(p) for p in scores]
    total = 0
    for pid, path in enumerate(scores):
        ref = load_score(path)
        piece = db.piece(pid)
        assert piece.meta == ref.meta
        np.testing.assert_array_equal(piece.notes, ref.notes)
        np.testing.assert_array_equal(piece.bars, ref.bars)
        total += len(ref.notes)
    assert db.n_notes == total
    assert isinstance(db.notes, np.memmap)  # memory-mapped, not read into memory
    # the stored index is the one FingerprintIndex builds over the same notes
    expect = FingerprintIndex.build([load_score(p).notes for p in scores], params=FingerprintParams()).arrays()
    stored = db.index_arrays()
    assert set(stored) == set(expect)
    for name in expect:
        np.testing.assert_array_equal(stored[name], expect[name])
    assert isinstance(db.index, FingerprintIndex)
    assert db.fingerprint_params == FingerprintParams().to_dict()
    # no pickle anywhere: every array loads with allow_pickle=False (Database.open did that)
    with sqlite3.connect(built / "gen-1" / "meta.sqlite") as con:
        assert dict(con.execute("SELECT key, value FROM info"))["format_version"] == str(store_mod.FORMAT_VERSION)


def test_find(built, scores):
    db = Database.open(built)
    assert db.find(str(scores[1])) == 1
    assert db.find("k545") == 0
    assert db.find("MOVEMENT6") == 2
    with pytest.raises(KeyError, match="matches 2 pieces"):
        db.find("opus19")
    with pytest.raises(KeyError, match="no piece"):
        db.find("rachmaninov")
    with pytest.raises(IndexError):
        db.piece(3)


def test_incremental_build_reparses_only_changed_files(built, scores, monkeypatch):
    parsed: list[str] = []
    real = build_mod._parse_many

    def spy(paths, on_result):
        parsed.extend(paths)
        return real(paths, on_result)

    monkeypatch.setattr(build_mod, "_parse_many", spy)
    before = Database.open(built)
    keep = np.array(before.piece(0).notes)

    # nothing changed: nothing parsed, nothing written
    report = build_database(built, scores)
    assert parsed == [] and report.generation is None and len(report.unchanged) == 3

    # change one file's content (another score's bytes) and add a new one
    shutil.copy(CORPUS / "bach/bwv846.mxl", scores[2])
    new = scores[0].parent / "h186.mxl"
    shutil.copy(CORPUS / "cpebach/h186.mxl", new)
    report = build_database(built, [scores[0].parent])
    assert sorted(parsed) == sorted([str(scores[2]), str(new)])
    assert report.updated == [str(scores[2])] and report.added == [str(new)]
    assert sorted(report.unchanged) == sorted([str(scores[0]), str(scores[1])])
    db = Database.open(built)
    assert db.generation == "gen-2" and len(db.metas) == 4
    assert db.metas[2].source == str(scores[2]) and "Prelude" in db.metas[2].title  # updated in place
    assert db.metas[3].source == str(new)
    np.testing.assert_array_equal(db.piece(0).notes, keep)
    np.testing.assert_array_equal(db.piece(2).notes, load_score(scores[2]).notes)
    assert not (built / "gen-1").exists()  # the old generation is removed


def test_new_fingerprint_params_rebuild_the_index(built, scores):
    params = FingerprintParams(fan_out=FingerprintParams().fan_out + 1)  # differs from the default
    report = build_database(built, scores, fingerprint_params=params)
    assert report.generation == "gen-2" and len(report.unchanged) == 3
    db = Database.open(built)
    assert FingerprintParams.from_dict(db.fingerprint_params) == params


def test_malformed_files_leave_database_untouched(built, scores, tmp_path):
    before = _snapshot(built)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.mxl").write_bytes(SMALL[0].read_bytes()[:2000])
    (bad / "random.musicxml").write_bytes(os.urandom(500))
    (bad / "empty.krn").write_bytes(b"")
    report = build_database(built, [bad, tmp_path / "does-not-exist.mxl", *scores])
    assert report.generation is None and report.added == [] and len(report.unchanged) == 3
    failed = dict(report.failed)
    assert set(failed) == {str(bad / "truncated.mxl"), str(bad / "random.musicxml"), str(bad / "empty.krn"),
                           str(tmp_path / "does-not-exist.mxl")}
    assert all(reason for reason in failed.values())
    assert _snapshot(built) == before
    # a stored file that becomes corrupt is reported, and its stored version is kept
    scores[1].write_bytes(b"<score-partwise><part>")
    report = build_database(built, scores)
    assert [p for p, _ in report.failed] == [str(scores[1])]
    assert "kept the previously stored version" in report.failed[0][1]
    assert _snapshot(built) == before


def test_only_bad_files_make_no_database(tmp_path):
    bad = tmp_path / "bad.mxl"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    report = build_database(tmp_path / "db", [bad])
    assert report.generation is None and report.n_pieces == 0 and len(report.failed) == 1
    assert not (tmp_path / "db").exists()  # no empty database folder is left behind
    with pytest.raises(DatabaseError, match="no database"):
        Database.open(tmp_path / "db")


@pytest.mark.parametrize("stage", ["notes", "index", "sqlite", "current"])
def test_interrupted_build_keeps_previous_generation(built, scores, monkeypatch, stage):
    before = _snapshot(built)
    old = Database.open(built)
    shutil.copy(CORPUS / "cpebach/h186.mxl", scores[0].parent / "h186.mxl")

    if stage == "current":
        def boom(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(build_mod, "commit_generation", boom)
    else:
        real_save = store_mod._save_npy
        real_connect = sqlite3.connect

        def save(path, arr):
            if (stage == "notes" and path.name == "bars.npy") or (stage == "index" and path.parent.name == "index"):
                path.write_bytes(b"\x93NUMPY half-written")
                raise KeyboardInterrupt
            return real_save(path, arr)

        def connect(path, *a, **k):
            if stage == "sqlite" and "gen-2" in str(path):
                raise OSError(28, "No space left on device")
            return real_connect(path, *a, **k)

        monkeypatch.setattr(store_mod, "_save_npy", save)
        monkeypatch.setattr(store_mod.sqlite3, "connect", connect)

    expected = DatabaseError if stage == "sqlite" else KeyboardInterrupt
    with pytest.raises(expected):
        build_database(built, [scores[0].parent])
    monkeypatch.undo()
    assert _snapshot(built) == before
    db = Database.open(built)
    assert db.generation == old.generation and [m.source for m in db.metas] == [m.source for m in old.metas]
    np.testing.assert_array_equal(db.notes, old.notes)
    # the next build succeeds and cleans up
    report = build_database(built, [scores[0].parent])
    assert len(report.added) == 1 and Database.open(built).generation == "gen-2"


def test_leftover_of_a_killed_build_is_ignored_then_removed(built, scores):
    partial = built / "gen-7"
    partial.mkdir()
    (partial / "notes.npy").write_bytes(b"\x93NUMPY")
    assert Database.open(built).generation == "gen-1"
    shutil.copy(CORPUS / "cpebach/h186.mxl", scores[0].parent / "h186.mxl")
    report = build_database(built, [scores[0].parent])
    assert report.generation == "gen-8"
    assert sorted(d.name for d in built.iterdir() if d.name.startswith("gen-")) == ["gen-8"]


def test_parser_crash_is_reported_and_the_build_goes_on(tmp_path, scores, monkeypatch):
    """A native parser that kills its process fails only its own file."""
    victim = str(scores[1])
    monkeypatch.setattr(build_mod, "_parse_one", _crash_on(victim))
    report = build_database(tmp_path / "db", scores)
    assert [p for p, _ in report.failed] == [victim]
    assert "crashed" in report.failed[0][1]
    assert sorted(report.added) == sorted([str(scores[0]), str(scores[2])])


class _crash_on:  # picklable by reference from this test module into the worker processes
    def __init__(self, victim: str) -> None:
        self.victim = victim

    def __call__(self, path: str):
        if path == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)  # like a native crash, without a core dump
        return _REAL_PARSE_ONE(path)


_REAL_PARSE_ONE = build_mod._parse_one


def test_open_errors(tmp_path, built):
    with pytest.raises(DatabaseError, match="no database"):
        Database.open(tmp_path / "nowhere")
    # wrong format version
    bad = tmp_path / "v99"
    shutil.copytree(built, bad)
    with sqlite3.connect(bad / "gen-1" / "meta.sqlite") as con:
        con.execute("UPDATE info SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(DatabaseError, match="format version 99"):
        Database.open(bad)
    # truncated notes array
    trunc = tmp_path / "trunc"
    shutil.copytree(built, trunc)
    notes = trunc / "gen-1" / "notes.npy"
    notes.write_bytes(notes.read_bytes()[:1000])
    with pytest.raises(DatabaseError):
        Database.open(trunc)
    # CURRENT names a missing generation
    (trunc / "CURRENT").write_text("gen-5\n")
    with pytest.raises(DatabaseError, match="gen-5"):
        Database.open(trunc)


def test_new_score_reader_rereads_every_stored_score(built, scores, monkeypatch, caplog):
    """A database parsed by an older score reader is read again in full (also pieces not named)."""
    db = Database.open(built)
    assert db.reader_version == build_mod.READER_VERSION
    report = build_database(built, scores[:1])
    assert report.generation is None and report.unchanged == [str(scores[0])]  # same reader: nothing to do
    monkeypatch.setattr(build_mod, "READER_VERSION", "999")
    with caplog.at_level("INFO", logger="companion.db.build"):
        report = build_database(built, scores[:1])
    assert "score reader changed" in caplog.text
    assert sorted(report.updated) == sorted(str(p) for p in scores) and not report.failed
    db2 = Database.open(built)
    assert db2.reader_version == "999" and db2.generation == "gen-2"
    for pid in range(len(scores)):
        np.testing.assert_array_equal(db2.piece(pid).notes, db.piece(pid).notes)
