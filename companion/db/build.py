"""Build or update a score database (incrementally, atomically); see :mod:`companion.db.store`.

:func:`build_database` adds score files and folders to a database directory. Files whose sha256 is
already stored are kept as they are (their arrays are copied from the previous generation), new and
changed files are parsed in worker processes, and the fingerprint index is rebuilt over all notes.
A file that cannot be read is reported with the reason and skipped. The result is written as a new
generation and made live with one atomic rename, so an interrupted build changes nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import logging
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from companion.db.store import (
    CURRENT_FILE,
    Database,
    DatabaseError,
    commit_generation,
    read_current,
    write_generation,
)
from companion.score.load import READER_VERSION, SUPPORTED_SUFFIXES, file_sha256
from companion.score.model import BAR_DTYPE, NOTE_DTYPE

__all__ = ["BuildReport", "build_database", "collect_score_files"]

log = logging.getLogger(__name__)

#: ``on_progress(done, total, source)`` after each input file has been handled
ProgressFn = Callable[[int, int, str], None]
#: worker processes for parsing (the target machines have 2 cores)
MAX_WORKERS = 2


@dataclass
class BuildReport:
    """What a build did. Sources are absolute paths.

    Attributes
    ----------
    added, updated, unchanged : list of str
        Sources new to the database, re-parsed because their content changed, and kept as they were.
    failed : list of (str, str)
        ``(path, reason)`` for every input that could not be read (skipped; the build went on).
    generation : str or None
        The generation now live, or ``None`` when nothing was written (nothing changed, or no
        database could be made because no input was readable).
    n_pieces, n_notes : int
        Size of the database after the build.
    parse_s, index_s, write_s : float
        Time spent parsing scores, building the fingerprint index and writing (seconds).
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    generation: str | None = None
    n_pieces: int = 0
    n_notes: int = 0
    parse_s: float = 0.0
    index_s: float = 0.0
    write_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
            "generation": self.generation,
            "pieces": self.n_pieces,
            "notes": self.n_notes,
            "parse_s": round(self.parse_s, 3),
            "index_s": round(self.index_s, 3),
            "write_s": round(self.write_s, 3),
        }


def collect_score_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders (recursively, supported suffixes only, sorted) into absolute paths.

    Returns
    -------
    files : list of Path
        Unique absolute paths, in the order given (folder contents sorted).
    missing : list of (str, str)
        ``(path, reason)`` for inputs that do not exist.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    missing: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        try:
            p = p.resolve()
        except (OSError, RuntimeError) as exc:
            missing.append((str(raw), f"cannot resolve path ({exc})"))
            continue
        if p.is_dir():
            found = sorted(
                f.resolve() for f in p.rglob("*")
                if f.suffix.lower() in SUPPORTED_SUFFIXES and f.is_file() and not f.name.startswith(".")
            )
            if not found:
                log.warning("%s: no score files (%s) in this folder", p, " ".join(SUPPORTED_SUFFIXES))
        elif p.exists():
            found = [p]
        else:
            missing.append((str(p), "no such file or folder"))
            continue
        for f in found:
            if f not in seen:
                seen.add(f)
                files.append(f)
    return files, missing


def _parse_one(path: str) -> tuple[bool, Any]:
    """Worker: load one score. Returns ``(True, fields)`` or ``(False, reason)``; never raises."""
    from companion.score.load import load_score
    from companion.score.model import ScoreError

    try:
        piece = load_score(path)
    except ScoreError as exc:
        return False, str(exc).replace(f"{path}: ", "", 1)
    except Exception as exc:  # a parser bug must not stop the build; report it as this file's failure
        logging.getLogger(__name__).debug("parser error on %s", path, exc_info=True)
        return False, f"parser error: {type(exc).__name__}: {exc}"
    notes = np.ascontiguousarray(piece.notes, dtype=NOTE_DTYPE)
    bars = np.ascontiguousarray(piece.bars, dtype=BAR_DTYPE)
    return True, {"title": piece.meta.title, "composer": piece.meta.composer, "notes": notes, "bars": bars}


def _mp_context() -> multiprocessing.context.BaseContext:
    """``fork`` where this process runs one thread; ``forkserver`` where it runs more (the GUI builds
    the default database from a Qt process), since forking a threaded process can deadlock."""
    if threading.active_count() > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _parse_many(paths: list[str], on_result: Callable[[str, bool, Any], None]) -> None:
    """Parse ``paths`` in up to :data:`MAX_WORKERS` processes, calling ``on_result`` for each.

    A parser that crashes its process (a native library on garbage input) breaks the pool; the files
    not yet done are then parsed one per fresh process, so only the culprit is reported as failed.
    """
    if not paths:
        return
    done: set[str] = set()
    try:
        with cf.ProcessPoolExecutor(max_workers=min(MAX_WORKERS, len(paths)), mp_context=_mp_context()) as ex:
            futures = {ex.submit(_parse_one, p): p for p in paths}
            try:
                for fut in cf.as_completed(futures):
                    p = futures[fut]
                    ok, payload = fut.result()
                    done.add(p)
                    on_result(p, ok, payload)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    except BrokenProcessPool:
        log.warning("a score parser process crashed; parsing the remaining files one by one")
    for p in paths:
        if p in done:
            continue
        try:
            with cf.ProcessPoolExecutor(max_workers=1, mp_context=_mp_context()) as ex:
                ok, payload = ex.submit(_parse_one, p).result()
        except BrokenProcessPool:
            ok, payload = False, "the score parser crashed on this file (corrupt or unsupported)"
        on_result(p, ok, payload)


