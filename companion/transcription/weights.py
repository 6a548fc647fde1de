"""Weights and filterbanks of madmom's piano note BRNN (Böck & Schedl 2012), without pickle at run time.

``models/notes_brnn.npz`` holds the network weights and the three logarithmic filterbanks as plain
arrays. It is generated from madmom's shipped model (``madmom/models/notes/2013/notes_brnn.pkl``,
CC BY-NC-SA 4.0, see ``models/README.md``) by::

    .venv/bin/python -m companion.transcription.weights            # writes models/notes_brnn.npz

Where the ``.npz`` is absent (e.g. an installed wheel without the repository's ``models/``), the
arrays are converted from madmom's model in memory when first needed.

Array names: ``fb_<frame_size>`` ``(frame_size/2, n_bands)``; for layer ``l`` in 0..2 and direction
``d`` in ``fwd``/``bwd``: ``l{l}_{d}_W`` ``(n_in, 88)``, ``l{l}_{d}_R`` ``(88, 88)``, ``l{l}_{d}_b``
``(88,)``; the output layer ``out_W`` ``(176, 88)``, ``out_b`` ``(88,)``. madmom computes
``h_t = tanh(x_t W + h_{t-1} R + b)`` with zero initial state; the backward layer runs on the reversed
sequence and its output is stacked after the forward one.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

__all__ = ["FRAME_SIZES", "NPZ_PATH", "convert_from_madmom", "load_arrays", "load_filterbanks",
           "save_npz"]

log = logging.getLogger(__name__)

FRAME_SIZES: tuple[int, ...] = (1024, 2048, 4096)
NPZ_PATH = Path(__file__).resolve().parents[2] / "models" / "notes_brnn.npz"


def convert_from_madmom() -> dict[str, np.ndarray]:
    """Read madmom's notes BRNN and build its filterbanks (needs madmom, via :mod:`companion._madmom`).

    Returns
    -------
    dict of str to np.ndarray (float32), see the module docstring for names and shapes.
    """
    from companion._madmom import madmom  # noqa: F401  (installs the import shim)
    from madmom.audio.filters import LogarithmicFilterbank
    from madmom.audio.stft import fft_frequencies
    from madmom.ml.nn import NeuralNetwork
    from madmom.models import NOTES_BRNN

    out: dict[str, np.ndarray] = {}
    for size in FRAME_SIZES:
        fb = LogarithmicFilterbank(fft_frequencies(size // 2, 44100), num_bands=12, fmin=30, fmax=17000,
                                   norm_filters=True, unique_filters=True)
        out[f"fb_{size}"] = np.asarray(fb, dtype=np.float32)
    nn = NeuralNetwork.load(NOTES_BRNN[0])
    if len(nn.layers) != 4:
        raise ValueError(f"unexpected notes BRNN layout: {len(nn.layers)} layers")
    for li, layer in enumerate(nn.layers[:3]):
        for d, sub in (("fwd", layer.fwd_layer), ("bwd", layer.bwd_layer)):
            if sub.activation_fn.__name__ != "tanh" or np.any(sub.init != 0):
                raise ValueError("unexpected notes BRNN recurrent layer (not tanh / non-zero init)")
            out[f"l{li}_{d}_W"] = np.asarray(sub.weights, np.float32)
            out[f"l{li}_{d}_R"] = np.asarray(sub.recurrent_weights, np.float32)
            out[f"l{li}_{d}_b"] = np.asarray(sub.bias, np.float32)
    last = nn.layers[3]
    if last.activation_fn is not None and last.activation_fn.__name__ != "linear":
        raise ValueError("unexpected notes BRNN output activation")
    out["out_W"] = np.asarray(last.weights, np.float32)
    out["out_b"] = np.asarray(last.bias, np.float32)
    return out


@functools.lru_cache(maxsize=1)
def load_arrays() -> dict[str, np.ndarray]:
    """The model arrays, from :data:`NPZ_PATH` when present, else converted from madmom."""
    if NPZ_PATH.is_file():
        with np.load(NPZ_PATH, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        log.debug("loaded %s", NPZ_PATH)
    else:
        log.info("%s not found; converting madmom's notes BRNN in memory", NPZ_PATH)
        arrays = convert_from_madmom()
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def load_filterbanks() -> list[np.ndarray]:
    """Filterbanks for :data:`FRAME_SIZES`, each ``(frame_size/2, n_bands)`` float32."""
    arrays = load_arrays()
    return [arrays[f"fb_{n}"] for n in FRAME_SIZES]


def save_npz(path: Path = NPZ_PATH) -> Path:
    """Convert madmom's model and write it as a compressed ``.npz`` (no pickle)."""
    arrays = convert_from_madmom()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


if __name__ == "__main__":  # pragma: no cover
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else NPZ_PATH
    print(save_npz(target))
