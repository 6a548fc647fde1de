"""``companion db build|list`` through the real entry point (``companion.cli.main``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from companion import cli
from companion.db import Database
from companion.db.default import ensure_default_db

CORPUS = Path(__import__("music21").__file__).resolve().parent / "corpus"


@pytest.fixture(autouse=True)
def only_db_subcommand(monkeypatch):
    """Register just the ``db`` subcommand, so these tests do not depend on the other commands."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"db": cli.SUBCOMMANDS["db"]})


@pytest.fixture()
def folder(tmp_path) -> Path:
    d = tmp_path / "scores"
    (d / "sub").mkdir(parents=True)
    shutil.copy(CORPUS / "schoenberg/opus19/movement2.mxl", d / "op19-2.mxl")
    shutil.copy(CORPUS / "schoenberg/opus19/movement6.mxl", d / "sub" / "op19-6.mxl")
    (d / "sub" / "broken.musicxml").write_text("<score-partwise><part><measure>")
    (d / "notes.txt").write_text("not a score, and not looked at (unsupported suffix in a folder)")
    return d


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_build_reports_bad_file_and_succeeds(tmp_path, folder, capsys):
    db_dir = tmp_path / "db"
    rc = cli.main(["db", "build", "--db", str(db_dir), str(folder)])
    out, err = capsys.readouterr()
    assert rc == 0
    bad = folder / "sub" / "broken.musicxml"
    assert f"skipped {bad}: " in out and "not well-formed" in out
    assert "2 added, 0 updated, 0 unchanged, 1 failed" in out
    assert "scores" in err  # the progress bar is on stderr
    db = Database.open(db_dir)
    assert sorted(Path(m.source).name for m in db.metas) == ["op19-2.mxl", "op19-6.mxl"]

    # again with --json: only JSON on stdout, one failed event and a summary
    rc = cli.main(["db", "build", "--db", str(db_dir), str(folder), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    lines = _json_lines(out)
    assert [ln["event"] for ln in lines] == ["failed", "summary"]
    assert lines[0]["path"] == str(bad) and lines[0]["reason"]
    assert lines[1]["unchanged"] == 2 and lines[1]["added"] == 0 and lines[1]["generation"] is None
    assert "scores:" not in err  # no progress bar with --json

    rc = cli.main(["db", "list", "--db", str(db_dir), "--json"])
    pieces = _json_lines(capsys.readouterr().out)
    assert rc == 0 and [p["id"] for p in pieces] == [0, 1]
    assert {p["title"] for p in pieces} == {"op19-2", "op19-6"}
    assert all(p["notes"] > 40 and p["bars"] > 5 for p in pieces)


def test_build_fails_without_readable_input(tmp_path, folder, capsys):
    rc = cli.main(["db", "build", "--db", str(tmp_path / "db1"), str(folder / "sub" / "broken.musicxml"), "--json"])
    lines = _json_lines(capsys.readouterr().out)
    assert rc == 1
    assert lines[0]["event"] == "failed" and lines[-1]["event"] == "error"
    rc = cli.main(["db", "build", "--db", str(tmp_path / "db2"), str(tmp_path / "nothing-here")])
    out, err = capsys.readouterr()
    assert rc == 1 and "no such file or folder" in out and "error:" in err
    rc = cli.main(["db", "list", "--db", str(tmp_path / "db2")])
    assert rc == 1 and "no database" in capsys.readouterr().err


def test_default_database(tmp_path, capsys):
    db_dir = ensure_default_db(tmp_path / "db")  # builds it: it is missing
    db = Database.open(db_dir)
    assert len(db.metas) == 11 and db.generation == "gen-1"
    assert db.metas[db.find("maple")].composer == "Scott Joplin"
    assert ensure_default_db(tmp_path / "db") == db_dir and Database.open(db_dir).generation == "gen-1"
    rc = cli.main(["db", "build", "--db", str(db_dir), "--default", "--json"])
    summary = _json_lines(capsys.readouterr().out)[-1]
    assert rc == 0 and summary["event"] == "summary"
    assert summary["unchanged"] == summary["pieces"] == 11 and summary["failed"] == 0
    assert summary["generation"] is None
