"""The identifier's view of a few pieces, with their own fingerprint index (built in memory).

``companion follow --piece`` uses it: the identifier then looks for the player's place in that piece
only, so a pianist may start at any bar of it and jump within it.

>>> sub = PieceSubset(Database.open("scores_db"), [3])   # doctest: +SKIP
>>> sub.metas[0] is sub.db.metas[3]                        # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from companion.score.model import Piece

__all__ = ["PieceList", "PieceSubset"]

log = logging.getLogger(__name__)


class PieceList:
    """The identifier's view (``.index``, ``.metas``, ``.piece(j)``) of pieces held in memory (a
    score opened from a file, not in a database).

    Parameters
    ----------
    pieces : sequence of Piece
    params : FingerprintParams, optional
        Of the index (default: the database default).
    """

    def __init__(self, pieces: Sequence[Piece], params: Any = None) -> None:
        from companion.fingerprint.index import FingerprintIndex

        self._pieces = list(pieces)
        if not self._pieces:
            raise ValueError("a piece list needs at least one piece")
        self.metas = [p.meta for p in self._pieces]
        self.index = FingerprintIndex.build([np.asarray(p.notes) for p in self._pieces], params=params)
        log.debug("index of %d piece(s) built", len(self._pieces))

    def __len__(self) -> int:
        return len(self._pieces)

    def piece(self, j: int) -> Piece:
        return self._pieces[j]


class PieceSubset(PieceList):
    """Some pieces of a database (:class:`companion.db.Database`, or anything with ``.piece(pid)``
    and ``.index.params``), indexed with the database's fingerprint parameters.

    Parameters
    ----------
    db
    pids : sequence of int
        The pieces kept; piece ``j`` of the subset is ``pids[j]`` of ``db`` (:attr:`source_ids`).
    """

    def __init__(self, db: Any, pids: Sequence[int]) -> None:
        self.db = db
        self.source_ids = [int(p) for p in pids]
        if not self.source_ids:
            raise ValueError("a piece subset needs at least one piece")
        # a Database's pieces are views of its memory-mapped arrays: holding them costs no copy
        super().__init__([db.piece(p) for p in self.source_ids], params=db.index.params)