def _params_dict(fingerprint_params: Any) -> dict | None:
    if fingerprint_params is None:
        return None
    if isinstance(fingerprint_params, Mapping):
        return dict(fingerprint_params)
    return fingerprint_params.to_dict()


class _DirLock:
    """An exclusive ``flock`` on ``DIR/.lock`` so that two builds of one database never interleave."""

    def __init__(self, db_dir: Path) -> None:
        self.path = db_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "_DirLock":
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DatabaseError(f"{self.path.parent}: cannot lock the database for writing ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another build is running; waiting for it", self.path.parent)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def build_database(
    db_dir: str | os.PathLike,
    paths: Iterable[str | os.PathLike],
    *,
    on_progress: ProgressFn | None = None,
    fingerprint_params: Any = None,
) -> BuildReport:
    """Add score files and folders to the database in ``db_dir`` (created if needed).

    Parameters
    ----------
    db_dir : str or PathLike
        Database directory.
    paths : iterable of str or PathLike
        Score files and folders (searched recursively for supported suffixes).
    on_progress : callable, optional
        ``on_progress(done, total, source)`` after each input file.
    fingerprint_params : FingerprintParams or dict, optional
        Parameters for the fingerprint index. Default: those of the existing database, else
        ``FingerprintParams()``. Changing them rebuilds the index even when no score changed.

    Returns
    -------
    BuildReport

    Raises
    ------
    DatabaseError
        When the existing database cannot be read or the new generation cannot be written. The
        previous generation stays live in that case.
    """
    db_path = Path(db_dir).expanduser().resolve()
    created = not db_path.exists()
    try:
        db_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"{db_path}: cannot create the database folder ({exc})") from exc
    report = BuildReport()
    files, missing = collect_score_files(paths)
    report.failed.extend(missing)

    try:
        with _DirLock(db_path):
            return _build_locked(db_path, files, report, on_progress, fingerprint_params)
    finally:
        if created and read_current(db_path) is None:  # nothing written: leave no empty folder behind
            (db_path / ".lock").unlink(missing_ok=True)
            try:
                db_path.rmdir()
            except OSError:
                pass


