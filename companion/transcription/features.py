"""Incremental multi-resolution spectral features of the Böck & Schedl piano note BRNN.

Each STFT frame is computed exactly once, as soon as the samples it covers have arrived; nothing is
re-run over the past. The features equal madmom's offline ``RNNPianoNoteProcessor`` pre-processing
(to float32 rounding) for any split of the signal into blocks:

* three STFTs with Hann windows of 1024, 2048 and 4096 samples, hop 441 samples (100 fps at 44.1 kHz);
  frame ``k`` is centred on sample ``k * 441`` and zero padded outside the signal (madmom's
  ``FramedSignal`` with ``origin='center'``; an offline signal of ``n`` samples has ``ceil(n / 441)``
  frames);
* magnitude spectrogram without the Nyquist bin, filtered with madmom's logarithmic triangular
  filterbank (12 bands per octave, 30 Hz-17 kHz, normalised filters): 69, 81 and 91 bands;
* ``log10(5 x + 1)``;
* the positive difference to the frame ``diff_frames`` earlier (1, 1 and 2 frames; madmom's
  ``diff_ratio=0.5``), zero for the first ``diff_frames`` frames;
* stacked as ``[spec_1024, diff_1024, spec_2048, diff_2048, spec_4096, diff_4096]``: 482 values.

The 2048-sample magnitude spectrum (with its Nyquist bin, 1025 values) is exposed as
:attr:`FeatureBlock.spec`, so that the score tracker computes its chroma from it and no second STFT
runs.

References
----------
.. [1] Sebastian Böck and Markus Schedl, "Polyphonic Piano Note Transcription with Recurrent Neural
       Networks", Proc. ICASSP 2012.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

from companion.transcription.weights import FRAME_SIZES, load_filterbanks

__all__ = ["FeatureBlock", "IncrementalFeatures", "HOP_SIZE", "SAMPLE_RATE", "FPS", "N_FEATURES",
           "SPEC_FRAME_SIZE", "diff_frames_for"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HOP_SIZE = 441
FPS = SAMPLE_RATE / HOP_SIZE
#: window of the spectrum shared with the tracker
SPEC_FRAME_SIZE = 2048
N_FEATURES = 482


def diff_frames_for(frame_size: int, hop_size: int = HOP_SIZE, diff_ratio: float = 0.5) -> int:
    """madmom's ``_diff_frames``: frames back to where the Hann window first exceeds ``diff_ratio``."""
    window = np.hanning(frame_size)
    sample = int(np.argmax(window > float(diff_ratio) * window.max()))
    diff_samples = len(window) / 2 - sample
    return int(max(1, round(diff_samples / hop_size)))


