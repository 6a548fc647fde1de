"""The :class:`Engine`: identify, follow, re-identify (the package docstring, :mod:`companion.engine`,
describes the arbitration)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from companion.engine.midi import NoteFollower
from companion.engine.model import Analysis, Hypothesis, NoteBlock, score_axis
from companion.engine.params import EngineParams
from companion.events import PERF_NOTE_DTYPE, NoteEvent, perf_notes
from companion.tracking.follower import ScorePosition

__all__ = ["Engine", "SAMPLE_RATE", "FPS", "SEARCHING", "TRACKING", "LOST"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
FPS = 100.0
SEARCHING, TRACKING, LOST = "searching", "tracking", "lost"


@dataclass
class _Stats:
    queries: int = 0
    seeds: int = 0
    reseeds: int = 0
    losses: int = 0
    events: list = field(default_factory=list)  # (t, what, piece, score_s)



class Engine:
    """Identify, follow, re-identify: audio (or MIDI) blocks in, score positions out.

    Parameters
    ----------
    db
        A :class:`companion.db.Database` (anything with ``.index``, ``.metas``, ``.piece(pid)``).
    params : EngineParams, optional
    identifier : Identifier, optional
        Default: ``Identifier(db)``; for audio input over the whole database with
        :meth:`IdentifyParams.for_audio <companion.fingerprint.identify.IdentifyParams.for_audio>`
        (an F-beta confidence and a stricter test of transposed hypotheses, made to tell pieces in the
        database from pieces that are not). Piece mode keeps the symbolic parameters: there only the
        place is asked, and on the tracking benchmark's sets (``follow_bench --piece-mode``) the audio
        parameters re-seeded early at recurring passages: notes in the right bar / within 250 ms 94.5 /
        87.9 -> 95.3 / 88.9 % on the tuning set but 91.5 / 83.6 -> 89.9 / 71.8 % on the held-out set.
    transcriber : Transcriber, optional
        Default: ``Transcriber()``; not built for ``midi=True``.
    tracker_params : TrackerParams, optional
        For the :class:`~companion.tracking.follower.Follower`.
    midi : bool
        Input is notes (:class:`NoteBlock`), not audio.
    piece : int, optional
        Follow this piece of ``db`` only (``companion follow --piece``): the identifier looks for the
        player's place in it alone (:class:`~companion.db.subset.PieceSubset`; piece ids in positions
        and events are then the subset's, 0), and tracking starts at once from its first note: for
        audio with the :class:`~companion.tracking.follower.Follower`'s start-tempo candidates, for
        MIDI with the position waiting at the first note until a played note matches. The
        identifier keeps checking. Until a query has confirmed the tracker (the player may have
        started elsewhere), and whenever the tracker doubts itself (its "lost": a wrong start tempo,
        a held chord it ran through), a query elsewhere re-seeds it as a search seeds
        (:meth:`_search`: a clear hypothesis, or two agreeing queries), at the nearest of the
        hypotheses as good as the best; a confirmed tracker is re-seeded as with the whole database
        (two consistent disagreeing queries: a jump). The engine never gives up in piece mode: the
        tracker's guess stays on show, labelled "lost" when the whole-database engine would have
        given it up (:meth:`_doubt_expired`). The bar shown is the tracker's own
        (:attr:`~companion.tracking.oltw.TrackerParams.snap_display`). The variants measured
        (trusting a confirmed tracker until it doubts; the engine's display; labelling every doubt
        "lost") are in bench/results/tracking.md.

    Notes
    -----
    Deterministic: the same block sequence gives the same positions. No threads, no wall clock.
    """

    def __init__(self, db: Any, *, params: EngineParams | None = None, identifier: Any = None,
                 transcriber: Any = None, tracker_params: Any = None, midi: bool = False,
                 piece: int | None = None) -> None:
        if piece is not None:
            if identifier is not None:
                raise ValueError("give either an identifier or a piece to follow, not both")
            if not (piece == 0 and len(db.metas) == 1):  # (a one-piece view, e.g. a PieceList, already is)
                from companion.db.subset import PieceSubset

                db = PieceSubset(db, [piece])
        self.in_piece = piece is not None
        self.db = db
        self.params = params or EngineParams()
        if identifier is None:
            from companion.fingerprint.identify import Identifier, IdentifyParams

            identifier = Identifier(db, params=None if midi or piece is not None else IdentifyParams.for_audio())
        self.identifier = identifier
        self.midi = bool(midi)
        if transcriber is None and not self.midi:
            from companion.transcription.transcriber import Transcriber

            transcriber = Transcriber()
        self.transcriber = transcriber
        self.tracker_params = tracker_params
        self._pieces: dict[int, Any] = {}
        self._axes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._midi = NoteFollower(self.piece, self.params)
        self.reset()

    # ------------------------------------------------------------------------------------- control
    def reset(self) -> None:
        """Forget the input: the next block starts a new stream, searching."""
        if self.transcriber is not None:
            self.transcriber.reset()
        self._follower = None
        self._follower_piece: int | None = None
        self._notes = np.zeros(0, PERF_NOTE_DTYPE)
        self._t = 0.0
        self._frames = 0  # spectrogram frames seen
        self._next_query_s = 0.0
        self._notes_at_query = 0
        self._n_notes = 0
        self.state = SEARCHING
        self._current: Hypothesis | None = None  # MIDI: the position source; audio: the last seed
        self._rivals: list[Hypothesis] = []  # places as good as the last seed's, not yet told apart
        self._waiting = False  # MIDI, piece mode: no note played yet (the position does not move)
        self._pending: list[Hypothesis] = []  # searching: the last query's hypotheses, to confirm
        self._disagree: list[Hypothesis] = []  # tracking: the last query's disagreeing hypotheses
        self._n_disagree = 0
        self._last_hyps: list[Hypothesis] = []
        self._query_notes: np.ndarray | None = None
        self._last_agree_t = 0.0
        self._doubt_since: float | None = None  # the tracker said "lost" at this time (still showing it)
        self._confirmed = False  # a query agreed with the tracker since its last seed
        self._last: ScorePosition | None = None
        self.stats = _Stats()
        if self.in_piece and (not self.midi or self.params.midi_start):
            self._start_at_beginning()

    def _start_at_beginning(self) -> None:
        """Piece mode: track from the first note at once, with the start-tempo candidates (unconfirmed
        until a query agrees with it)."""
        if self.midi:
            onsets = self._midi.onsets(0)[0]
            first = float(onsets[0]) if len(onsets) else 0.0
            self._current = Hypothesis(0, first - self.params.midi_chord_s, 1.0, 0.0, 0.0)
            self._waiting = True  # the position stays before the first note until a note matches
        else:
            from companion.tracking.follower import Follower

            self._follower = Follower(self.piece(0), tracker_params=self.tracker_params)
            self._current = Hypothesis(0, self._to_s(0, self._follower.start_quarters), 1.0, 0.0, 0.0)
        self._follower_piece = 0
        self.state = TRACKING

    @property
    def t(self) -> float:
        """Input consumed, seconds."""
        return self._t

    def piece(self, pid: int):
        pc = self._pieces.get(pid)
        if pc is None:
            pc = self.db.piece(pid)
            if len(self._pieces) > 16:
                self._pieces.clear()
                self._axes.clear()
                self._midi.clear()
            self._pieces[pid] = pc
        return pc

    def _axis(self, pid: int) -> tuple[np.ndarray, np.ndarray]:
        ax = self._axes.get(pid)
        if ax is None:
            ax = self._axes[pid] = score_axis(self.piece(pid))
        return ax

    def _to_q(self, pid: int, score_s: float) -> float:
        s, q = self._axis(pid)
        return float(np.interp(score_s, s, q))

    def _to_s(self, pid: int, quarters: float) -> float:
        s, q = self._axis(pid)
        return float(np.interp(quarters, q, s))

    # ------------------------------------------------------------------------------------- analysis
    def analyse(self, block: Any) -> Analysis:
        """Stage 1: features and notes of a block.

        Parameters
        ----------
        block : np.ndarray [shape=(n_samples,)], AudioBlock or NoteBlock
            Mono float32 audio at 44.1 kHz (any length), or notes for ``midi=True``.
        """
        if isinstance(block, NoteBlock):
            notes = perf_notes(block.notes)
            return Analysis(float(block.end_s), None, 0, notes)
        if self.transcriber is None:
            raise ValueError("this engine takes MIDI notes (NoteBlock), not audio")
        return self._analysis(self.transcriber.process(block), final=False)

    def analyse_flush(self) -> Analysis:
        """Stage 1 at the end of a finite stream: the last frames and notes."""
        if self.transcriber is None:
            return Analysis(self._t, None, 0, np.zeros(0, PERF_NOTE_DTYPE), final=True)
        return self._analysis(self.transcriber.flush(), final=True)

    def _analysis(self, events: list[NoteEvent], *, final: bool) -> Analysis:
        """What the transcriber's last call gives: its notes, spectrogram frames and activations."""
        tr = self.transcriber
        fb = tr.last_features
        return Analysis(tr.n_samples / SAMPLE_RATE, fb.spec, fb.first_frame, _to_notes(events), final,
                        tr.last_activations, tr.last_activations_first)

    # ----------------------------------------------------------------------------------- arbitration
    def process(self, block: Any) -> list[ScorePosition]:
        """Analyse and decide one block; returns ``[position at the block's end]``."""
        return self.decide(self.analyse(block))

    def flush(self) -> list[ScorePosition]:
        """End of a finite stream."""
        return self.decide(self.analyse_flush())

    def decide(self, a: Analysis) -> list[ScorePosition]:
        """Stage 2: track, identify when due, arbitrate. Returns one position (at ``a.end_s``)."""
        self._t = max(self._t, float(a.end_s))
        if len(a.notes):
            self._notes = np.concatenate([self._notes, a.notes])
            self._n_notes += len(a.notes)
            kept_s = max(self.params.horizon_s, self.params.sparse_horizon_s) + 1.0
            keep = self._notes["onset_s"] >= self._t - kept_s
            self._notes = self._notes[keep]
        track = None
        seeded = None
        if a.spec is not None and len(a.spec):
            self._frames = a.first_frame + len(a.spec)
            if self._follower is not None:
                track = self._follower.process_spec(a.spec, a.activations, first_frame=a.first_frame,
                                                    activations_first=a.activations_first)
        if track is not None and len(track) and self.state == TRACKING:
            # (a re-seed here may change the piece: ``track`` is then the old piece's and not shown)
            seeded = self._tracker_state(int(track.state[-1]))
        if self.midi and self.state == TRACKING and self._t - self._last_agree_t > self.params.midi_lost_s \
                and self._sounding():
            self.state = LOST
            self.stats.losses += 1
        if self.midi and self.state == TRACKING and len(a.notes):
            self._current, self._waiting = self._midi.follow(self._current, a.notes, self._waiting)
        if (self._t >= self._next_query_s or a.final) and self._query_due():
            self._next_query_s = self._t + self.params.identify_every_s
            seeded = self._arbitrate() or seeded
        pos = self._position(track, seeded)
        self._last = pos
        return [pos]

    def _tracker_state(self, state: int) -> Hypothesis | None:
        """The tracker's own verdict after a block: "lost" (2) starts a doubt; the engine keeps showing
        its position until the identifier answers (agrees: the doubt ends; disagrees: re-seed) or,
        without any answer, for ``lost_grace_s`` (then "lost"). Returns the hypothesis it re-seeded
        at, if any."""
        p = self.params
        if state != 2:
            self._doubt_since = None
            return None
        if self._doubt_since is None:
            self._doubt_since = self._t
            self.stats.losses += 1
            self.stats.events.append((self._t, "lost", self._follower_piece, None))
            log.info("%.2f s: tracker lost", self._t)
            fresh = [h for h in self._last_hyps if h.confidence >= p.confirm_confidence
                     and self._t - h.t <= p.identify_every_s + 0.5]
            if fresh:  # the identifier has a recent answer: follow it on at once, unless it agrees
                now = self._now_s()
                support = self._supporting(fresh, now)
                best = self._preferred(fresh, support)
                if not support or best is not support[0]:
                    h = self._nearest(fresh, now)
                    self._seed(h, now, "reseed")
                    return h
                self._last_agree_t = self._t
        if self.in_piece:  # the piece is known: keep showing the tracker's best guess, and let the
            return None  # identifier re-seed it (the doubt makes its disagreement count, _arbitrate)
        if self._doubt_expired():
            self.state = LOST
            self._doubt_since = None
            # one more query agreeing with the last one re-seeds (the tracker may just have slipped)
            self._pending = [h for h in self._last_hyps if h.confidence >= p.confirm_confidence]
            self.stats.events.append((self._t, "gave up", self._follower_piece, None))
        return None

    def _sounding(self) -> bool:
        return len(self._notes) > 0 and self._t - float(self._notes["onset_s"][-1]) < self.params.pause_s

    def _query_due(self) -> bool:
        p = self.params
        if self._n_notes - self._notes_at_query < p.min_new_notes:
            return False
        horizon = p.horizon_s
        if self.state != TRACKING and p.sparse_notes > 0:
            horizon = max(horizon, p.sparse_horizon_s)
        return int((self._notes["onset_s"] > self._t - horizon).sum()) >= p.min_notes

    def _now_s(self) -> float:
        """Time of the tracker's latest frame (audio) or the input clock (MIDI)."""
        if self.midi:
            return self._t
        return max(self._frames - 1, 0) / FPS

    def query(self) -> list[Hypothesis]:
        """Ask the identifier about the notes of the horizon (best first)."""
        p = self.params
        horizon = p.track_horizon_s if self.state == TRACKING else p.horizon_s
        sel = self._notes[self._notes["onset_s"] > self._t - horizon][-p.max_notes:]
        if self.state != TRACKING and len(sel) < p.sparse_notes:
            # slow music: reach back up to sparse_horizon_s for the last sparse_notes notes
            older = self._notes[self._notes["onset_s"] > self._t - p.sparse_horizon_s]
            sel = older[-max(p.sparse_notes, len(sel)):]
        self._notes_at_query = self._n_notes
        self._query_notes = sel
        self.stats.queries += 1
        if len(sel) < max(p.min_notes, 3):
            return []
        t_last = float(sel["onset_s"][-1])
        if self.in_piece:
            slack = p.piece_slack
        else:
            slack = p.confirm_slack if self.state != TRACKING else p.track_slack
        out = []
        for c in self.identifier.candidates(sel, slack=slack)[:p.top_k]:
            out.append(Hypothesis(c.piece, c.score_end_s, c.tempo_ratio, c.confidence, t_last, c.transposition,
                                  c.sure or self.in_piece))
        self._last_hyps = [h for h in out if h.sure]
        return out

    def _arbitrate(self) -> Hypothesis | None:
        """One identifier query and what follows from it; returns the hypothesis seeded, if any."""
        p = self.params
        hyps = self.query()
        if not hyps:
            return None
        best = hyps[0]
        now = self._now_s()
        if self.state in (SEARCHING, LOST):
            return self._search(hyps, now, "seed")
        # tracking: does the identifier agree with the tracker?
        support = self._supporting(hyps, now)
        if self._rivals:
            switched = self._settle_rivals(hyps, support, now)
            if switched is not None:
                return switched
        if p.check_tracker and not self.midi and not (support and self._preferred(hyps, support) is support[0]):
            here = self._checked_here(now)
            if here is not None and here.confidence >= best.confidence - p.check_margin:
                support = [here]
        if support and self._preferred(hyps, support) is support[0]:
            self._n_disagree, self._disagree = 0, []
            self._last_agree_t = self._t
            self._confirmed = True
            if self.in_piece:
                self._pending = []
            if self.midi:
                h = support[0]
                # the query's own place and tempo (a monotone match of the notes of the horizon) correct
                # the note-by-note matching, which can slip to a neighbouring note of the same pitch
                self._current = Hypothesis(h.piece, h.score_s, h.tempo, h.confidence, h.t, h.transposition)
            return None
        if self.in_piece and (not self._confirmed or self._doubt_since is not None):
            # not confirmed yet (the player may have started anywhere), or doubting: as when searching
            return self._search(hyps, now, "reseed")
        if best.confidence < p.reseed_confidence:
            return None
        target = self._nearest(hyps, now)
        if any(h.same_place(target, p.agree_tolerance_s) for h in self._disagree):
            self._n_disagree += 1
        else:
            self._n_disagree = 1
        self._disagree = [h for h in hyps if h.confidence >= p.reseed_confidence and h not in support]
        if self._n_disagree >= p.reseed_after:
            self._seed(target, now, "reseed")
            return target
        return None

    def _search(self, hyps: list[Hypothesis], now: float, what: str) -> Hypothesis | None:
        """Seed if the best hypothesis is clearly ahead, or if the previous query had one at the same
        place (any of them: where a passage recurs, the best one may alternate between its
        occurrences). A re-seed (piece mode: the tracker is running) goes to the hypothesis as good as
        the best nearest the tracker (:meth:`_nearest`), a seed to the best."""
        p = self.params
        best = hyps[0]
        elsewhere = [h for h in hyps[1:] if not best.same_place(h, p.agree_tolerance_s)]
        clear = best.sure and best.confidence >= p.seed_confidence and \
            (not elsewhere or elsewhere[0].confidence <= best.confidence - p.seed_margin)
        confirmed = best.confidence >= p.confirm_confidence and any(
            h.same_place(best, p.agree_tolerance_s + 0.25 * (best.t - h.t)) for h in self._pending)
        self._pending = [h for h in hyps if h.confidence >= p.confirm_confidence]
        if clear or confirmed:
            target = self._nearest(hyps, now) if what == "reseed" else best
            self._seed(target, now, what)
            if self.midi and p.midi_rivals:  # places exactly as good: the same notes elsewhere
                self._rivals = [h for h in hyps if h.piece == target.piece and h is not target
                                and h.confidence >= target.confidence
                                and not h.same_place(target, p.agree_tolerance_s)]
            return target
        return None

    def _settle_rivals(self, hyps: list[Hypothesis], support: list[Hypothesis], now: float) -> Hypothesis | None:
        """MIDI, after a seed among equally good places (``midi_rivals``): the first query that ranks
        one of them ``midi_rival_margin`` above the tracker's place moves the tracker there; one that
        ranks the tracker's place that far above all of them ends the doubt."""
        p = self.params
        here = max((h.confidence for h in support), default=0.0)
        at_rival = [h for h in hyps if any(h.piece == r.piece and abs(h.predict(now) - r.predict(now))
                                           <= p.agree_tolerance_s for r in self._rivals)]
        top = max(at_rival, key=lambda h: h.confidence, default=None)
        if top is not None and top.confidence >= here + p.midi_rival_margin:
            self._rivals = []
            self._seed(top, now, "reseed")
            return top
        if here > 0 and (top is None or here >= top.confidence + p.midi_rival_margin):
            self._rivals = []
        return None

    def _checked_here(self, now: float) -> Hypothesis | None:
        """The tracker's place verified by the identifier with the last query's notes, as a hypothesis,
        if the check stays at that place (within ``agree_tolerance_s``). The query's best hypotheses
        need not include it: where the same notes recur, the vote may keep only some of the places."""
        here = self._tracker_hypothesis(now)
        check = getattr(self.identifier, "check", None)  # (an identifier without it is not asked)
        if here is None or check is None or self._query_notes is None or len(self._query_notes) < 3:
            return None
        t_last = float(self._query_notes["onset_s"][-1])
        transposition = self._current.transposition if self._current is not None else 0
        c = check(self._query_notes, here.piece, here.predict(t_last), here.tempo, transposition)
        if c is None or not c.sure or abs(c.score_end_s - here.predict(t_last)) > self.params.agree_tolerance_s:
            return None
        return Hypothesis(here.piece, c.score_end_s, c.tempo_ratio, c.confidence, t_last, c.transposition)

    def _nearest(self, hyps: list[Hypothesis], now: float) -> Hypothesis:
        """Where to re-seed: of the hypotheses about as good as the best (within ``ambiguity_margin``),
        the one nearest the tracker's position in its piece. Where a passage recurs (a da capo, a
        recapitulation) the identifier ranks its occurrences alike, and a slip of a few bars is far
        more likely than a jump to the other occurrence."""
        here = self._tracker_hypothesis(now) if self.params.prefer_near else None
        if here is None:
            return hyps[0]
        near = [h for h in hyps if h.piece == here.piece
                and h.confidence >= hyps[0].confidence - self.params.ambiguity_margin]
        if not near:
            return hyps[0]
        h = min(near, key=lambda h: abs(h.predict(now) - here.score_s))
        return h if abs(h.predict(now) - here.score_s) <= self.params.near_s else hyps[0]

    def _supporting(self, hyps: list[Hypothesis], now: float) -> list[Hypothesis]:
        """The hypotheses that agree with where the tracker is (same piece, same place at ``now``)."""
        here = self._tracker_hypothesis(now)
        if here is None:
            return []
        return [h for h in hyps if h.piece == here.piece
                and abs(h.predict(now) - here.score_s) <= self.params.agree_tolerance_s]

    def _preferred(self, hyps: list[Hypothesis], support: list[Hypothesis]) -> Hypothesis:
        """The best hypothesis, unless one agreeing with the tracker is about as good: where a passage
        recurs (a sequence, a recapitulation) the identifier cannot tell the places apart, and the
        context the tracker holds can."""
        if support and support[0].confidence >= hyps[0].confidence - self.params.ambiguity_margin:
            return support[0]
        return hyps[0]

    def _tracker_hypothesis(self, now: float) -> Hypothesis | None:
        """The tracker's (or, for MIDI, the extrapolated) position as a hypothesis at ``now``."""
        if self.midi:
            if self._current is None:
                return None
            return Hypothesis(self._current.piece, self._midi_score_s(now), self._current.tempo, 1.0, now)
        if self._follower is None or self._last is None or self._last.score_quarters is None:
            return None
        s = self._to_s(self._follower_piece, self._last.score_quarters)
        return Hypothesis(self._follower_piece, s, float(self._last.tempo), 1.0, now)

    def _seed(self, h: Hypothesis, now: float, what: str) -> None:
        pc = self.piece(h.piece)
        score_s = h.predict(now)
        if not self.midi:
            q = self._to_q(h.piece, score_s)
            if self._follower is None:
                from companion.tracking.follower import Follower

                self._follower = Follower(pc, tempo_candidates=(1.0,), tracker_params=self.tracker_params)
            self._follower.seed(q, h.tempo, piece=pc)
        self._follower_piece = h.piece
        self._current = Hypothesis(h.piece, score_s, h.tempo, h.confidence, now, h.transposition)
        self._waiting = False
        self.state = TRACKING
        self._doubt_since = None
        self._confirmed = False
        self._pending, self._disagree, self._n_disagree = [], [], 0
        self._rivals = []
        self._last_agree_t = self._t
        if what == "seed":
            self.stats.seeds += 1
        else:
            self.stats.reseeds += 1
        self.stats.events.append((self._t, what, h.piece, score_s))
        log.info("%.2f s: %s %s at %.1f score s (tempo %.2f, confidence %.2f)", self._t, what,
                 self.db.metas[h.piece].source, score_s, h.tempo, h.confidence)

    def _midi_score_s(self, now: float) -> float:
        last = float(self._notes["onset_s"][-1]) if len(self._notes) else None
        return self._midi.score_s(self._current, now, last, self._waiting)

    # -------------------------------------------------------------------------------------- output
    def _position(self, track: Any, seeded: Hypothesis | None) -> ScorePosition:
        t = self._t
        if self.state == SEARCHING or self._follower_piece is None:
            return ScorePosition(t, SEARCHING, None, None, None, None, 1.0, 0.0)
        pc = self.piece(self._follower_piece)
        src = pc.meta.source
        if self.state == LOST:
            last = self._last
            if last is not None and last.source == src:
                return ScorePosition(t, LOST, src, last.measure, last.measure_offset, last.score_quarters,
                                     last.tempo, 0.0)
            return ScorePosition(t, LOST, src, None, None, None, 1.0, 0.0)
        if self.midi or seeded is not None or track is None or not len(track):
            if self.midi:
                lead = self.params.display_lead_s if self._sounding() else 0.0
                score_s, tempo, conf = self._midi_score_s(self._now_s() + lead), self._current.tempo, \
                    self._current.confidence
                nxt = None
                if self.params.midi_next_bar:
                    nxt = self._midi.next_note(self._current, self._t, self._waiting)
                if nxt is not None:  # the bar of the next note to play, and the position never past it
                    q = self._to_q(self._follower_piece, min(score_s, nxt[0]))
                    bar = nxt[1]
                    return ScorePosition(t, TRACKING, src, str(pc.bars["number"][bar]),
                                         max(q - float(pc.bars["start_quarters"][bar]), 0.0), q, tempo, conf)
            elif seeded is not None or self._last is None or self._last.score_quarters is None:
                score_s, tempo, conf = self._current.score_s, self._current.tempo, self._current.confidence
            else:
                return ScorePosition(t, TRACKING, src, self._last.measure, self._last.measure_offset,
                                     self._last.score_quarters, self._last.tempo, self._last.confidence)
            q = self._to_q(self._follower_piece, score_s)
            measure, offset = pc.measure_at(q)
            return ScorePosition(t, TRACKING, src, measure, max(offset, 0.0), q, tempo, conf)
        k = len(track) - 1
        if track.bar[k] < 0:
            return ScorePosition(t, TRACKING, src, None, None, None, float(track.tempo[k]), 0.0)
        if self.in_piece or self.params.tracker_display:  # the tracker's own display (TrackerParams.snap_display)
            fp = self._follower.position(track, k, t)
            lost = self.in_piece and self._doubt_expired()
            return ScorePosition(t, LOST if lost else TRACKING, src, fp.measure, fp.measure_offset,
                                 fp.score_quarters, fp.tempo, fp.confidence)
        q = float(track.score_quarters[k])
        tempo = float(track.tempo[k])
        if self._sounding():
            # the frame is centred ~46 ms (plus the wait for its block) before the input's end, and the
            # tracker trails the music by about display_lead_s: show where the player is now, at the
            # tracker's tempo (not while paused)
            ahead = (max(0.0, t - self._now_s()) + self.params.display_lead_s) * tempo
            q = self._to_q(self._follower_piece, self._to_s(self._follower_piece, q) + ahead)
        measure, offset = pc.measure_at(q)
        return ScorePosition(t, TRACKING, src, measure, max(offset, 0.0), q, tempo, float(track.confidence[k]))

    def _doubt_expired(self) -> bool:
        """Whether the tracker doubts itself and no query has agreed with it for ``lost_grace_s`` (at
        once if none ever has): the whole-database engine then gives it up (:meth:`_tracker_state`),
        piece mode shows its guess as "lost"."""
        if self._doubt_since is None:
            return False
        grace = self.params.lost_grace_s if self._confirmed else 0.0
        return self._t - max(self._doubt_since, self._last_agree_t) >= grace



def _to_notes(events: list[NoteEvent]) -> np.ndarray:
    return perf_notes(events)
