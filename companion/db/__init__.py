"""The score database: versioned on-disk format (SQLite + memory-mapped ``.npy``), incremental atomic builds.

>>> from companion.db import Database, build_database
>>> report = build_database("scores_db", ["path/to/scores"])   # doctest: +SKIP
>>> db = Database.open("scores_db")                             # doctest: +SKIP
"""

from companion.db.build import BuildReport, build_database, collect_score_files
from companion.db.store import FORMAT_VERSION, Database, DatabaseError

__all__ = ["Database", "DatabaseError", "BuildReport", "build_database", "collect_score_files", "FORMAT_VERSION"]
