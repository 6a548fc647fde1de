"""The on-disk score database: layout, atomic generations, and the read side (:class:`Database`).

Layout of a database directory ``DIR``::

    DIR/CURRENT              one line, the name of the live generation ("gen-7")
    DIR/.lock                taken (flock) by a build while it writes
    DIR/gen-7/meta.sqlite    format version, fingerprint parameters (JSON), one row per piece
    DIR/gen-7/notes.npy      all pieces' notes concatenated (NOTE_DTYPE), piece ``i`` at
                             ``[note_start, note_start + note_count)``
    DIR/gen-7/bars.npy       all pieces' bars concatenated (BAR_DTYPE), likewise
    DIR/gen-7/index/*.npy    the fingerprint index, one file per array of ``FingerprintIndex.arrays()``

A build writes a complete new generation folder, fsyncs it, then atomically replaces ``CURRENT``
(``os.replace``); only then are older generations removed. A crash or Ctrl-C at any point leaves
``CURRENT`` naming a complete generation (or no ``CURRENT`` at all for a database that never finished
its first build). Readers read ``CURRENT`` once, at :meth:`Database.open`, and memory-map the arrays,
so a reader keeps a consistent view even while a build replaces the generation (on POSIX an unlinked
file stays readable while it is mapped). Nothing is pickled: ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from companion.score.model import BAR_DTYPE, NOTE_DTYPE, Piece, PieceMeta

if TYPE_CHECKING:  # pragma: no cover
    from companion.fingerprint.index import FingerprintIndex

__all__ = ["FORMAT_VERSION", "DatabaseError", "Database", "CURRENT_FILE", "read_current"]

log = logging.getLogger(__name__)

#: bump when the layout or a dtype changes; :meth:`Database.open` refuses other versions
FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
META_FILE = "meta.sqlite"
NOTES_FILE = "notes.npy"
BARS_FILE = "bars.npy"
INDEX_DIR = "index"

SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pieces (
    id INTEGER PRIMARY KEY,          -- piece id = position in Database.metas
    source TEXT NOT NULL UNIQUE,     -- absolute path of the score file
    title TEXT NOT NULL,
    composer TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    mtime REAL NOT NULL,
    size INTEGER NOT NULL,
    note_start INTEGER NOT NULL,
    note_count INTEGER NOT NULL,
    bar_start INTEGER NOT NULL,
    bar_count INTEGER NOT NULL
);
"""


class DatabaseError(Exception):
    """A database that is missing, corrupt, of another format version, or could not be written."""