def _build_locked(db_path: Path, files: list[Path], report: BuildReport, on_progress: ProgressFn | None,
                  fingerprint_params: Any) -> BuildReport:
    """The body of :func:`build_database`, run while holding the database's lock."""
    from companion.fingerprint.index import FingerprintIndex, FingerprintParams

    old_gen = read_current(db_path)
    old = Database._open_generation(db_path, old_gen) if old_gen else None
    old_by_source = {m.source: i for i, m in enumerate(old.metas)} if old else {}
    reread = old is not None and old.reader_version != READER_VERSION
    if reread:
        log.info("%s: the score reader changed (version %s -> %s); every score is read again", db_path,
                 old.reader_version, READER_VERSION)

    # parameters first: a bad value should fail before minutes of parsing
    new_params = _params_dict(fingerprint_params)
    if new_params is not None:
        try:
            new_params = FingerprintParams.from_dict(new_params).to_dict()  # validate and normalise
        except (ValueError, TypeError, KeyError) as exc:
            raise DatabaseError(f"invalid fingerprint parameters ({exc})") from exc
    old_params = old.fingerprint_params if old else None
    params_dict = new_params or old_params or FingerprintParams().to_dict()

    # what changed?
    to_parse: list[str] = []
    stats: dict[str, tuple[str, float, int]] = {}
    total, done = len(files), 0
    for f in files:
        src = str(f)
        try:
            st = f.stat()
            sha = file_sha256(f)
        except OSError as exc:
            report.failed.append((src, f"cannot read ({exc.strerror or exc})"))
            done += 1
            if on_progress:
                on_progress(done, total, src)
            continue
        stats[src] = (sha, st.st_mtime, st.st_size)
        pid = old_by_source.get(src)
        if pid is not None and old.metas[pid].sha256 == sha and not reread:
            report.unchanged.append(src)
            done += 1
            if on_progress:
                on_progress(done, total, src)
        else:
            to_parse.append(src)

    if reread:  # stored pieces that were not named this time are read again too, where their file is there
        for src in old_by_source:
            if src in stats:
                continue
            try:
                f = Path(src)
                st = f.stat()
                stats[src] = (file_sha256(f), st.st_mtime, st.st_size)
            except OSError:
                log.warning("%s: cannot be read again with the new score reader; its stored notes are kept", src)
                continue
            to_parse.append(src)
            total += 1

    # parse what is new or changed
    parsed: dict[str, dict] = {}

    def on_result(src: str, ok: bool, payload: Any) -> None:
        nonlocal done
        done += 1
        if ok:
            parsed[src] = payload
        elif src in old_by_source:
            report.failed.append((src, f"{payload} (kept the previously stored version)"))
        else:
            report.failed.append((src, payload))
        if on_progress:
            on_progress(done, total, src)

    t0 = time.perf_counter()
    _parse_many(to_parse, on_result)
    report.parse_s = time.perf_counter() - t0


    # assemble: old pieces keep their ids (changed ones replaced in place), new ones are appended
    rows: list[dict] = []
    piece_notes: list[np.ndarray] = []
    piece_bars: list[np.ndarray] = []

    def add(src: str, title: str, composer: str, notes: np.ndarray, bars: np.ndarray,
            sha: str, mtime: float, size: int) -> None:
        rows.append({"source": src, "title": title, "composer": composer, "sha256": sha,
                     "mtime": mtime, "size": size, "note_count": len(notes), "bar_count": len(bars)})
        piece_notes.append(notes)
        piece_bars.append(bars)

    if old is not None:
        for pid, meta in enumerate(old.metas):
            src = meta.source
            if src in parsed:
                p = parsed.pop(src)
                add(src, p["title"], p["composer"], p["notes"], p["bars"], *stats[src])
                report.updated.append(src)
            else:
                piece = old.piece(pid)
                mtime, size = old.file_stats[pid]
                add(src, meta.title, meta.composer, piece.notes, piece.bars, meta.sha256, mtime, size)
    for src in to_parse:  # input order
        if src in parsed:
            p = parsed.pop(src)
            add(src, p["title"], p["composer"], p["notes"], p["bars"], *stats[src])
            report.added.append(src)

    report.n_pieces = len(rows)
    report.n_notes = int(sum(r["note_count"] for r in rows))
    if not report.added and not report.updated and old is not None and params_dict == old_params and not reread:
        log.info("%s: nothing changed", db_path)
        return report
    if not rows:
        log.warning("%s: no score could be read; nothing written", db_path)
        return report

    t0 = time.perf_counter()
    try:
        params = FingerprintParams.from_dict(params_dict)
        index = FingerprintIndex.build([np.asarray(n) for n in piece_notes], params=params)
        index_arrays = index.arrays()
    except (ValueError, TypeError, MemoryError) as exc:
        raise DatabaseError(f"{db_path}: could not build the fingerprint index ({type(exc).__name__}: {exc}); "
                            f"the database is unchanged") from exc
    report.index_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    note_start = bar_start = 0
    for r in rows:
        r["note_start"], r["bar_start"] = note_start, bar_start
        note_start += r["note_count"]
        bar_start += r["bar_count"]
    notes_all = np.concatenate(piece_notes) if piece_notes else np.zeros(0, NOTE_DTYPE)
    bars_all = np.concatenate(piece_bars) if piece_bars else np.zeros(0, BAR_DTYPE)
    gen = _next_generation(db_path)
    gdir = db_path / gen
    try:
        write_generation(gdir, rows=rows, notes=notes_all, bars=bars_all,
                         index_arrays=index_arrays, fingerprint_params=params_dict,
                         reader_version=READER_VERSION)
        commit_generation(db_path, gen)
    except BaseException as exc:
        shutil.rmtree(gdir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DatabaseError(f"{db_path}: cannot write the database ({exc})") from exc
        raise
    report.write_s = time.perf_counter() - t0
    report.generation = gen
    _remove_old_generations(db_path, keep=gen)
    log.info("%s: %s, %d pieces, %d notes", db_path, gen, report.n_pieces, report.n_notes)
    return report


def _generation_numbers(db_path: Path) -> list[int]:
    out = []
    for d in db_path.iterdir():
        if d.name.startswith("gen-") and d.name[4:].isdigit():
            out.append(int(d.name[4:]))
    return out


def _next_generation(db_path: Path) -> str:
    return f"gen-{max(_generation_numbers(db_path), default=0) + 1}"


def _remove_old_generations(db_path: Path, *, keep: str) -> None:
    """Remove every generation folder but ``keep`` (older ones and leftovers of interrupted builds)."""
    for n in _generation_numbers(db_path):
        name = f"gen-{n}"
        if name != keep:
            shutil.rmtree(db_path / name, ignore_errors=True)
    (db_path / (CURRENT_FILE + ".tmp")).unlink(missing_ok=True)
