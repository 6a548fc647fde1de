"""``companion db build|list``: build, update and inspect a score database (DESIGN.md §2).

``companion db build --db DIR PATH... [--default] [--json]``
    Adds score files and folders (recursively) to DIR. Shows a progress bar on stderr (not with
    ``--json``), reports every file it could not read with the reason, and goes on. Exit status 0
    when the database exists afterwards (even if some files failed), 1 when no input was found or
    the database could not be written. With ``--json``: one ``{"event": "failed", "path", "reason"}``
    line per unreadable input, then one ``{"event": "summary", ...}`` line.
``companion db list --db DIR [--json]``
    Lists the pieces (``--json``: one object per piece).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="{build,list}")
    b = sub.add_parser("build", help="build or update a database from score files or folders",
                       description="Build or update a score database (.musicxml .xml .mxl .mei .krn .abc .mid).")
    b.add_argument("--db", required=True, metavar="DIR", help="database directory (created if needed)")
    b.add_argument("paths", nargs="*", metavar="PATH", help="score files or folders (searched recursively)")
    b.add_argument("--default", action="store_true",
                   help="add the default pieces (the solo keyboard scores music21's corpus ships)")
    b.add_argument("--json", action="store_true", help="print only JSON lines on stdout")
    ls = sub.add_parser("list", help="list the pieces in a database", description="List the pieces in a database.")
    ls.add_argument("--db", required=True, metavar="DIR", help="database directory")
    ls.add_argument("--json", action="store_true", help="one JSON object per piece")


def run(args: argparse.Namespace) -> int:
    if args.db_command == "build":
        return _build(args)
    return _list(args)


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _error(args: argparse.Namespace, message: str) -> int:
    if args.json:
        _emit({"event": "error", "error": message})
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _build(args: argparse.Namespace) -> int:
    from companion.db import DatabaseError, build_database
    from companion.db.store import read_current

    paths = list(args.paths)
    if args.default:
        from companion.db.default import default_score_paths

        try:
            paths += [str(p) for p in default_score_paths()]
        except DatabaseError as exc:
            return _error(args, str(exc))
    if not paths:
        return _error(args, "nothing to add: give score files or folders, or --default")

    bar = None
    progress = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", file=sys.stderr, desc="scores", dynamic_ncols=True)

        def progress(done: int, total: int, source: str) -> None:
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.set_postfix_str(source.rsplit("/", 1)[-1][:40], refresh=False)
            bar.update(done - bar.n)

    try:
        report = build_database(args.db, paths, on_progress=progress)
    except DatabaseError as exc:
        return _error(args, str(exc))
    finally:
        if bar is not None:
            bar.close()

    for path, reason in report.failed:
        if args.json:
            _emit({"event": "failed", "path": path, "reason": reason})
        else:
            print(f"skipped {path}: {reason}")
    db_path = Path(args.db).expanduser().resolve()
    try:
        exists = read_current(db_path) is not None
    except DatabaseError:
        exists = False
    n_inputs = len(report.added) + len(report.updated) + len(report.unchanged) + len(report.failed)
    summary = {"event": "summary", "db": str(db_path), **report.to_json()}
    if args.json:
        _emit(summary)
    else:
        state = f"wrote {report.generation}" if report.generation else "nothing changed" if exists else "nothing written"
        print(
            f"{summary['db']}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.failed)} failed; "
            f"{report.n_pieces} pieces, {report.n_notes} notes ({state})"
        )
    if not exists:
        msg = ("no score files found in the given paths" if n_inputs == 0
               else "no input could be read, so no database was written")
        if args.json:
            _emit({"event": "error", "error": msg})
        else:
            print(f"error: {msg}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from companion.db import Database, DatabaseError

    try:
        db = Database.open(args.db)
    except DatabaseError as exc:
        return _error(args, str(exc))
    for pid, meta in enumerate(db.metas):
        n_notes = int(db.note_offsets[pid + 1] - db.note_offsets[pid])
        n_bars = int(db.bar_offsets[pid + 1] - db.bar_offsets[pid])
        if args.json:
            _emit({"id": pid, "source": meta.source, "title": meta.title, "composer": meta.composer,
                   "notes": n_notes, "bars": n_bars, "sha256": meta.sha256})
        else:
            who = f"{meta.composer}: " if meta.composer else ""
            print(f"{pid:4d}  {n_notes:6d} notes {n_bars:4d} bars  {who}{meta.title}  [{meta.source}]")
    if not args.json:
        print(f"{len(db.metas)} pieces, {db.n_notes} notes ({db.path}, {db.generation})", file=sys.stderr)
    return EXIT_OK
