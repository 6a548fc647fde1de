"""Online time warping (OLTW) of audio features against a score, with a tempo model and jumps.

The tracker is an online, windowed dynamic time warping (Dixon 2005) between the score's feature
sequence (rows ``i``, at ``fps`` frames per *score* second) and the incoming audio (columns ``j``).

* **Tempo-normalised columns** (after Arzt & Widmer's tempo model): audio frames (100 fps) are averaged
  into columns at ``tempo * fps`` columns per audio second, where ``tempo`` is the current estimate of
  score seconds per audio second. When the estimate is right the warping path is diagonal, so the
  diagonal-preferring step weights no longer fight large tempo differences between the notated tempo and
  the player. The tempo is re-estimated from the slope of the path over the last few seconds.
* **Bounded window**: each column is computed only on ``[best - back, best + ahead]`` plus a short
  segment after every repeat jump that starts inside that window, so the cost per column is O(window),
  never O(score). Accumulated costs live in arrays the length of the score, but only window cells are
  touched (cells outside the active set are kept at infinity).
* **Repeats**: :func:`companion.tracking.chroma.bar_jumps` lists, for the end of every unfolded bar, the
  places other passes over the same notated bar continued at. Those ``(src, dst)`` frame pairs are extra
  DTW transitions (``D[dst, j] <- D[src, j-1]``), so the path may skip a repeat or take it once more;
  both alternatives are live at once, and the better-matching one wins (no hard decision is taken).
* **Steps** (symmetric DTW): diagonal ``2 d``, score-only or audio-only ``(1 + step_penalty) d``; the
  position is the cell with the lowest path-length normalised cost ``D / L``.
* **Confidence / lost**: the local cost of the reported cell against the mean local cost of the window
  (both smoothed over a few seconds). On the right piece the path sits well below the window's average;
  on a wrong piece, or noise, it does not. Below ``lost_confidence`` for ``lost_after_s`` -> "lost".

References
----------
.. [1] S. Dixon, "Live tracking of musical performances using on-line time warping", DAFx 2005.
.. [2] A. Arzt, G. Widmer, "Simple tempo models for real-time music tracking", SMC 2010.
.. [3] A. Arzt, G. Widmer, S. Dixon, "Adaptive distance normalization for real-time music tracking",
       EUSIPCO 2012.
"""

from __future__ import annotations

import logging
import math
from collections import deque
import dataclasses
from dataclasses import dataclass

import numpy as np

from companion.tracking._oltw_kernels import _clear, _column
from companion.tracking.chroma import ScoreFeatures

__all__ = ["TrackerParams", "TrackResult", "OnlineTracker", "SEARCHING", "TRACKING", "LOST", "STATE_NAMES"]

log = logging.getLogger(__name__)

SEARCHING, TRACKING, LOST = 0, 1, 2
#: until the first sounding frame after a seed, the position is reported this far (quarters) before it
_BEFORE_Q = 0.01
STATE_NAMES = ("searching", "tracking", "lost")


