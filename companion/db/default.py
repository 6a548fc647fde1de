"""The default database: the solo keyboard pieces that music21's corpus ships (no download needed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from companion.db.store import Database, DatabaseError, read_current

__all__ = ["DEFAULT_WORKS", "default_score_paths", "default_db_dir", "ensure_default_db"]

log = logging.getLogger(__name__)

#: corpus-relative paths of music21's solo keyboard scores (music21 10.5). Clara Schumann's op. 17 is
#: a piano trio and Schoenberg's op. 19 ships only nos. 2 and 6, so they are listed one by one.
DEFAULT_WORKS = (
    "bach/bwv846.mxl",
    "mozart/k545/movement1_exposition.mxl",
    "joplin/maple_leaf_rag.mxl",
    "chopin/mazurka06-2.krn",
    "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
    "cpebach/h186.mxl",
)


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def default_score_paths() -> list[Path]:
    """Absolute paths of the default pieces that exist in the installed music21 corpus.

    Raises
    ------
    DatabaseError
        When music21's corpus is not installed or holds none of them.
    """
    try:
        root = _corpus_root()
    except ImportError as exc:
        raise DatabaseError(f"music21 is not installed, so the default scores are unavailable ({exc})") from exc
    paths = [root / w for w in DEFAULT_WORKS]
    found = [p for p in paths if p.is_file()]
    for p in paths:
        if not p.is_file():
            log.warning("default score %s is missing from this music21 corpus", p)
    if not found:
        raise DatabaseError(f"{root}: none of the default scores is in music21's corpus")
    return found


def default_db_dir() -> Path:
    """Where the default database lives: ``$COMPANION_DB`` if set, else the source checkout's
    ``scores_db/`` (next to the ``companion`` package), else ``~/.local/share/companion/scores_db``."""
    env = os.environ.get("COMPANION_DB")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2] / "scores_db"
    if repo.is_dir():
        return repo
    return Path("~/.local/share/companion/scores_db").expanduser()


def ensure_default_db(path: str | os.PathLike | None = None) -> Path:
    """Build the default database in ``path`` (default :func:`default_db_dir`) when it has none yet;
    return the database path.

    Raises
    ------
    DatabaseError
        When the database is missing and cannot be built.
    """
    from companion.db.build import build_database

    db_path = Path(path).expanduser().resolve() if path is not None else default_db_dir()
    if db_path.is_dir() and read_current(db_path) is not None:
        try:
            Database.open(db_path)
            return db_path
        except DatabaseError as exc:
            raise DatabaseError(f"{exc} (remove {db_path}/CURRENT and {db_path}/gen-* to rebuild the default)") from exc
    log.info("building the default score database in %s", db_path)
    report = build_database(db_path, default_score_paths())
    for src, reason in report.failed:
        log.warning("%s: %s", src, reason)
    if read_current(db_path) is None:
        raise DatabaseError(f"{db_path}: the default database could not be built")
    return db_path
