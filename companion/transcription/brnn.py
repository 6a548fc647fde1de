"""Torch port of madmom's piano note BRNN (Böck & Schedl 2012), full-context and windowed.

Three bidirectional tanh RNN layers with 88 units per direction, then a linear layer 176 -> 88: one
onset activation per piano key (MIDI 21..108) and frame. :func:`companion.transcription.weights`
provides madmom's weights; with them the port reproduces madmom's ``NeuralNetwork`` output to float32
rounding (tested to 1e-5).

References
----------
.. [1] Sebastian Böck and Markus Schedl, "Polyphonic Piano Note Transcription with Recurrent Neural
       Networks", Proc. ICASSP 2012.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import numpy as np
import torch

from companion.transcription.weights import load_arrays

__all__ = ["NoteBRNN", "N_KEYS", "LOWEST_PITCH"]

log = logging.getLogger(__name__)

N_KEYS = 88
LOWEST_PITCH = 21
_HIDDEN = 88


class NoteBRNN:
    """The note BRNN as a torch module with madmom's weights.

    Parameters
    ----------
    num_threads : int or None
        ``torch.set_num_threads`` while running (the process-wide setting is restored afterwards);
        ``None`` leaves torch's setting alone.
    """

    def __init__(self, *, num_threads: int | None = 1) -> None:
        arrays = load_arrays()
        n_in = arrays["l0_fwd_W"].shape[0]
        self.num_threads = num_threads
        self.rnn = torch.nn.RNN(n_in, _HIDDEN, num_layers=3, nonlinearity="tanh", bias=True,
                                batch_first=False, bidirectional=True)
        self.out = torch.nn.Linear(2 * _HIDDEN, N_KEYS)
        with torch.no_grad():
            for li in range(3):
                for d, suffix in (("fwd", ""), ("bwd", "_reverse")):
                    getattr(self.rnn, f"weight_ih_l{li}{suffix}").copy_(
                        torch.tensor(arrays[f"l{li}_{d}_W"].T))
                    getattr(self.rnn, f"weight_hh_l{li}{suffix}").copy_(
                        torch.tensor(arrays[f"l{li}_{d}_R"].T))
                    getattr(self.rnn, f"bias_ih_l{li}{suffix}").copy_(torch.tensor(arrays[f"l{li}_{d}_b"]))
                    getattr(self.rnn, f"bias_hh_l{li}{suffix}").zero_()
            self.out.weight.copy_(torch.tensor(arrays["out_W"].T))
            self.out.bias.copy_(torch.tensor(arrays["out_b"]))
        self.rnn.eval()
        self.out.eval()

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """Inference mode with torch's thread count set to ``num_threads`` for the duration."""
        prev = torch.get_num_threads()
        switch = self.num_threads is not None and prev != self.num_threads
        if switch:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                yield
        finally:
            if switch:
                torch.set_num_threads(prev)

    def full(self, features: np.ndarray) -> np.ndarray:
        """Full-context (offline) activations of a whole sequence.

        Parameters
        ----------
        features : np.ndarray [shape=(n_frames, 482)]

        Returns
        -------
        np.ndarray [shape=(n_frames, 88), dtype=float32]
        """
        f = np.ascontiguousarray(features, dtype=np.float32)
        if f.shape[0] == 0:
            return np.zeros((0, N_KEYS), np.float32)
        with self._inference():
            h, _ = self.rnn(torch.from_numpy(f)[:, None, :])
            return self.out(h)[:, 0, :].numpy().copy()

    def windows(self, windows: np.ndarray, position: int) -> np.ndarray:
        """Activations at one position of many equal-length windows, run as one batch.

        Parameters
        ----------
        windows : np.ndarray [shape=(n_windows, window_frames, 482)]
        position : int
            Row within each window whose activation is wanted.

        Returns
        -------
        np.ndarray [shape=(n_windows, 88), dtype=float32]
        """
        w = np.ascontiguousarray(windows, dtype=np.float32)
        if w.shape[0] == 0:
            return np.zeros((0, N_KEYS), np.float32)
        x = torch.from_numpy(w).transpose(0, 1)  # (window_frames, n_windows, 482)
        with self._inference():
            h, _ = self.rnn(x)
            return self.out(h[position]).numpy().copy()