@dataclass(frozen=True)
class TrackerParams:
    """Parameters of :class:`OnlineTracker` (times in seconds; score seconds for window sizes).

    Parameters
    ----------
    audio_fps : float
        Frame rate of the audio features (100 for the shared STFT).
    back_s, ahead_s : float
        The search window behind and ahead of the current position, in score seconds.
    jump_s : float
        Length of the segment kept open after a repeat jump target.
    onset_weight : float
        Weight of the onset part of the local distance (the rest is chroma). 0.35 suited the spectral
        difference; with the transcriber's note activations (sharper, and silent between notes) 0.5 is
        better (bench/results/tracking.md, session 9).
    step_penalty : float
        Extra relative cost of non-diagonal steps.
    jump_penalty : float
        Extra cost (in local-distance units) of taking a repeat jump.
    tempo_window_s : float
        Audio seconds over which the tempo is estimated from the path slope.
    tempo_rate : float
        Fraction per second by which the tempo estimate follows the measured slope (log domain), at
        confidence 1 (it is scaled by the current confidence).
    min_tempo, max_tempo : float
        Bounds of the tempo estimate (score seconds per audio second).
    confidence_s : float
        Smoothing time constant of the confidence, audio seconds.
    lost_confidence : float
        Confidence below which the tracker counts as lost ...
    lost_after_s : float
        ... once it has stayed there this long (audio seconds).
    lead_s : float
        The reported position is extrapolated this far ahead at the current tempo, to make up for the
        latency of the features (a frame is complete 46 ms after its centre) and of the path's end.
    snap_display : bool
        Report the bar of the next note onset at or after the position (the bar about to be played)
        rather than the bar the position lies in. Between the last onset of a bar and the first one
        of the next, the player's next note is in the next bar; showing it then needs no prediction
        of when exactly that note comes, which a lead alone cannot give (see :class:`TrackResult`).
    hold_onset_strength : float
        With ``snap_display``: a note onset of the score counts as *played* once the audio shows an
        onset (the sum of the onset chroma, in [0, 1)) at least this strong, no earlier than
        ``hold_window_s`` before the position crossed it. Until then the bar of that note stays on
        show rather than the next onset's: a position that runs a little ahead (the lead, or a path
        ending early) would otherwise show the next bar while the last note of a bar is still to
        come. 0 turns this off.
    hold_window_s : float
        How long before the crossing an audio onset still counts for the note crossed (the features'
        latency: the path crosses a note some frames after its onset is heard).
    hold_max_q : float
        Hold for at most this far (quarter notes) past the note's onset.
    hold_position_s : float
        With ``snap_display`` and ``hold_onset_strength``: the reported position (``score_quarters``)
        stays just before a note onset it has crossed while that note has not been heard, for at most
        this long (audio seconds) after the crossing. Between notes the position runs on at the tempo
        estimate; in slow, free music it reaches the next note before the player does, which a follower
        that claims a note it has not heard should not. 0 turns this off.
    """

    audio_fps: float = 100.0
    back_s: float = 1.5
    ahead_s: float = 5.0
    jump_s: float = 3.0
    onset_weight: float = 0.5
    step_penalty: float = 0.3
    jump_penalty: float = 4.0
    tempo_window_s: float = 4.0
    tempo_rate: float = 0.2
    min_tempo: float = 0.25
    max_tempo: float = 2.5
    confidence_s: float = 4.0
    lost_confidence: float = 0.25
    lost_after_s: float = 3.0
    lead_s: float = 0.035
    snap_display: bool = True
    hold_onset_strength: float = 0.5
    hold_window_s: float = 0.1
    hold_max_q: float = 0.25
    hold_position_s: float = 1.0


@dataclass
class TrackResult:
    """Per-audio-frame output of :meth:`OnlineTracker.process` (all arrays have shape ``(n_frames,)``).

    Attributes
    ----------
    score_frame : np.ndarray, float64
        Position in score frames (fractional), -1 before a seed.
    score_quarters : np.ndarray, float64
        Position along the unfolded score in quarter notes (NaN before a seed; just before the seed
        position until the first sounding frame after it; just before a note the path has crossed but
        the audio has not yet sounded, :attr:`TrackerParams.hold_position_s`).
    bar : np.ndarray, int32
        Index into ``piece.bars`` (-1 before a seed): the bar shown. With
        :attr:`TrackerParams.snap_display`, the bar of the next note onset at or after
        ``score_quarters`` (so it may be the bar after the one ``score_quarters`` lies in, between the
        last onset of a bar and the next bar line).
    tempo : np.ndarray, float64
        Tempo estimate: score seconds per audio second (> 1: faster than notated).
    confidence : np.ndarray, float64
        In [0, 1].
    state : np.ndarray, int8
        :data:`SEARCHING`, :data:`TRACKING` or :data:`LOST`.
    cost : np.ndarray, float64
        Smoothed local cost along the path (lower is a better fit; inf before the first column).
    path_frame : np.ndarray, float64
        The end of the warping path in score frames, without the latency lead (-1 before a seed).
    """

    score_frame: np.ndarray
    score_quarters: np.ndarray
    bar: np.ndarray
    tempo: np.ndarray
    confidence: np.ndarray
    state: np.ndarray
    cost: np.ndarray
    path_frame: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, index) -> "TrackResult":
        """The entries at ``index`` (a slice or an index array) of every field."""
        return TrackResult(*(getattr(self, k)[index] for k in RESULT_FIELDS))

    @staticmethod
    def concat(results: "list[TrackResult]") -> "TrackResult":
        return TrackResult(*(np.concatenate([getattr(r, k) for r in results]) for k in RESULT_FIELDS))


