"""Identify piece and bar from a few seconds of notes (symbolic fingerprinting, Arzt et al. 2012).

A query runs in three steps:

1. **Triplets.** The query notes are chord-capped and turned into triplet hashes exactly as the
   index was (:mod:`companion.fingerprint.hashing`), plus the neighbouring τ bin for triplets near a
   bin edge.
2. **Vote.** Query triplets are looked up rarest hash first, up to a budget of ``max_hits`` index
   entries. Each index hit gives a tempo ratio ``r = Δt12_score / Δt12_query``, a transposition
   ``T = p1_score - p1_query`` and the score position of the query's centre
   ``t1_score - r (t1_query - t_centre)``. Hits vote for cells (piece, position bin, T); a cell's score
   is its (idf-weighted) votes plus those of the neighbouring position bins (a diagonal vote that
   tolerates tempo error).
3. **Verify.** The best ``n_candidates`` cells are checked note by note near the query's centre
   (refining tempo and position); the best ``n_refine`` of them get the full check: a banded longest
   common subsequence of query and score notes of the same (transposed) pitch, monotone in time on
   both sides, so that rubato needs no model. The F-measure of the matched notes against the query's
   notes and the score's notes in the matched span is the confidence; for transcribed audio
   (:meth:`IdentifyParams.for_audio`) an F-beta that weighs the query's notes found in the score above
   the score's notes found in the query, because a transcriber misses a fifth to a third of the notes
   it hears but invents few.

Cells in the same piece whose positions differ by less than ``nms_s`` are one hypothesis. Where the
same notes occur at two places (a recapitulation), both come back with near-equal confidence. The
query is "not in the database" (``[]``) when no confidence reaches ``min_confidence +
confidence_slope / sqrt(n_notes)`` (calibrated on ASAP with pieces held out, see
``companion/bench/identify_bench.py``).

References
----------
A. Arzt, S. Böck and G. Widmer, "Fast identification of piece and score position via symbolic
fingerprinting", ISMIR 2012.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from companion.events import Match
from companion.fingerprint._kernels import vote
from companion.fingerprint._verify import pitch_runs, verify
from companion.fingerprint.hashing import extract_triplets

__all__ = ["IdentifyParams", "Identifier", "Candidate", "f_beta"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentifyParams:
    """Query-time parameters (they need no rebuild of the index).

    Parameters
    ----------
    max_query_s : float
        Only the notes of the last ``max_query_s`` seconds of a longer input are used (this bounds the
        query time; the answer is the position at the end).
    retry_recent_s : float
        A query longer than this that finds nothing is asked again with its last ``retry_recent_s``
        seconds (0: never). The vote looks at ``max_hits`` index entries, rarest triplets first; in a
        long, dense performance (a pedalled arpeggio étude) the rarest are mostly artefacts of spread
        chords, and the budget fills before the right piece is seen; the recent notes alone find it.
    tau_neighbour_margin : float
        Triplets whose τ lies within this fraction of a bin of a bin edge also look up the neighbour bin.
    bin_s : float
        Width of the position bins of the vote, score seconds.
    r_min, r_max : float
        Admissible tempo ratios (query speed / score speed).
    max_transposition : int
        Largest transposition considered, semitones.
    max_hits : int
        Budget of index entries looked at per query; query triplets are taken rarest hash first.
    n_candidates : int
        At most this many cells are verified note by note (a first, cheap pass).
    min_vote_ratio : float
        Only cells with at least this share of the best cell's (diagonal) votes are verified; on ASAP the
        right cell had at least 0.375 of the best's in 99 % of 5 s queries (clean and with 25 % errors).
    n_refine : int
        Candidates with most matches in the first pass that get the full check (fit, local correction).
    n_grid1 : int
        Tempo factors tried per candidate in the first pass (the first of 1.0, 0.9, 1.1, 0.8, 1.25, 0.7,
        1.4 times its voted ratio); the full check tries all seven. On the ASAP 5 s queries 3 ranked as
        well as 7 (same accuracy at 0.5 point, 2 seeds) at two thirds of the verification time.
    tol1_s : float
        Matching tolerance (query seconds) when refining a candidate's tempo near the query centre.
    band_s, band_slope : float
        A query note may pair with a score note within ``band_s + band_slope * |q - centre|`` query
        seconds of the candidate's line (the band of the longest-common-subsequence check).
    f_beta : float
        The confidence is the F-beta measure of the matched notes, ``(1 + β²) m / (β² n_score + n_query)``
        (``n_score``: the score's notes in the matched span): 1 weighs missing and extra notes alike;
        below 1 the query's notes found in the score (precision) count more than the score's notes
        found in the query (recall).
    min_confidence, confidence_slope : float
        A hypothesis is reported when its confidence reaches ``min_confidence + confidence_slope /
        sqrt(n_notes)`` (short queries match by chance more easily); none means "not in the
        database". Calibrated on ASAP with half of the performed pieces held out of the database
        (symbolic queries; for audio see :meth:`for_audio`).
    nms_s : float
        Hypotheses of the same piece closer than this (score seconds, at the query's end) are merged.
    key_prior : float
        Ranking only: a transposed hypothesis ranks below an untransposed one unless its confidence is
        higher by more than this (its reported confidence is unchanged, and so is rejection).
    transposed_margin : float
        A transposed hypothesis is reported only if its confidence reaches the threshold plus this
        (0: the same threshold). Searching 25 transpositions gives a piece that is not in the
        database 25 chances to match by accident; players rarely transpose.
    """

    max_query_s: float = 30.0
    retry_recent_s: float = 10.0
    tau_neighbour_margin: float = 0.2
    bin_s: float = 1.0
    r_min: float = 0.35
    r_max: float = 3.0
    max_transposition: int = 12
    max_hits: int = 100_000
    n_candidates: int = 200
    min_vote_ratio: float = 0.2
    n_refine: int = 24
    n_grid1: int = 3
    tol1_s: float = 0.3
    band_s: float = 1.0
    band_slope: float = 0.15
    f_beta: float = 1.0
    min_confidence: float = 0.45
    confidence_slope: float = 0.9
    nms_s: float = 2.0
    key_prior: float = 0.15
    transposed_margin: float = 0.0

    @classmethod
    def for_audio(cls, **changes: Any) -> "IdentifyParams":
        """Parameters for notes transcribed from audio.

        The transcriber finds 64-86 % of the played notes on rendered ASAP performances at a precision
        of 0.86-0.93 (bench/results/transcription.md), so a right hypothesis lacks many of its score's
        notes while the notes it has mostly match: the confidence is the F-measure with β = 0.5. The
        best match of a piece that is not in the database is mostly a transposed one (25 chances), so
        a transposed hypothesis needs 0.3 more confidence. With the threshold ``0.45 + 0.6 / sqrt(n)``
        this rejected as many unknown 2, 5 and 10 s queries as the symbolic parameters on the engine
        benchmark's development sets and found the right piece in 72 / 90 / 94 % (timgm6mb) and 50 /
        78 / 90 % (fluidr3mono) of them instead of 63 / 83 / 88 % and 38 / 63 / 72 %
        (``companion.bench.audio_confidence``; bench/results/engine.md, "Identification from audio:
        the confidence").
        """
        return replace(cls(f_beta=0.5, min_confidence=0.45, confidence_slope=0.6, transposed_margin=0.3),
                       **changes)


def f_beta(matched, n_query, n_score, beta: float):
    """The F-beta measure of ``matched`` notes against the query's and the score's notes in the matched
    span, ``(1 + β²) m / (β² n_score + n_query)`` (the identifier's confidence, :attr:`IdentifyParams.f_beta`)."""
    b2 = beta * beta
    return (1.0 + b2) * np.asarray(matched) / np.maximum(b2 * np.asarray(n_score) + np.asarray(n_query), 1)


@dataclass(frozen=True)
class Candidate:
    """A verified hypothesis before it is turned into a :class:`~companion.events.Match`."""

    piece: int
    confidence: float
    score_end_s: float  # score seconds (score tempo) at the query's last onset
    tempo_ratio: float
    transposition: int  # query pitch - score pitch
    votes: float  # weighted votes of the cell and its neighbours
    matched: int
    error_s: float  # mean absolute timing error of the matched notes, query seconds
    sure: bool = True  # passed the full threshold (see ``Identifier.candidates(slack=...)``)
    n_query: int = 0  # notes of the query that were checked
    n_score: int = 0  # score notes in the matched span (with ``matched`` and ``n_query``: any F-beta)


class Identifier:
    """Identify piece and position of a note sequence against a database.

    Parameters
    ----------
    db
        Anything with ``.index`` (a :class:`~companion.fingerprint.index.FingerprintIndex`), ``.metas``
        (list of :class:`~companion.score.model.PieceMeta`) and ``.piece(pid)`` (a
        :class:`~companion.score.model.Piece`), e.g. a :class:`companion.db.Database`.
    params : IdentifyParams, optional

    Notes
    -----
    A plain object without threads. It is deterministic: the same query gives the same answer.
    """

    def __init__(self, db: Any, *, params: IdentifyParams | None = None) -> None:
        self.db = db
        self.params = params or IdentifyParams()
        self.index = db.index
        ix = self.index
        ps = np.asarray(ix.piece_start)
        onsets = ix.note_onset_s
        last = np.zeros(ix.n_pieces)
        nonempty = ps[1:] > ps[:-1]
        last[nonempty] = np.asarray(onsets)[ps[1:][nonempty] - 1]
        n_bins = np.ceil(np.maximum(last, 0.0) / self.params.bin_s).astype(np.int64) + 3
        self._piece_bin_start = np.concatenate([[0], np.cumsum(n_bins)]).astype(np.int64)
        self._pieces: dict[int, Any] = {}
        # the notes again by (piece, pitch, onset): candidates look up same-pitch notes by binary search
        self._po, self._pitch_start, self._local = pitch_runs(ix.note_onset_s, ix.note_pitch, ps)

    def threshold(self, n_notes: int) -> float:
        """Confidence a hypothesis needs to be reported, for a query of ``n_notes`` notes (a transposed
        one needs ``transposed_margin`` more)."""
        return self.params.min_confidence + self.params.confidence_slope / np.sqrt(max(n_notes, 1))

    def reset(self) -> None:
        """Forget cached pieces (the identifier keeps no other state between queries)."""
        self._pieces.clear()

    def process(self, notes: np.ndarray) -> list[Match]:
        """Same as :meth:`identify` with the default ``top_k``."""
        return self.identify(notes)

    # -----------------------------------------------------------------------------------------------
    def candidates(self, notes: np.ndarray, *, slack: float = 0.0) -> list[Candidate]:
        """All verified hypotheses above :meth:`threshold` (minus ``slack``), best first, merged per
        position.

        A query longer than ``retry_recent_s`` that finds nothing is asked once more with only its last
        ``retry_recent_s`` seconds (see :class:`IdentifyParams`).

        Parameters
        ----------
        notes : np.ndarray
            Structured array with ``onset_s`` and ``pitch`` fields (e.g. ``PERF_NOTE_DTYPE``),
            shape ``(n_notes,)``.
        slack : float
            Lower the threshold by this much: the caller also wants hypotheses that are not sure
            enough on their own (e.g. to be confirmed by a later query); each
            :class:`Candidate` says whether it passed the full threshold (``sure``).
        """
        out = self._candidates(notes, self.params.max_query_s, slack)
        r = self.params.retry_recent_s
        if not any(c.sure for c in out) and r > 0 and len(notes):
            # nothing sure: ask the recent notes, as a call without slack would (its sure answers win)
            on = np.asarray(notes["onset_s"], dtype=np.float64)
            on = on[np.isfinite(on)]
            if len(on) and on.max() - on.min() > r:
                recent = self._candidates(notes, r, slack)
                if not out or any(c.sure for c in recent):
                    out = recent
        return out

    def check(self, notes: np.ndarray, piece: int, score_end_s: float, tempo_ratio: float,
              transposition: int = 0) -> Candidate | None:
        """Verify one given place, e.g. where a tracker is: ``piece`` at ``score_end_s`` score seconds at
        the last onset of ``notes``, at ``tempo_ratio`` (score seconds per query second) and
        ``transposition`` (query pitch - score pitch). The place and tempo are refined near the query's
        centre as a voted candidate's are (see :func:`~companion.fingerprint._verify.verify`), so the
        returned ``score_end_s`` may differ; ``sure`` and the confidence are as :meth:`candidates`
        gives them. None for fewer than 3 notes or a piece outside the index."""
        q = self._query(notes, self.params.max_query_s)
        if q is None or not 0 <= piece < self.index.n_pieces:
            return None
        onset, pitch = q
        order = np.lexsort((pitch, onset))
        qon, qpi = onset[order], pitch[order]
        tc = 0.5 * (qon[0] + qon[-1])
        [c] = self._verified(qon, qpi, tc, np.array([piece]), np.array([score_end_s - tempo_ratio * (qon[-1] - tc)]),
                             np.array([float(tempo_ratio)]), np.array([-int(transposition)]), 1, np.zeros(1), np.inf)
        return c

    def _query(self, notes: np.ndarray, max_query_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The valid notes of the last ``max_query_s`` seconds, by onset; None if fewer than 3."""
        if notes.dtype.names is None or "onset_s" not in notes.dtype.names or "pitch" not in notes.dtype.names:
            raise ValueError("notes must be a structured array with 'onset_s' and 'pitch' fields")
        onset = np.asarray(notes["onset_s"], dtype=np.float64)
        pitch = np.asarray(notes["pitch"], dtype=np.int64)
        ok = np.isfinite(onset) & (pitch >= 0) & (pitch <= 127)
        onset, pitch = onset[ok], pitch[ok]
        if len(onset) < 3 or self.index.n_entries == 0:
            return None
        order = np.argsort(onset, kind="stable")
        onset, pitch = onset[order], pitch[order]
        recent = onset >= onset[-1] - max_query_s  # the bar at the end is asked for: use the recent notes
        onset, pitch = onset[recent], pitch[recent]
        return (onset, pitch) if len(onset) >= 3 else None

    def _candidates(self, notes: np.ndarray, max_query_s: float, slack: float = 0.0) -> list[Candidate]:
        p = self.params
        ix = self.index
        fp = ix.params
        q = self._query(notes, max_query_s)
        if q is None:
            return []
        onset, pitch = q
        tr = extract_triplets(onset, pitch, neighbour_margin=p.tau_neighbour_margin, **fp.triplet_kwargs())
        if len(tr["hash"]) == 0:
            return []
        order = np.lexsort((pitch, onset))  # all notes are verified (the chord cap is for the triplets only)
        qon, qpi = onset[order], pitch[order]
        tc = 0.5 * (qon[0] + qon[-1])
        keys, count, smooth, logr, possum, _ = vote(
            tr["hash"].astype(np.int64), tr["t1"], tr["dt12"], tr["p1"].astype(np.int64), tc,
            ix.bucket_start, ix.piece, ix.t1, ix.dt12, ix.p1, self._piece_bin_start, p.bin_s,
            p.r_min, p.r_max, p.max_transposition, p.max_hits)
        if len(keys) == 0:
            return []
        n_t = 2 * p.max_transposition + 1
        n_c = min(p.n_candidates, len(keys))
        top = np.argpartition(-smooth, n_c - 1)[:n_c] if n_c < len(keys) else np.arange(len(keys))
        top = top[smooth[top] >= p.min_vote_ratio * smooth[top].max()]
        top = top[np.lexsort((keys[top], -smooth[top]))]  # deterministic order
        cand_keys = keys[top]
        gbin = cand_keys // n_t
        t_sq = (cand_keys % n_t) - p.max_transposition  # score pitch - query pitch
        pids = np.searchsorted(self._piece_bin_start, gbin, side="right") - 1
        r0 = np.exp(logr[top] / count[top])
        pos_c = possum[top] / count[top]
        out = self._verified(qon, qpi, tc, pids, pos_c, r0, t_sq, p.n_refine, smooth[top], slack)
        # best first, where a transposed candidate ranks as if ``key_prior`` less confident (players mostly
        # play in the notated key, and sequences recur transposed note for note); then the smaller
        # transposition, the more precise timing, more votes
        out.sort(key=lambda c: (-round(c.confidence - p.key_prior * (c.transposition != 0), 6),
                                abs(c.transposition), c.error_s, -c.votes, c.piece, c.score_end_s))
        merged: list[Candidate] = []
        for c in out:
            if any(c.piece == m.piece and abs(c.score_end_s - m.score_end_s) < p.nms_s for m in merged):
                continue
            merged.append(c)
        return merged

    def _verified(self, qon: np.ndarray, qpi: np.ndarray, tc: float, pids: np.ndarray, pos_c: np.ndarray,
                  r0: np.ndarray, t_sq: np.ndarray, n_refine: int, votes: np.ndarray,
                  slack: float) -> list[Candidate]:
        """Check cells note by note (:func:`~companion.fingerprint._verify.verify`: piece, score position of
        the query centre ``tc``, tempo ratio, score - query pitch) and keep those whose confidence
        reaches the threshold minus ``slack``, in the order given."""
        p = self.params
        ix = self.index
        f, end_s, ratio, matched, err, n_score = verify(
            qon, qpi, ix.note_onset_s, ix.piece_start, self._po, self._pitch_start, self._local,
            pids.astype(np.int64), pos_c, r0, t_sq.astype(np.int64), tc, p.tol1_s, p.band_s, p.band_slope,
            p.r_min, p.r_max, n_refine, ix.params.chord_tolerance_s, p.n_grid1)
        f = np.where(f > 0, f_beta(matched, len(qon), n_score, p.f_beta), 0.0)  # (β = 1: ``f`` itself)
        thr = self.threshold(len(qon)) + p.transposed_margin * (t_sq != 0)
        return [Candidate(piece=int(pids[k]), confidence=float(f[k]), score_end_s=float(end_s[k]),
                          tempo_ratio=float(ratio[k]), transposition=-int(t_sq[k]), votes=float(votes[k]),
                          matched=int(matched[k]), error_s=float(err[k]), sure=bool(f[k] >= thr[k]),
                          n_query=len(qon), n_score=int(n_score[k]))
                for k in np.flatnonzero(f >= thr - slack)]

    def identify(self, notes: np.ndarray, *, top_k: int = 5) -> list[Match]:
        """Identify piece and bar at the end of ``notes``.

        Parameters
        ----------
        notes : np.ndarray
            ``PERF_NOTE_DTYPE`` array (``onset_s``, ``pitch``; sorted or not), shape ``(n_notes,)``.
        top_k : int
            At most this many matches.

        Returns
        -------
        list of Match
            Best first; ``[]`` means "not in the database". ``transposition`` is query pitch minus score
            pitch; ``tempo_ratio`` is query speed / score speed; ``measure`` is the bar number at the
            query's last onset and ``score_quarters`` that position along the unfolded score.
        """
        matches: list[Match] = []
        seen: set[tuple[int, str]] = set()
        for c in self.candidates(notes):
            piece = self._piece(c.piece)
            q = float(piece.seconds_to_quarters(c.score_end_s))
            measure, offset = piece.measure_at(q)
            if (c.piece, measure) in seen:
                continue
            seen.add((c.piece, measure))
            meta = self.db.metas[c.piece]
            matches.append(Match(source=meta.source, title=meta.title, composer=meta.composer,
                                 measure=measure, measure_offset=max(offset, 0.0),
                                 confidence=min(max(c.confidence, 0.0), 1.0), tempo_ratio=c.tempo_ratio,
                                 transposition=c.transposition, score_quarters=q))
            if len(matches) >= top_k:
                break
        return matches

    def _piece(self, pid: int):
        pc = self._pieces.get(pid)
        if pc is None:
            pc = self.db.piece(pid)
            if len(self._pieces) > 64:
                self._pieces.clear()
            self._pieces[pid] = pc
        return pc
