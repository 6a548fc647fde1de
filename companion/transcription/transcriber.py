"""Block-wise piano transcription with madmom's note BRNN: one object for live and offline use.

Online (:meth:`Transcriber.process`), every feature frame ``j`` gets its activation from the
bidirectional network run on a short window of frames around it (``window_frames``, 170 ms by default,
ending ``lookahead_frames`` after ``j``): the bidirectional network of Böck & Schedl [1]_ with a
bounded future, so that notes come out with a fixed delay; the windows completed by one block run as
one torch batch. Offline (:meth:`Transcriber.transcribe`
with ``online=False``) the network sees the whole signal at once, exactly as madmom does. Both paths
share the features (:class:`~companion.transcription.features.IncrementalFeatures`) and the causal peak
picking (:class:`~companion.transcription.peaks.NotePeakPicker`).

A note at frame ``j`` is emitted once the samples up to frame ``j + lookahead_frames + post_max`` are
complete, i.e. ``(lookahead_frames + post_max) * 10 ms + 46 ms`` (half the 4096 window) after its
frame centre, plus the wait for the block that completes it.

References
----------
.. [1] Sebastian Böck and Markus Schedl, "Polyphonic Piano Note Transcription with Recurrent Neural
       Networks", Proc. ICASSP 2012.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from companion.events import NoteEvent, perf_notes
from companion.transcription.brnn import LOWEST_PITCH, N_KEYS, NoteBRNN
from companion.transcription.features import FPS, SAMPLE_RATE, FeatureBlock, IncrementalFeatures
from companion.transcription.peaks import Peak, NotePeakPicker

__all__ = ["Transcriber", "transcribe_file", "peaks_to_events"]

log = logging.getLogger(__name__)


def peaks_to_events(peaks: np.ndarray, *, fps: float = FPS) -> list[NoteEvent]:
    """Picked peaks (dtype :data:`~companion.transcription.peaks.Peak`) -> note events.

    The velocity grows with the activation peak (an activation of 1 gives velocity 100).
    """
    return [NoteEvent(float(p["frame"]) / fps, int(p["key"]) + LOWEST_PITCH,
                      int(np.clip(round(float(p["value"]) * 100.0), 1, 127))) for p in peaks]


class Transcriber:
    """Audio blocks in, piano note onsets out.

    Parameters
    ----------
    sample_rate : int
        Rate of the input (44100; the audio sources resample to it).
    window_frames : int
        Frames of the network's window around each frame in online mode. The default, 17 frames
        (170 ms, 80 ms of look-ahead), keeps the median latency under 150 ms; on the tuning excerpts
        it found as many notes as 21 frames with 80 ms look-ahead and 0.7 % fewer than the centred
        210 ms window (see ``bench/results/transcription.md``).
    lookahead_frames : int or None
        Frames of the window after the frame itself; ``None`` centres the window.
    threshold, pre_max, post_max : float, int, int
        Peak picking (see :class:`~companion.transcription.peaks.NotePeakPicker`); tuned on rendered
        ASAP excerpts that the benchmark does not use (``transcribe_bench --dev``).
    combine_s : float
        Onsets of one key closer than this are merged into the first.
    num_threads : int or None
        torch threads while the network runs.
    """

    def __init__(self, *, sample_rate: int = SAMPLE_RATE, window_frames: int = 17,
                 lookahead_frames: int | None = None, threshold: float = 0.2, pre_max: int = 1,
                 post_max: int = 0, combine_s: float = 0.05, num_threads: int | None = 1) -> None:
        if window_frames < 1:
            raise ValueError("window_frames must be >= 1")
        la = window_frames // 2 if lookahead_frames is None else int(lookahead_frames)
        if not 0 <= la < window_frames:
            raise ValueError("lookahead_frames must be in [0, window_frames)")
        self.sample_rate = int(sample_rate)
        self.window_frames = int(window_frames)
        self.lookahead_frames = la
        self.past_frames = self.window_frames - 1 - la
        self.features = IncrementalFeatures(self.sample_rate)
        self.net = NoteBRNN(num_threads=num_threads)
        self._picker_args = dict(threshold=threshold, pre_max=pre_max, post_max=post_max,
                                 combine_frames=int(round(combine_s * FPS)), n_keys=N_KEYS)
        self.picker = NotePeakPicker(**self._picker_args)
        self.reset()

    # ------------------------------------------------------------------ online
    def reset(self) -> None:
        """Start a new stream at sample 0."""
        self.features.reset()
        self.picker.reset()
        self._feat = np.zeros((0, self.features_dim), np.float32)
        self._feat_first = 0
        self._next_act = 0  # first frame without an activation
        self._flushed = False
        #: the feature frames of the last :meth:`process` call (for the tracker's chroma)
        self.last_features: FeatureBlock = FeatureBlock.empty(0)
        #: the note activations completed by the last call (``(n, 88)``, frames from
        #: :attr:`last_activations_first` on; for the tracker's onset feature)
        self.last_activations = np.zeros((0, N_KEYS), np.float32)
        self.last_activations_first = 0

    @property
    def features_dim(self) -> int:
        return 482

    @property
    def n_samples(self) -> int:
        """Samples consumed so far (the audio clock)."""
        return self.features.n_samples

    @property
    def latency_frames(self) -> int:
        """Frames between a note's frame and the last frame needed to emit it."""
        return self.lookahead_frames + self.picker.lookahead

    def process(self, block) -> list[NoteEvent]:
        """Feed the next block of audio; return the notes it completes.

        Parameters
        ----------
        block : np.ndarray [shape=(n_samples,)] or AudioBlock
            Mono float32 audio at :attr:`sample_rate`, any length.

        Returns
        -------
        list of NoteEvent, ``onset_s`` on the stream's sample clock
        """
        samples = getattr(block, "samples", block)
        rate = getattr(block, "sample_rate", self.sample_rate)
        if int(rate) != self.sample_rate:
            raise ValueError(f"block at {rate} Hz, transcriber expects {self.sample_rate} Hz")
        fb = self.features.process(samples)
        self.last_features = fb
        self._add_features(fb)
        upto = self._feat_first + len(self._feat) - self.lookahead_frames
        self.last_activations_first = self._next_act
        act = self.last_activations = self._online_activations(upto, complete=True)
        return peaks_to_events(self.picker.process(act))

    def flush(self) -> list[NoteEvent]:
        """End of stream: complete the last frames (zero padding, as offline) and their notes."""
        if self._flushed:  # nothing more: no frames, no activations either
            self.last_features = FeatureBlock.empty(self._feat_first + len(self._feat))
            self.last_activations = np.zeros((0, N_KEYS), np.float32)
            self.last_activations_first = self._next_act
            return []
        fb = self.features.flush()
        self.last_features = fb
        self._add_features(fb)
        end = self._feat_first + len(self._feat)
        self.last_activations_first = self._next_act
        act = self.last_activations = self._online_activations(end, complete=False)
        peaks = np.concatenate([self.picker.process(act), self.picker.flush()])
        self._flushed = True
        return peaks_to_events(peaks)

    def _add_features(self, fb: FeatureBlock) -> None:
        if fb.n_frames:
            self._feat = np.concatenate([self._feat, fb.features])

    def _online_activations(self, upto: int, *, complete: bool) -> np.ndarray:
        """Activations of frames ``_next_act .. upto - 1`` from windows around each frame."""
        lo = self._next_act
        if upto <= lo:
            return np.zeros((0, N_KEYS), np.float32)
        end = self._feat_first + len(self._feat)
        out = np.zeros((upto - lo, N_KEYS), np.float32)
        frames = np.arange(lo, upto)
        full = (frames - self.past_frames >= 0) & (frames + self.lookahead_frames < end)
        if full.any():  # equal-length windows: one batch
            js = frames[full]
            starts = js - self.past_frames - self._feat_first
            view = np.lib.stride_tricks.sliding_window_view(self._feat, self.window_frames, axis=0)
            wins = view[starts].transpose(0, 2, 1)  # (n, window_frames, 482)
            out[full] = self.net.windows(wins, self.past_frames)
        for i in np.nonzero(~full)[0]:  # the stream's first frames, or its last ones on flush
            j = int(frames[i])
            a = max(0, j - self.past_frames)
            b = min(end, j + self.lookahead_frames + 1)
            w = self._feat[a - self._feat_first:b - self._feat_first]
            out[i] = self.net.windows(w[None], j - a)[0]
        self._next_act = upto
        keep_from = upto - self.past_frames
        if keep_from > self._feat_first:
            self._feat = self._feat[keep_from - self._feat_first:]
            self._feat_first = keep_from
        return out

    # ------------------------------------------------------------------ offline
    def activations(self, signal: np.ndarray) -> np.ndarray:
        """Full-context activations of a whole signal (madmom's offline result).

        Parameters
        ----------
        signal : np.ndarray [shape=(n_samples,)]

        Returns
        -------
        np.ndarray [shape=(ceil(n_samples / 441), 88)]
        """
        feats = IncrementalFeatures(self.sample_rate)
        f = np.vstack([feats.process(signal).features, feats.flush().features])
        return self.net.full(f)

    def transcribe(self, signal: np.ndarray, *, online: bool = False, block_size: int = 1024) -> np.ndarray:
        """Transcribe a whole signal.

        Parameters
        ----------
        signal : np.ndarray [shape=(n_samples,)]
            Mono audio at :attr:`sample_rate`.
        online : bool
            Feed it block by block through :meth:`process` (the live path) instead of running the
            network over the whole signal. Resets the stream state either way.
        block_size : int
            Samples per block for ``online``.

        Returns
        -------
        np.ndarray, dtype PERF_NOTE_DTYPE, sorted by onset
        """
        x = np.asarray(signal, np.float32).reshape(-1)
        self.reset()
        if online:
            events: list[NoteEvent] = []
            for i in range(0, len(x), max(1, int(block_size))):
                events.extend(self.process(x[i:i + block_size]))
            events.extend(self.flush())
        else:
            picker = NotePeakPicker(**self._picker_args)
            act = self.activations(x)
            peaks = np.concatenate([picker.process(act), picker.flush()]) if len(act) else np.zeros(0, Peak)
            events = peaks_to_events(peaks)
        self.reset()
        return perf_notes(events)


def transcribe_file(path: str | os.PathLike, *, online: bool = False, transcriber: Transcriber | None = None,
                    block_size: int = 1024) -> np.ndarray:
    """Transcribe an audio file (wav/flac/ogg/mp3, any rate and channel count).

    Parameters
    ----------
    path : str or PathLike
    online : bool
        Use the block-wise live path (blocks of ``block_size`` samples at 44.1 kHz).
    transcriber : Transcriber or None
        Reuse this one (its stream state is reset); default: a new one with default parameters.

    Returns
    -------
    np.ndarray, dtype PERF_NOTE_DTYPE; onsets in seconds from the start of the file

    Raises
    ------
    companion.audio.sources.AudioFileError
        Unreadable, unsupported or corrupt file.
    """
    from companion.audio.sources import load_audio

    signal = load_audio(path, sample_rate=SAMPLE_RATE)
    tr = transcriber or Transcriber()
    return tr.transcribe(signal, online=online, block_size=block_size)