#: TrackResult's fields, in order
RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(TrackResult))


_SCALAR_STATE = ("_cur", "_seeded", "_best", "_progress", "_tempo", "_phase", "_acc_n", "_n_columns", "_frame",
                 "_ema_best", "_ema_mean", "_ema_w", "_low_since", "_confidence", "_state", "_hold_onset",
                 "_hold_since", "_heard_frame")


class OnlineTracker:
    """Follow audio features in one score (see the module docstring for the method).

    Parameters
    ----------
    score : ScoreFeatures
        The score's feature sequence (:func:`companion.tracking.chroma.score_features`).
    params : TrackerParams

    Notes
    -----
    :meth:`process` is deterministic and keeps all its state between calls, so any split of the audio
    frames into blocks gives identical output.
    """

    def __init__(self, score: ScoreFeatures, *, params: TrackerParams | None = None) -> None:
        self.params = params or TrackerParams()
        self.set_score(score)

    # ----------------------------------------------------------------------------------------- setup
    def set_score(self, score: ScoreFeatures) -> None:
        """Switch to another score (the tracker is then unseeded)."""
        if score.n_frames < 2:
            raise ValueError("the score has fewer than 2 feature frames")
        self.score = score
        n = score.n_frames
        self._feats = np.ascontiguousarray(score.features, dtype=np.float64)
        # the frames for audio whose onset part is the spectral difference (ScoreFeatures.fast_features)
        self._feats_fast = self._feats if score.fast_features is None else \
            np.ascontiguousarray(score.fast_features, dtype=np.float64)
        self._silent = np.ascontiguousarray(score.silent, dtype=np.bool_)
        # jump list as a linked list per destination: jump_in[dst] -> first jump, jsrc[j] = (src, next)
        self._jump_in = np.full(n, -1, np.int64)
        jumps = score.jumps
        self._jsrc = np.zeros((max(len(jumps), 1), 2), np.int64)
        for j, (src, dst) in enumerate(jumps):
            self._jsrc[j] = (src, self._jump_in[dst])
            self._jump_in[dst] = j
        self._jump_src = jumps[:, 0].copy() if len(jumps) else np.zeros(0, np.int64)
        self._jump_dst = jumps[:, 1].copy() if len(jumps) else np.zeros(0, np.int64)
        # accumulated cost and path length of the last three columns (ring buffer) and their windows
        self._d = [np.full(n, np.inf) for _ in range(3)]
        self._l = [np.ones(n) for _ in range(3)]
        self._loc = [np.full(n, np.nan) for _ in range(3)]
        self._segs = [np.zeros((0, 2), np.int64) for _ in range(3)]
        self.reset()

    def reset(self) -> None:
        """Forget the position (state "searching" until :meth:`seed`)."""
        for k in range(3):
            _clear(self._d[k], self._l[k], self._loc[k], self._segs[k], len(self._segs[k]))
            self._segs[k] = np.zeros((0, 2), np.int64)
        self._cur = 0
        self._seeded = False
        self._best = 0
        self._progress = 0.0
        self._tempo = 1.0
        self._phase = 0.0
        self._acc = np.zeros(self._feats.shape[1])
        self._acc_n = 0
        self._n_columns = 0
        self._frame = 0
        self._hist: deque[tuple[int, float]] = deque()
        self._ema_best = 0.0
        self._ema_mean = 0.0
        self._ema_w = 0.0
        self._low_since: int | None = None
        self._confidence = 0.0
        self._state = SEARCHING
        # display hold (TrackerParams.hold_onset_strength): the score onset last crossed (None: not yet
        # placed), the frame from which an audio onset counts as its note, the last audio onset frame
        self._hold_onset: int | None = None
        self._hold_since: int | None = None
        self._heard_frame = -(1 << 62)

    def seed(self, position_quarters: float, tempo: float = 1.0, *, piece_score: ScoreFeatures | None = None,
             spread_s: float = 0.5) -> None:
        """Start (or restart) following at a score position.

        Parameters
        ----------
        position_quarters : float
            Position along the unfolded score, quarter notes.
        tempo : float
            Initial tempo estimate, score seconds per audio second (the identifier's tempo ratio).
        piece_score : ScoreFeatures, optional
            Switch to this score first (re-seeding into another piece).
        spread_s : float
            Uncertainty of the seed position (score seconds either side).
        """
        if piece_score is not None:
            self.set_score(piece_score)
        frame = self._frame
        self.reset()
        self._frame = frame
        p = self.params
        i0 = self.score.frame_at_quarters(position_quarters)
        spread = max(1, int(round(spread_s * self.score.fps)))
        lo, hi = max(0, i0 - spread), min(self.score.n_frames - 1, i0 + spread)
        d = self._d[self._cur]
        # a slight preference for the seed position itself
        d[lo:hi + 1] = 0.02 * np.abs(np.arange(lo, hi + 1) - i0) / spread
        self._l[self._cur][lo:hi + 1] = 1.0
        self._segs[self._cur] = np.array([[lo, hi]], np.int64)
        self._best = i0
        self._tempo = float(np.clip(tempo, p.min_tempo, p.max_tempo))
        self._seeded = True
        self._state = SEARCHING

    # ------------------------------------------------------------------------------------- properties
    @property
    def tempo(self) -> float:
        return self._tempo

    @property
    def state(self) -> int:
        return self._state

    @property
    def confidence(self) -> float:
        return self._confidence

    @property
    def position_frame(self) -> float:
        return float(self._best) + self._phase if self._seeded else -1.0

    # ---------------------------------------------------------------------------------------- window
    def _next_segments(self, best: int) -> np.ndarray:
        p, sc = self.params, self.score
        n = sc.n_frames
        lo = max(0, best - int(p.back_s * sc.fps))
        hi = min(n - 1, best + int(p.ahead_s * sc.fps))
        segs = [(lo, hi)]
        if len(self._jump_src):
            sel = (self._jump_src >= lo) & (self._jump_src <= hi)
            for dst in self._jump_dst[sel]:
                segs.append((int(dst), int(min(n - 1, dst + p.jump_s * sc.fps))))
        segs.sort()
        merged = [list(segs[0])]
        for a, b in segs[1:]:
            if a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return np.array(merged, np.int64)

    def _step_column(self, x: np.ndarray, score_feats: np.ndarray) -> None:
        p = self.params
        p1, p2, cur = self._cur, (self._cur + 2) % 3, (self._cur + 1) % 3
        _clear(self._d[cur], self._l[cur], self._loc[cur], self._segs[cur], len(self._segs[cur]))
        new_segs = self._next_segments(self._best)
        best_i, best_local, mean_local = _column(
            x, score_feats, self._silent, self._d[p1], self._l[p1], self._d[p2], self._l[p2],
            self._d[cur], self._l[cur], self._loc[p1], self._loc[cur], new_segs, len(new_segs),
            self._jump_in, self._jsrc, p.onset_weight, p.step_penalty, p.jump_penalty)
        self._segs[cur] = new_segs
        self._cur = cur
        self._n_columns += 1
        if best_i < 0:  # unreachable window (cannot happen while seeded); keep the position
            return
        step = best_i - self._best
        if abs(step) <= (p.back_s + p.ahead_s) * self.score.fps:
            self._progress += step
        self._best = int(best_i)
        # confidence: path's local cost vs the window's mean local cost, smoothed over confidence_s
        col_s = 1.0 / (self._tempo * self.score.fps)
        a = min(1.0, col_s / p.confidence_s)
        self._ema_best += a * (best_local - self._ema_best)
        self._ema_mean += a * (mean_local - self._ema_mean)
        self._ema_w += a * (1.0 - self._ema_w)

    def _update_tempo(self) -> None:
        p = self.params
        hist = self._hist
        hist.append((self._frame, self._progress))
        horizon = int(p.tempo_window_s * p.audio_fps)
        while len(hist) > 1 and self._frame - hist[0][0] > horizon:
            hist.popleft()
        span = self._frame - hist[0][0]
        if span < horizon * 0.75:
            return
        slope = (self._progress - hist[0][1]) / self.score.fps / (span / p.audio_fps)
        if slope <= 0:
            return
        target = min(max(float(slope), p.min_tempo), p.max_tempo)  # (scalar math: this runs per frame)
        # trust the slope as much as the path: a path that has lost the music (low confidence) must not
        # drag the tempo down (or up) with it, or it can no longer catch up within the slope limit of 2
        rate = min(1.0, p.tempo_rate * self._confidence / p.audio_fps)
        self._tempo = math.exp(math.log(self._tempo) + rate * (math.log(target) - math.log(self._tempo)))

    def _update_state(self) -> None:
        p = self.params
        if self._n_columns == 0 or self._ema_w <= 0:
            self._state = SEARCHING
            return
        best = self._ema_best / self._ema_w
        mean = self._ema_mean / self._ema_w
        self._confidence = min(max(1.0 - best / max(mean, 1e-9), 0.0), 1.0)
        if self._confidence < p.lost_confidence:
            if self._low_since is None:
                self._low_since = self._frame
            if self._frame - self._low_since >= p.lost_after_s * p.audio_fps:
                self._state = LOST
                return
        else:
            self._low_since = None
        self._state = TRACKING

    # ------------------------------------------------------------------------------------ checkpoint
    def checkpoint(self) -> tuple:
        """The tracker's state, to :meth:`restore` after following some frames provisionally. Costs
        O(window): outside its window segments the accumulated cost columns are always cleared."""
        cols = []
        for k in range(3):
            segs = self._segs[k].copy()
            idx = np.concatenate([np.arange(a, b + 1) for a, b in segs]) if len(segs) else np.zeros(0, np.int64)
            cols.append((segs, idx, self._d[k][idx], self._l[k][idx], self._loc[k][idx]))
        return cols, {name: getattr(self, name) for name in _SCALAR_STATE}, self._acc.copy(), deque(self._hist)

    def restore(self, state: tuple) -> None:
        """Return to a :meth:`checkpoint` (each checkpoint is restored at most once)."""
        cols, scalars, acc, hist = state
        for k, (segs, idx, d, l, loc) in enumerate(cols):
            _clear(self._d[k], self._l[k], self._loc[k], self._segs[k], len(self._segs[k]))
            self._d[k][idx], self._l[k][idx], self._loc[k][idx] = d, l, loc
            self._segs[k] = segs
        for name, value in scalars.items():
            setattr(self, name, value)
        self._acc, self._hist = acc, hist

    # --------------------------------------------------------------------------------------- process
    def process(self, features: np.ndarray, silent: np.ndarray | None = None, *, fast: bool = False) -> TrackResult:
        """Advance by a block of audio feature frames.

        Parameters
        ----------
        features : np.ndarray [shape=(n_frames, n_features)]
            From :class:`companion.tracking.chroma.AudioChroma`.
        silent : np.ndarray [shape=(n_frames,), dtype=bool], optional
            Silent frames: they do not move the position (the player is not playing).
        fast : bool
            The onset part of ``features`` is the spectral difference although the score's is made for
            note activations (:attr:`ScoreFeatures.fast_features`): compare with the score's other
            frames (the provisional frames of :class:`~companion.tracking.follower.Follower`).

        Returns
        -------
        TrackResult
            One entry per input frame: where the tracker is after that frame.
        """
        features = np.asarray(features, dtype=np.float64)
        nf = self._feats.shape[1]
        nc = nf - 12
        if features.ndim != 2 or features.shape[1] != nf:
            raise ValueError(f"features must have shape (n, {nf}) like the score's, got {features.shape}")
        n = features.shape[0]
        if silent is None:
            silent = ~features[:, :nc].any(axis=1)
        pos = np.full(n, -1.0)
        raw = np.full(n, -1.0)
        tempo = np.zeros(n)
        conf = np.zeros(n)
        state = np.zeros(n, np.int8)
        cost = np.full(n, np.inf)
        waiting = np.zeros(n, bool)
        frames = self._frame + 1 + np.arange(n)
        sc = self.score
        score_feats = self._feats_fast if fast else self._feats
        for k in range(n):
            self._frame += 1
            if self._seeded and not silent[k]:
                self._acc += features[k]
                self._acc_n += 1
                self._phase += self._tempo * sc.fps / self.params.audio_fps
                while self._phase >= 1.0:
                    x = self._acc / max(self._acc_n, 1)
                    nrm = np.sqrt((x[:nc] ** 2).sum())
                    if nrm > 0:
                        x[:nc] /= nrm
                    self._step_column(x, score_feats)
                    self._phase -= 1.0
                    if self._phase < 1.0:
                        self._acc[:] = 0.0
                        self._acc_n = 0
                self._update_tempo()
                self._update_state()
            if self._seeded:
                waiting[k] = self._n_columns == 0
                lead = self.params.lead_s * self._tempo * sc.fps if self._n_columns else 0.0
                raw[k] = min(self._best + self._phase, sc.n_frames - 1)
                pos[k] = min(raw[k] + lead, sc.n_frames - 1)
            tempo[k] = self._tempo
            conf[k] = self._confidence
            state[k] = self._state
            if self._ema_w > 0:
                cost[k] = self._ema_best / self._ema_w
        quarters = np.full(n, np.nan)
        bar = np.full(n, -1, np.int32)
        ok = pos >= 0
        if ok.any():
            quarters[ok] = np.interp(pos[ok], np.arange(sc.n_frames), sc.quarters)
            starts = sc.piece.bars["start_quarters"]
            shown = quarters[ok]
            if self.params.snap_display and len(sc.onsets):
                snapped, held = self._snap(quarters, ok, features[:, nc:].sum(axis=1), frames)
                shown = snapped[ok]
                hold = held >= 0
                quarters[hold] = np.minimum(quarters[hold], sc.onsets[held[hold]] - _BEFORE_Q)
            bar[ok] = np.clip(np.searchsorted(starts, shown + 1e-9, side="right") - 1, 0, len(starts) - 1)
            # nothing heard since the seed: the player has not reached the seed position yet
            quarters[ok & waiting] -= _BEFORE_Q
        return TrackResult(score_frame=pos, score_quarters=quarters, bar=bar, tempo=tempo, confidence=conf,
                           state=state, cost=cost, path_frame=raw)

    def _snap(self, quarters: np.ndarray, ok: np.ndarray, onset_strength: np.ndarray,
              frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The score position whose bar is shown, per frame (``snap_display``): the next score onset at
        or after the position, or the onset just crossed while its note has not been heard yet
        (``hold_onset_strength``). Frames outside ``ok`` are returned unchanged. Also returns, per frame,
        the index of the onset the position is held before (``hold_position_s``), or -1."""
        p = self.params
        ons = self.score.onsets
        nxt = np.searchsorted(ons, np.where(ok, quarters, -np.inf) - 1e-6, side="left")
        out = np.where(ok & (nxt < len(ons)), ons[np.minimum(nxt, len(ons) - 1)], quarters)
        held = np.full(len(quarters), -1, np.int64)
        if p.hold_onset_strength <= 0:
            return out, held
        window = int(round(p.hold_window_s * p.audio_fps))
        hold_frames = p.hold_position_s * p.audio_fps
        for k in range(len(quarters)):
            if onset_strength[k] >= p.hold_onset_strength:
                self._heard_frame = int(frames[k])
            if not ok[k]:
                continue
            prv = int(nxt[k]) - 1
            if self._hold_onset is None or prv < self._hold_onset:
                self._hold_since = None  # placed by a seed, or moved back: nothing to wait for
            elif prv > self._hold_onset:
                self._hold_since = int(frames[k]) - window  # crossed a note: heard yet?
            self._hold_onset = prv
            if self._hold_since is not None and self._heard_frame >= self._hold_since:
                self._hold_since = None
            if self._hold_since is not None and prv >= 0:
                if quarters[k] - ons[prv] < p.hold_max_q:
                    out[k] = ons[prv]
                if frames[k] - (self._hold_since + window) < hold_frames:  # frames since the crossing
                    held[k] = prv
        return out, held
