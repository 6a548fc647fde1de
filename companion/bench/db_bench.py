"""Benchmark of score parsing and the on-disk database: build, incremental update, open, size.

Run::

    .venv/bin/python -m companion.bench.db_bench [--data default|asap|both] [--out DIR]

``default`` is the 11 solo keyboard scores of music21's corpus; ``asap`` all 239 ASAP MusicXML scores
(``../shared/data/asap``, skipped with a note where absent). Prints a markdown table. Times are wall
clock on the machine as it is (other processes included); ``parse CPU`` is the CPU time of the
parsing worker processes, which is less sensitive to load.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench(name: str, paths: list[Path], work: Path) -> dict:
    """Build a database of ``paths`` in ``work/name`` and time the operations."""
    from companion.db import Database, build_database

    db_dir = work / name
    src_dir = work / f"{name}-changed"
    row: dict = {"data": name, "files": len(paths)}

    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    rep = build_database(db_dir, paths)
    row["build_s"] = time.perf_counter() - t0
    row["parse_s"], row["index_s"], row["write_s"] = rep.parse_s, rep.index_s, rep.write_s
    row["parse_cpu_s"] = _children_cpu() - cpu0
    row["failed"] = len(rep.failed)
    row["pieces"], row["notes"] = rep.n_pieces, rep.n_notes
    row["size_mb"] = _dir_size(db_dir) / 1e6
    for src, reason in rep.failed:
        log.warning("%s: %s", src, reason)

    t0 = time.perf_counter()
    rep = build_database(db_dir, paths)
    row["noop_s"] = time.perf_counter() - t0
    assert rep.generation is None and len(rep.unchanged) == row["pieces"]

    # one file changed: a copy of the first score under a new name is one added piece
    src_dir.mkdir(exist_ok=True)
    extra = src_dir / f"copy{paths[0].suffix}"
    shutil.copy(paths[0], extra)
    t0 = time.perf_counter()
    rep = build_database(db_dir, [*paths, extra])
    row["add1_s"] = time.perf_counter() - t0
    assert rep.added == [str(extra.resolve())]

    t0 = time.perf_counter()
    db = Database.open(db_dir)
    row["open_ms"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    n = sum(len(db.piece(i).notes) for i in range(len(db.metas)))
    row["pieces_ms"] = (time.perf_counter() - t0) * 1e3
    assert n == db.n_notes
    t0 = time.perf_counter()
    _ = db.index
    row["index_load_ms"] = (time.perf_counter() - t0) * 1e3
    row["notes_per_s_excl_parse"] = row["notes"] / max(row["index_s"] + row["write_s"], 1e-9)
    return row


COLUMNS = [
    ("data", "data", "{}"), ("files", "files", "{}"), ("failed", "failed", "{}"), ("notes", "notes", "{}"),
    ("build_s", "build s", "{:.1f}"), ("parse_s", "parse s (2 proc)", "{:.1f}"),
    ("parse_cpu_s", "parse CPU s", "{:.1f}"), ("index_s", "index s", "{:.2f}"), ("write_s", "write s", "{:.2f}"),
    ("notes_per_s_excl_parse", "notes/s excl. parse", "{:,.0f}"), ("noop_s", "no-op rebuild s", "{:.2f}"),
    ("add1_s", "add 1 file s", "{:.2f}"), ("open_ms", "open ms", "{:.1f}"), ("pieces_ms", "all piece() ms", "{:.1f}"),
    ("index_load_ms", "index load ms", "{:.1f}"), ("size_mb", "size MB", "{:.1f}"),
]


def markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(c[1] for c in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(fmt.format(r[k]) for k, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", choices=["default", "asap", "both"], default="both")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    from companion.bench.asap import SKIP_REASON, score_paths
    from companion.db.default import default_score_paths

    sets: list[tuple[str, list[Path]]] = []
    if args.data in ("default", "both"):
        sets.append(("music21 default", default_score_paths()))
    if args.data in ("asap", "both"):
        asap = score_paths()
        if asap:
            sets.append(("ASAP (239 .mxl)", asap))
        else:
            print(f"ASAP skipped: {SKIP_REASON}", file=sys.stderr)
    work = args.out or Path(tempfile.mkdtemp(prefix="companion-dbbench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = [bench(f"db{i}", paths, work) | {"data": name} for i, (name, paths) in enumerate(sets)]
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