def read_current(db_dir: Path) -> str | None:
    """Name of the live generation in ``db_dir``, or ``None`` where there is none yet."""
    try:
        name = (db_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(f"{db_dir}: cannot read {CURRENT_FILE} ({exc})") from exc
    if not name.startswith("gen-") or "/" in name or not (db_dir / name).is_dir():
        raise DatabaseError(f"{db_dir}: {CURRENT_FILE} names {name!r}, which is not a generation folder")
    return name


def _load_array(path: Path, dtype: np.dtype | None, *, mmap: bool = True) -> np.ndarray:
    """``np.load`` without pickle, memory-mapped where the array is not empty."""
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # a zero-length array cannot be memory-mapped; anything else is a damaged file
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise DatabaseError(f"{path}: not a valid array file ({exc})") from exc
        if arr.size:
            raise DatabaseError(f"{path}: cannot be memory-mapped ({exc})") from exc
    if dtype is not None and arr.dtype != dtype:
        raise DatabaseError(f"{path}: dtype {arr.dtype} does not match this version's {dtype}")
    return arr


class Database:
    """A read-only view of one generation of a score database.

    Use :meth:`open`. Piece ``pid`` is ``metas[pid]``; its arrays are slices of the memory-mapped
    concatenated arrays, so opening a large database is cheap.

    Attributes
    ----------
    path : Path
        The database directory.
    generation : str
        The generation folder this view reads (``"gen-<n>"``).
    metas : list of PieceMeta
        One per piece; the piece id is the position in this list.
    fingerprint_params : dict
        The fingerprint parameters the index was built with (``FingerprintParams.to_dict()``).
    reader_version : str
        :data:`companion.score.load.READER_VERSION` of the score reader that parsed the stored pieces
        (``"1"`` for databases written before it was recorded); a build re-reads every score when it
        differs from the running reader's.
    notes : np.ndarray [shape=(n_notes,), dtype=NOTE_DTYPE]
        All pieces' notes, concatenated in piece order (memory-mapped).
    bars : np.ndarray [shape=(n_bars,), dtype=BAR_DTYPE]
        All pieces' bars, concatenated in piece order (memory-mapped).
    note_offsets, bar_offsets : np.ndarray [shape=(n_pieces + 1,), dtype=int64]
        Piece ``i`` holds ``notes[note_offsets[i]:note_offsets[i + 1]]`` (likewise bars).
    file_stats : list of (float, int)
        ``(mtime, size)`` of each score file when it was stored.
    """

    def __init__(
        self,
        *,
        path: Path,
        generation: str,
        metas: list[PieceMeta],
        fingerprint_params: dict,
        notes: np.ndarray,
        bars: np.ndarray,
        note_offsets: np.ndarray,
        bar_offsets: np.ndarray,
        file_stats: list[tuple[float, int]] | None = None,
        reader_version: str = "1",
    ) -> None:
        self.path = path
        self.reader_version = reader_version
        self.generation = generation
        self.metas = metas
        self.fingerprint_params = fingerprint_params
        self.notes = notes
        self.bars = bars
        self.note_offsets = note_offsets
        self.bar_offsets = bar_offsets
        self.file_stats = file_stats or [(0.0, 0)] * len(metas)
        self._index: FingerprintIndex | None = None
        self._by_source = {m.source: i for i, m in enumerate(metas)}

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "Database":
        """Open the live generation of the database in directory ``path``.

        Raises
        ------
        DatabaseError
            When there is no database there, it is corrupt, or it has another format version.
        """
        db_dir = Path(path).expanduser().resolve()
        if not db_dir.is_dir():
            raise DatabaseError(f"{db_dir}: no database here (build one with `companion db build --db {path} ...`)")
        gen = read_current(db_dir)
        if gen is None:
            raise DatabaseError(
                f"{db_dir}: no database here, or its first build did not finish "
                f"(build one with `companion db build --db {path} ...`)"
            )
        try:
            db = cls._open_generation(db_dir, gen)
        except DatabaseError:
            # a build may have replaced CURRENT and removed this generation while we read it
            newer = read_current(db_dir)
            if newer is None or newer == gen:
                raise
            db = cls._open_generation(db_dir, newer)
        from companion.score.load import READER_VERSION

        if db.reader_version != READER_VERSION:
            log.warning("%s: its scores were read by an older score reader (version %s, now %s); "
                        "`companion db build --db %s` reads them again", db_dir, db.reader_version,
                        READER_VERSION, path)
        return db

    @classmethod
    def _open_generation(cls, db_dir: Path, gen: str) -> "Database":
        gdir = db_dir / gen
        meta_path = gdir / META_FILE
        if not meta_path.is_file():
            raise DatabaseError(f"{gdir}: {META_FILE} is missing")
        try:
            con = sqlite3.connect(f"file:{meta_path}?mode=ro", uri=True)
            try:
                info = dict(con.execute("SELECT key, value FROM info").fetchall())
                rows = con.execute(
                    "SELECT id, source, title, composer, sha256, mtime, size, note_start, note_count, "
                    "bar_start, bar_count FROM pieces ORDER BY id"
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise DatabaseError(f"{meta_path}: not a valid database ({exc})") from exc
        version = info.get("format_version")
        if version != str(FORMAT_VERSION):
            raise DatabaseError(
                f"{db_dir}: database format version {version} is not supported (this companion reads "
                f"version {FORMAT_VERSION}); rebuild it with `companion db build`"
            )
        try:
            params = json.loads(info.get("fingerprint_params", "{}"))
        except json.JSONDecodeError as exc:
            raise DatabaseError(f"{meta_path}: fingerprint parameters are not valid JSON ({exc})") from exc
        notes = _load_array(gdir / NOTES_FILE, NOTE_DTYPE)
        bars = _load_array(gdir / BARS_FILE, BAR_DTYPE)
        metas, stats = [], []
        note_offsets = np.zeros(len(rows) + 1, np.int64)
        bar_offsets = np.zeros(len(rows) + 1, np.int64)
        for i, (pid, source, title, composer, sha, mtime, size, ns, nc, bs, bc) in enumerate(rows):
            if pid != i or ns != note_offsets[i] or bs != bar_offsets[i]:
                raise DatabaseError(f"{meta_path}: piece table is inconsistent at id {pid}")
            metas.append(PieceMeta(source=source, title=title, composer=composer, sha256=sha))
            stats.append((float(mtime), int(size)))
            note_offsets[i + 1] = ns + nc
            bar_offsets[i + 1] = bs + bc
        if note_offsets[-1] != len(notes) or bar_offsets[-1] != len(bars):
            raise DatabaseError(
                f"{gdir}: arrays do not match the piece table ({len(notes)} notes / {len(bars)} bars stored, "
                f"{note_offsets[-1]} / {bar_offsets[-1]} expected)"
            )
        return cls(
            path=db_dir,
            generation=gen,
            metas=metas,
            fingerprint_params=params,
            notes=notes,
            bars=bars,
            note_offsets=note_offsets,
            bar_offsets=bar_offsets,
            file_stats=stats,
            reader_version=info.get("reader_version", "1"),
        )

    # -- pieces -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.metas)

    @property
    def n_notes(self) -> int:
        return int(len(self.notes))

    def piece_notes(self, pid: int) -> np.ndarray:
        """Notes of piece ``pid`` (a memory-mapped slice, read-only), NOTE_DTYPE."""
        self._check_pid(pid)
        return self.notes[self.note_offsets[pid]:self.note_offsets[pid + 1]]

    def piece(self, pid: int) -> Piece:
        """Piece ``pid`` with its notes and bars as read-only slices of the stored arrays."""
        self._check_pid(pid)
        return Piece(
            meta=self.metas[pid],
            notes=self.notes[self.note_offsets[pid]:self.note_offsets[pid + 1]],
            bars=self.bars[self.bar_offsets[pid]:self.bar_offsets[pid + 1]],
        )

    def _check_pid(self, pid: int) -> None:
        if not 0 <= int(pid) < len(self.metas):
            raise IndexError(f"piece id {pid} out of range (the database holds {len(self.metas)} pieces)")

    def find(self, query: str) -> int:
        """Piece id for ``query``: an exact source path (also relative to the working directory),
        else a unique case-insensitive substring of a source or title.

        Raises
        ------
        KeyError
            With a readable message when nothing or more than one piece matches.
        """
        q = str(query)
        if q in self._by_source:
            return self._by_source[q]
        try:
            resolved = str(Path(q).expanduser().resolve())
        except (OSError, RuntimeError):
            resolved = q
        if resolved in self._by_source:
            return self._by_source[resolved]
        ql = q.lower()
        hits = [i for i, m in enumerate(self.metas) if ql in m.source.lower() or ql in m.title.lower()]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise KeyError(f"no piece in {self.path} matches {q!r} ({len(self.metas)} pieces; try `companion db list`)")
        names = "; ".join(self.metas[i].source for i in hits[:5]) + ("; ..." if len(hits) > 5 else "")
        raise KeyError(f"{q!r} matches {len(hits)} pieces in {self.path}: {names}")

    # -- fingerprint index --------------------------------------------------------------------------
    def index_arrays(self) -> dict[str, np.ndarray]:
        """The stored fingerprint index arrays (memory-mapped), by name."""
        idir = self.path / self.generation / INDEX_DIR
        if not idir.is_dir():
            raise DatabaseError(f"{idir}: the fingerprint index is missing")
        return {f.stem: _load_array(f, None) for f in sorted(idir.glob("*.npy"))}

    @property
    def index(self) -> "FingerprintIndex":
        """The fingerprint index, loaded on first use from its memory-mapped arrays."""
        if self._index is None:
            from companion.fingerprint.index import FingerprintIndex, FingerprintParams

            params = FingerprintParams.from_dict(self.fingerprint_params)
            self._index = FingerprintIndex.from_arrays(self.index_arrays(), params)
        return self._index

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, {self.generation}, {len(self.metas)} pieces, {self.n_notes} notes)"


def write_generation(
    gdir: Path,
    *,
    rows: list[dict],
    notes: np.ndarray,
    bars: np.ndarray,
    index_arrays: Mapping[str, np.ndarray],
    fingerprint_params: dict,
    reader_version: str = "1",
) -> None:
    """Write one complete generation into the new, empty folder ``gdir`` and fsync it.

    ``rows`` hold ``source, title, composer, sha256, mtime, size, note_start, note_count, bar_start,
    bar_count`` per piece, in piece-id order.
    """
    gdir.mkdir(parents=True, exist_ok=False)
    _save_npy(gdir / NOTES_FILE, np.ascontiguousarray(notes, dtype=NOTE_DTYPE))
    _save_npy(gdir / BARS_FILE, np.ascontiguousarray(bars, dtype=BAR_DTYPE))
    idir = gdir / INDEX_DIR
    idir.mkdir()
    for name, arr in index_arrays.items():
        if not name.isidentifier():
            raise DatabaseError(f"fingerprint index array name {name!r} is not a plain identifier")
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            raise DatabaseError(f"fingerprint index array {name!r} has object dtype; it cannot be stored without pickle")
        _save_npy(idir / f"{name}.npy", np.ascontiguousarray(arr))
    _fsync_dir(idir)
    meta_path = gdir / META_FILE
    con = sqlite3.connect(meta_path)
    try:
        con.executescript(SCHEMA)
        con.executemany(
            "INSERT INTO info (key, value) VALUES (?, ?)",
            [("format_version", str(FORMAT_VERSION)), ("fingerprint_params", json.dumps(fingerprint_params, sort_keys=True)),
             ("reader_version", str(reader_version))],
        )
        con.executemany(
            "INSERT INTO pieces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, r["source"], r["title"], r["composer"], r["sha256"], r["mtime"], r["size"],
                 r["note_start"], r["note_count"], r["bar_start"], r["bar_count"])
                for i, r in enumerate(rows)
            ],
        )
        con.commit()
    finally:
        con.close()
    _fsync_file(meta_path)
    _fsync_dir(gdir)


def commit_generation(db_dir: Path, gen: str) -> None:
    """Make ``gen`` the live generation: write ``CURRENT.tmp``, fsync, ``os.replace`` it, fsync the dir."""
    tmp = db_dir / (CURRENT_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(gen + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, db_dir / CURRENT_FILE)
    _fsync_dir(db_dir)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