@dataclass(frozen=True)
class FeatureBlock:
    """Feature frames completed by one call of :meth:`IncrementalFeatures.process`.

    Attributes
    ----------
    first_frame : int
        Global index of row 0; frame ``k`` is centred on sample ``k * hop_size``.
    spec : np.ndarray [shape=(n_frames, 1025), dtype=float32]
        Magnitude STFT with a 2048-sample Hann window (bins 0 .. 22050 Hz, Nyquist included).
    features : np.ndarray [shape=(n_frames, 482), dtype=float32]
        Input of the note BRNN.
    """

    first_frame: int
    spec: np.ndarray
    features: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.features.shape[0])

    @staticmethod
    def empty(first_frame: int) -> "FeatureBlock":
        return FeatureBlock(first_frame, np.zeros((0, SPEC_FRAME_SIZE // 2 + 1), np.float32),
                            np.zeros((0, N_FEATURES), np.float32))


class IncrementalFeatures:
    """Computes the BRNN features frame by frame as samples arrive.

    Parameters
    ----------
    sample_rate : int
        Must be 44100 (the model's rate); resample before (the audio sources do).
    hop_size : int
        Samples between frames (441 -> 100 fps).

    Notes
    -----
    Frame ``k`` needs the samples up to ``k * hop_size + 2048`` (half the largest window), so a frame
    is completed 2048 samples (46 ms) after its centre. :meth:`flush` completes the frames of the
    zero-padded end of a finite signal, as madmom does offline.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, hop_size: int = HOP_SIZE) -> None:
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"IncrementalFeatures needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        self.sample_rate = int(sample_rate)
        self.hop_size = int(hop_size)
        self._max_size = max(FRAME_SIZES)
        self._half = self._max_size // 2
        self._filterbanks = [fb.astype(np.float32) for fb in load_filterbanks()]
        self._filterbanks_t = [scipy.sparse.csr_matrix(fb.T) for fb in self._filterbanks]  # (n_bands, bins)
        self._windows = [np.hanning(n) for n in FRAME_SIZES]
        self._diff_frames = [diff_frames_for(n, self.hop_size) for n in FRAME_SIZES]
        self._spec_index = FRAME_SIZES.index(SPEC_FRAME_SIZE)
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample is sample 0 again."""
        self._buf = np.zeros(self._half, np.float32)  # samples [buf_start, buf_start + len)
        self._buf_start = -self._half
        self.n_samples = 0
        self.n_frames = 0  # frames completed so far
        self._flushed = False
        # last max(diff_frames) log-filtered rows per resolution, oldest first
        self._hist = [np.zeros((d, fb.shape[1]), np.float32)
                      for d, fb in zip(self._diff_frames, self._filterbanks)]

    @property
    def frames_ready(self) -> int:
        """Number of frames whose samples have all arrived."""
        last = (self.n_samples - self._half) // self.hop_size  # k * hop + half <= n
        return max(0, last + 1)

    def process(self, block: np.ndarray) -> FeatureBlock:
        """Add samples and compute every frame they complete.

        Parameters
        ----------
        block : np.ndarray [shape=(n_samples,)]
            Mono audio at 44.1 kHz, any length (also 0).

        Returns
        -------
        FeatureBlock
        """
        if self._flushed:
            raise RuntimeError("IncrementalFeatures.process() after flush(); call reset() first")
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if x.size:
            self._buf = np.concatenate([self._buf, x])
            self.n_samples += x.size
        return self._compute(self.frames_ready)

    def flush(self) -> FeatureBlock:
        """End of a finite signal: complete its last frames with zero padding (``ceil(n / hop)`` frames
        in all, as madmom offline). Call :meth:`reset` before feeding a new signal."""
        if self._flushed:
            return FeatureBlock.empty(self.n_frames)
        total = -(-self.n_samples // self.hop_size)
        need_end = (total - 1) * self.hop_size + self._half
        have_end = self._buf_start + len(self._buf)
        if need_end > have_end:
            self._buf = np.concatenate([self._buf, np.zeros(need_end - have_end, np.float32)])
        out = self._compute(total)
        self._flushed = True
        return out

    def _compute(self, upto: int) -> FeatureBlock:
        first = self.n_frames
        n = upto - first
        if n <= 0:
            return FeatureBlock.empty(first)
        starts = (np.arange(first, upto) * self.hop_size - self._half - self._buf_start)
        view = np.lib.stride_tricks.sliding_window_view(self._buf, self._max_size)
        frames = view[starts]  # (n, 4096) float32
        feats = []
        spec_out = None
        for i, size in enumerate(FRAME_SIZES):
            off = self._half - size // 2
            windowed = frames[:, off:off + size] * self._windows[i]  # float64, as madmom
            mag = np.abs(scipy.fft.rfft(windowed, axis=1).astype(np.complex64))  # (n, size/2+1)
            if i == self._spec_index:
                spec_out = mag
            # sparse product (no BLAS): each value is summed in a fixed order whatever the number of
            # frames a block completes, so the features do not depend on the block size
            filt = np.asarray(self._filterbanks_t[i] @ mag[:, :size // 2].T).T
            logspec = np.log10(np.float32(5.0) * filt + np.float32(1.0)).astype(np.float32)
            d = self._diff_frames[i]
            ext = np.concatenate([self._hist[i], logspec])  # rows: frames first-d .. upto-1
            diff = np.maximum(ext[d:] - ext[:-d], 0.0)
            idx = np.arange(first, upto)
            diff[idx < d] = 0.0  # madmom: the first diff_frames frames have no difference
            self._hist[i] = ext[-d:]
            feats.append(logspec)
            feats.append(diff.astype(np.float32))
        self.n_frames = upto
        keep_from = upto * self.hop_size - self._half  # first sample still needed by frame `upto`
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._buf_start = keep_from
        return FeatureBlock(first, np.ascontiguousarray(spec_out, dtype=np.float32),
                            np.ascontiguousarray(np.hstack(feats), dtype=np.float32))
