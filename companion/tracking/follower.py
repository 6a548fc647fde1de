"""Audio in, score positions out: the shared STFT features -> chroma -> :class:`OnlineTracker`.

:class:`Follower` is the plain processor the CLI, the GUI pipeline and the benchmark drive block by
block. Time is the sample clock: the result for spectrogram frame ``k`` (centred at sample
``k * 441``) becomes available once the features have its samples up to ``k * 441 + 2048``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from companion.score.model import Piece
from companion.tracking.chroma import AudioChroma, ChromaParams, activation_onsets, score_features
from companion.tracking.oltw import RESULT_FIELDS, STATE_NAMES, OnlineTracker, TrackerParams, TrackResult

__all__ = ["ScorePosition", "Follower", "follow_audio", "SAMPLE_RATE", "HOP_SIZE"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HOP_SIZE = 441


@dataclass(frozen=True)
class ScorePosition:
    """Where the player is, as ``companion follow`` prints it (DESIGN.md §2)."""

    t: float
    state: str
    source: str
    measure: str | None
    measure_offset: float | None
    score_quarters: float | None
    tempo: float
    confidence: float

    def to_json(self) -> dict:
        def r(x, nd):
            return None if x is None else round(float(x), nd)

        return {"t": round(self.t, 3), "state": self.state, "source": self.source, "measure": self.measure,
                "measure_offset": r(self.measure_offset, 3), "score_quarters": r(self.score_quarters, 3),
                "tempo": r(self.tempo, 4), "confidence": r(self.confidence, 4)}


class Follower:
    """Follow mono 44.1 kHz audio in one piece.

    Parameters
    ----------
    piece : Piece
    score_fps : float
        Frame rate of the score's feature sequence (frames per score second).
    chroma_params : ChromaParams
    tracker_params : TrackerParams
    tempo_candidates : tuple of float
        When following from the start without a tempo (``--piece``), one tracker per candidate tempo
        (score seconds per audio second) runs, and at each frame the one picked by :meth:`_consensus`
        (confidence, agreement with the others, nearness to the notated tempo) is reported. The
        notated tempo (verovio's, often a default) can be far from the player's, and the DTW's slope
        constraint (1/2 .. 2) needs a start within that range. A tracker that loses the music (a pause, a
        passage it cannot tell from another) rarely recovers by itself; with several running, another
        one can still hold the position.
    decide_after_s : float or None
        If given, keep only the candidate picked after this many seconds of sound (cheaper: one
        tracker); ``None`` (default): all candidates run to the end (about 0.04 CPU-s per audio
        second in 2048-sample blocks, without the STFT and the note activations).
    support_weight, switch_margin, tempo_prior : float
        See :meth:`_consensus`.

    Notes
    -----
    :meth:`process` computes its own spectrogram frames and, with :attr:`ChromaParams.note_onsets`
    (the default), the note activations of its own :class:`~companion.transcription.transcriber.
    Transcriber` (made on first use); in the full pipeline both come from the engine's transcriber
    instead, through :meth:`process_spec`, which also explains how the frames still waiting for their
    activations are followed.
    """

    def __init__(self, piece: Piece, *, score_fps: float = 50.0, chroma_params: ChromaParams | None = None,
                 tracker_params: TrackerParams | None = None,
                 tempo_candidates: tuple[float, ...] = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0),
                 decide_after_s: float | None = None, support_weight: float = 0.1,
                 switch_margin: float = 0.15, tempo_prior: float = 0.3) -> None:
        from companion.transcription.features import IncrementalFeatures

        self.piece = piece
        self.chroma_params = chroma_params or ChromaParams()
        self.score = score_features(piece, fps=score_fps, params=self.chroma_params)
        # the STFT for process(); with note onsets the transcriber's (made on first use) gives it
        self.features = None if self.chroma_params.note_onsets else IncrementalFeatures(SAMPLE_RATE)
        self._transcriber = None
        self.chroma = AudioChroma(sample_rate=SAMPLE_RATE, params=self.chroma_params)
        self.tracker_params = tracker_params or TrackerParams()
        self.tempo_candidates = tuple(tempo_candidates)
        self.decide_after_s = None if decide_after_s is None else float(decide_after_s)
        self.support_weight = float(support_weight)
        self.switch_margin = float(switch_margin)
        self.tempo_prior = float(tempo_prior)
        self.tracker = OnlineTracker(self.score, params=self.tracker_params)
        self._candidates: list[OnlineTracker] = []
        self._sound_frames = 0
        self._clear_waiting(0)
        self.seed_at_start()

    # ------------------------------------------------------------------------------------- control
    @property
    def start_quarters(self) -> float:
        """The position of the piece's first sounding score frame (unfolded quarters)."""
        first = int(self.score.silent.argmin()) if (~self.score.silent).any() else 0
        return float(self.score.quarters[first])

    def seed_at_start(self) -> None:
        """Seed at the first note of the piece at notated tempo (the start of ``--piece``)."""
        q0 = self.start_quarters
        self.tracker.seed(q0, 1.0)
        self._candidates = []
        self._sound_frames = 0
        self._pick = -1
        if len(self.tempo_candidates) > 1:
            for tempo in self.tempo_candidates:
                tr = OnlineTracker(self.score, params=self.tracker_params)
                tr.seed(q0, tempo)
                self._candidates.append(tr)

    def seed(self, position_quarters: float, tempo: float = 1.0, *, piece: Piece | None = None) -> None:
        """Re-seed (any time), optionally in another piece (the identifier's answer)."""
        if piece is not None and piece is not self.piece:
            self.piece = piece
            self.score = score_features(piece, fps=self.score.fps, params=self.chroma_params)
            self.tracker.set_score(self.score)
        self._candidates = []
        self.tracker.seed(position_quarters, tempo)
        # the position is the player's now: the frames still waiting for their activations are past
        self._clear_waiting(self._n_frames, self._n_acts)

    def _clear_waiting(self, frame: int, n_acts: int = 0) -> None:
        """No frame waits for its activations; the next one is ``frame``."""
        self._waiting = np.zeros((0, self.chroma_params.n_features))
        self._waiting_silent = np.zeros(0, bool)
        self._n_frames = self._next_frame = int(frame)  # spectrogram frames seen; the first waiting
        self._n_acts = int(n_acts)  # activation frames seen

    def reset(self) -> None:
        """Forget the audio and the position; seeded at the start again."""
        for analysis in (self.features, self._transcriber):
            if analysis is not None:
                analysis.reset()
        self._clear_waiting(0)
        self.chroma.reset()
        self.tracker.reset()
        self.tracker._frame = 0
        self.seed_at_start()

    # ------------------------------------------------------------------------------------- process
    def process_spec(self, spec: np.ndarray, activations: np.ndarray | None = None, *,
                     first_frame: int | None = None, activations_first: int | None = None) -> TrackResult:
        """Track a block of magnitude spectrogram frames ``(n, 1025)`` (the shared STFT).

        With :attr:`ChromaParams.note_onsets`, also the transcriber's note activations completed by the
        same block (``(m, 88)``, :attr:`Transcriber.last_activations
        <companion.transcription.transcriber.Transcriber.last_activations>`), which lag the spectrum by
        the network's look-ahead. The trackers settle on each frame once its activations are in; the
        frames still waiting for theirs are followed provisionally, with the spectral difference as
        their onset part, from a checkpoint that is then restored. The result has one entry per
        spectrogram frame of the block, as without activations: provisional for the frames still
        waiting.

        Parameters
        ----------
        first_frame, activations_first : int, optional
            Global frame index of ``spec``'s and ``activations``' first row (the stream's frame
            counter; default: right after the previous block's). A follower made in the middle of a
            stream starts at its first block.
        """
        feats, silent = self.chroma.process(spec)
        if not self.chroma_params.note_onsets:
            return self._advance(feats, silent)
        if activations is None:
            raise ValueError("note_onsets: the transcriber's activations are needed with the spectrogram")
        if first_frame is not None and first_frame > self._n_frames and not len(self._waiting):
            self._n_frames = self._next_frame = int(first_frame)  # (a follower started mid-stream)
        first_new = self._n_frames
        self._n_frames += len(spec)
        self._waiting = np.concatenate([self._waiting, feats])
        self._waiting_silent = np.concatenate([self._waiting_silent, silent])
        a0 = self._n_acts if activations_first is None else int(activations_first)
        self._n_acts = a0 + len(activations)
        # the waiting frames whose activations are in: settle on them
        k = max(0, min(self._n_acts, self._n_frames) - self._next_frame)
        parts = []
        if k:
            x = self._waiting[:k].copy()
            x[:, self.chroma_params.n_chroma:] = activation_onsets(
                activations[self._next_frame - a0:self._next_frame - a0 + k], self.chroma_params.activation_floor)
            settled = self._advance(x, self._waiting_silent[:k])
            parts.append(settled[max(0, first_new - self._next_frame):])
            self._waiting, self._waiting_silent = self._waiting[k:], self._waiting_silent[k:]
            self._next_frame += k
        if len(self._waiting):  # the rest provisionally
            parts.append(self._provisional()[max(0, first_new - self._next_frame):])
        return TrackResult.concat(parts) if parts else self._advance(feats[:0], silent[:0])

    def _provisional(self) -> TrackResult:
        """Follow the frames waiting for their activations from a checkpoint, then restore it. Of the
        start-tempo candidates, only the one reported now follows them (a switch of candidates waits for
        settled frames): the provisional frames are followed again and again, block after block."""
        if self._candidates and self._pick < 0:  # none reported yet: all of them, and their consensus
            state = self._checkpoint()
            ahead = self._advance(self._waiting, self._waiting_silent, fast=True)
            self._restore(state)
            return ahead
        tr = self._candidates[self._pick] if self._candidates else self.tracker
        state = tr.checkpoint()
        ahead = tr.process(self._waiting, self._waiting_silent, fast=True)
        tr.restore(state)
        return ahead

    def _checkpoint(self) -> tuple:
        """The start-tempo candidates' state and their consensus's."""
        return ([tr.checkpoint() for tr in self._candidates], list(self._candidates), self.tracker, self._pick,
                self._sound_frames)

    def _restore(self, state: tuple) -> None:
        states, self._candidates, self.tracker, self._pick, self._sound_frames = state
        for tr, st in zip(self._candidates, states):
            tr.restore(st)

    def _advance(self, feats: np.ndarray, silent: np.ndarray, fast: bool = False) -> TrackResult:
        """Advance the tracker, or the start-tempo candidates and their consensus, by feature frames."""
        if not self._candidates:
            return self.tracker.process(feats, silent, fast=fast)
        results = [tr.process(feats, silent, fast=fast) for tr in self._candidates]
        n = len(silent)
        sound = self._sound_frames + np.cumsum(~silent)
        self._sound_frames = int(sound[-1]) if n else self._sound_frames
        pick = self._consensus(np.stack([r.path_frame for r in results]), np.stack([r.confidence for r in results]),
                               np.stack([r.tempo for r in results]))
        decide = (np.zeros(0, int) if self.decide_after_s is None
                  else np.nonzero(sound >= self.decide_after_s * self.tracker_params.audio_fps)[0])
        if len(decide):
            k = int(decide[0])
            win = int(pick[k])
            pick[k:] = win
            log.debug("start tempo: %.2f (candidates %s)", self.tempo_candidates[win], self.tempo_candidates)
            self.tracker = self._candidates[win]
            self._candidates = []
        elif n:
            self.tracker = self._candidates[int(pick[-1])]  # the one reported now
        cols = np.arange(n)
        return TrackResult(*(np.stack([getattr(r, f) for r in results])[pick, cols] for f in RESULT_FIELDS))

    def analyse(self, block: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The spectrogram frames (and, with :attr:`ChromaParams.note_onsets`, the note activations)
        that a block of mono 44.1 kHz samples completes; ``None``: the end of the signal."""
        if not self.chroma_params.note_onsets:
            fb = self.features.process(block) if block is not None else self.features.flush()
            return fb.spec, None
        if self._transcriber is None:
            from companion.transcription.transcriber import Transcriber

            self._transcriber = Transcriber(sample_rate=SAMPLE_RATE)
        tr = self._transcriber
        tr.process(block) if block is not None else tr.flush()
        return tr.last_features.spec, tr.last_activations

    def process(self, block: np.ndarray) -> TrackResult:
        """Track a block of mono samples at 44.1 kHz (any length); one result per completed frame."""
        return self.process_spec(*self.analyse(block))

    def _consensus(self, pos: np.ndarray, conf: np.ndarray, tempo: np.ndarray) -> np.ndarray:
        """Per frame, the candidate with the highest confidence plus ``support_weight`` times the number
        of candidates (itself included) within 1 score second of it. The confidence (path cost against
        the window's mean cost) tells a path that fits from one that merely drifts, whatever the
        local spectrum; the support term lets the candidates that converge on the same position win
        near-ties. (Support first, as before, failed when several wrong fast candidates ran ahead
        together; the lowest raw cost favours positions with a flat spectrum.) The reported candidate
        changes only when another one's score exceeds its own by ``switch_margin``: switching back and
        forth between candidates at different positions makes the reported position jump.

        The score also has a prior for the notated tempo: minus ``tempo_prior`` times ``|log(tempo)|``
        (the candidate's current tempo estimate, 1 = notated). In ASAP the players start at 0.8-1.2x
        of it, a few slow movements at 0.6-0.7x (the scores as verovio times them); where two
        candidates fit about as well, usually on a repetitive texture whose figures a path at 0.7x can
        match one figure behind, the one nearer the notated tempo is the likelier. Chosen on the three
        development sets of the tracking benchmark (tuning, 0.25, 0.75 offsets; 19786 notes): 0 / 0.1
        / 0.2 / 0.3 / 0.5 gave 90.7 / 91.6 / 91.7 / 92.0 / 91.4 % of the notes in the right bar and
        80.4 / 82.6 / 83.5 / 84.0 / 83.5 % within 250 ms (bench/results/tracking.md).

        Parameters
        ----------
        pos, conf, tempo : np.ndarray [shape=(n_candidates, n_frames)]

        Returns
        -------
        pick : np.ndarray [shape=(n_frames,), dtype=int]
            The candidate to report (with the switching margin; the one kept at a decision).
        """
        if pos.shape[1] == 0:
            return np.zeros(0, int)
        near = np.abs(pos[:, None, :] - pos[None, :, :]) <= self.score.fps  # (c, c, n)
        support = near.sum(axis=1).astype(float)  # (c, n)
        key = conf + self.support_weight * support - self.tempo_prior * np.abs(np.log(np.maximum(tempo, 1e-6)))
        best = np.argmax(key, axis=0)
        if self.switch_margin <= 0:
            return best
        pick = np.empty(pos.shape[1], int)
        cur = self._pick
        for k in range(pos.shape[1]):
            b = int(best[k])
            if cur < 0 or key[b, k] > key[cur, k] + self.switch_margin:
                cur = b
            pick[k] = cur
        self._pick = cur
        return pick

    def flush(self) -> TrackResult:
        """Complete the last frames of a finite signal."""
        return self.process_spec(*self.analyse(None))

    def position(self, result: TrackResult, k: int, t: float) -> ScorePosition:
        """The :class:`ScorePosition` of entry ``k`` of ``result`` at audio time ``t``."""
        st = STATE_NAMES[int(result.state[k])]
        if result.bar[k] < 0:
            return ScorePosition(t, st, self.piece.meta.source, None, None, None, float(result.tempo[k]),
                                 float(result.confidence[k]))
        q = float(result.score_quarters[k])
        b = int(result.bar[k])
        bars = self.piece.bars
        # the shown bar may be the next one (the bar of the next onset, TrackerParams.snap_display)
        return ScorePosition(t, st, self.piece.meta.source, str(bars["number"][b]),
                             max(0.0, q - float(bars["start_quarters"][b])), q, float(result.tempo[k]),
                             float(result.confidence[k]))


def follow_audio(piece: Piece, audio: np.ndarray, *, block_size: int = 2048,
                 tracker_params: TrackerParams | None = None, chroma_params: ChromaParams | None = None,
                 score_fps: float = 50.0) -> tuple[TrackResult, np.ndarray]:
    """Follow a whole signal offline, through the same block-by-block path as live input.

    Parameters
    ----------
    piece : Piece
    audio : np.ndarray [shape=(n_samples,)]
        Mono, 44.1 kHz.
    block_size : int
        Samples per block.

    Returns
    -------
    result : TrackResult
        One entry per spectrogram frame.
    available_s : np.ndarray [shape=(n_frames,)]
        Audio time at which each entry became available (input consumed when it was computed).
    """
    f = Follower(piece, score_fps=score_fps, chroma_params=chroma_params, tracker_params=tracker_params)
    out: list[TrackResult] = []
    avail: list[np.ndarray] = []
    audio = np.asarray(audio, np.float32).reshape(-1)
    for start in range(0, len(audio), block_size):
        block = audio[start:start + block_size]
        r = f.process(block)
        out.append(r)
        avail.append(np.full(len(r), (start + len(block)) / SAMPLE_RATE))
    r = f.flush()
    out.append(r)
    avail.append(np.full(len(r), len(audio) / SAMPLE_RATE))
    return TrackResult.concat(out), np.concatenate(avail)
