"""Audio and MIDI input behind one interface: iterate a source to get timestamped blocks.

* :class:`SoundDeviceSource` - a live input device (sounddevice/PortAudio). The PortAudio callback only
  copies the block and ``put_nowait``-s it into a bounded queue; when the queue is full the block is
  dropped and counted (:attr:`SoundDeviceSource.dropped_blocks`), so the callback never blocks.
* :class:`FileSource` - wav/flac/ogg/mp3 (libsndfile), as fast as possible or paced in real time.
* :class:`~companion.audio.midi.MidiSource` - note events from a MIDI keyboard or a ``.mid`` file.

Audio sources yield :class:`AudioBlock`: mono float32 samples at 44.1 kHz (resampled where the input
has another rate) with ``start_sample`` on the stream's sample clock. Time is ``n_samples /
sample_rate``, never wall time.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["AudioBlock", "AudioError", "AudioFileError", "AudioDeviceError", "StreamResampler",
           "load_audio", "FileSource", "SoundDeviceSource", "AUDIO_EXTENSIONS", "DEFAULT_SAMPLE_RATE"]

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 44100
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")


class AudioError(Exception):
    """Base class of the audio input errors (their message is meant for the user)."""


class AudioFileError(AudioError):
    """An audio file cannot be read (missing, unsupported or corrupt)."""


class AudioDeviceError(AudioError):
    """No usable audio input device."""


@dataclass(frozen=True)
class AudioBlock:
    """A block of mono audio on the stream's sample clock.

    Attributes
    ----------
    samples : np.ndarray [shape=(n_samples,), dtype=float32]
    start_sample : int
        Index of ``samples[0]`` in the stream.
    sample_rate : int
    """

    samples: np.ndarray
    start_sample: int
    sample_rate: int

    @property
    def start_s(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.samples)


class StreamResampler:
    """Block-wise polyphase resampling that equals ``scipy.signal.resample_poly`` on the whole stream.

    Each output sample is computed once, from an input chunk that covers the filter's whole support,
    so block boundaries leave no trace. The delay is the filter's half length (about 11 input samples
    for 48 -> 44.1 kHz).

    Parameters
    ----------
    in_rate, out_rate : int
    """

    def __init__(self, in_rate: int, out_rate: int = DEFAULT_SAMPLE_RATE) -> None:
        g = math.gcd(int(in_rate), int(out_rate))
        self.up, self.down = int(out_rate) // g, int(in_rate) // g
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        # resample_poly's default filter: half length 10 * max(up, down) taps at the upsampled rate
        self._margin = int(math.ceil(10 * max(self.up, self.down) / self.up)) + 2
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # global input index of _buf[0]; always a multiple of `down`
        self._n_in = 0
        self._next_out = 0

    def _out_upto(self, n_in: int) -> int:
        # outputs whose support ends before n_in: (o * down / up) + margin <= n_in
        return max(0, ((n_in - self._margin) * self.up) // self.down + 1) if n_in > self._margin else 0

    def process(self, x: np.ndarray, *, final: bool = False) -> np.ndarray:
        """Resample the next input samples; ``final=True`` ends the stream (zero padding after it)."""
        from scipy.signal import resample_poly

        x = np.asarray(x, np.float32).reshape(-1)
        if self.up == self.down:
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        self._n_in += len(x)
        if final:
            upto = -(-self._n_in * self.up // self.down)  # resample_poly's output length
        else:
            upto = self._out_upto(self._n_in)
        if upto <= self._next_out:
            return np.zeros(0, np.float32)
        # chunk start: a multiple of `down` at least `margin` input samples before the first output
        t0 = self._next_out * self.down / self.up - self._margin
        c0 = max(0, int(math.floor(t0 / self.down)) * self.down)
        c0 = max(c0, self._buf_start)
        chunk = self._buf[c0 - self._buf_start:]
        if final:
            chunk = np.concatenate([chunk, np.zeros(self._margin + self.down, np.float32)])
        y = resample_poly(chunk.astype(np.float64), self.up, self.down)
        o0 = c0 * self.up // self.down
        out = y[self._next_out - o0:upto - o0].astype(np.float32)
        self._next_out = upto
        # drop input no longer needed
        t_keep = self._next_out * self.down / self.up - self._margin
        keep = max(self._buf_start, int(math.floor(max(t_keep, 0) / self.down)) * self.down)
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start:]
            self._buf_start = keep
        return out


def _to_mono(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, np.float32)
    return data.mean(axis=1).astype(np.float32) if data.ndim == 2 else data.reshape(-1)


def load_audio(path: str | os.PathLike, *, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Read a whole audio file as mono float32 at ``sample_rate``.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]

    Raises
    ------
    AudioFileError
        Missing, unsupported or corrupt file (the message says which).
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, not an audio file")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioFileError(f"{p}: not a readable audio file ({_clean(e)})") from None
    x = _to_mono(data)
    if sr != sample_rate and len(x):
        g = math.gcd(int(sr), int(sample_rate))
        x = resample_poly(x.astype(np.float64), sample_rate // g, int(sr) // g).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioFileError(f"{p}: audio contains NaN or infinite samples")
    return x


def _clean(e: Exception) -> str:
    return str(e).replace("\n", " ").strip() or type(e).__name__


class FileSource:
    """Blocks of an audio file, as fast as possible or paced like live input.

    Parameters
    ----------
    path : str or PathLike
        wav/flac/ogg/mp3 (anything libsndfile reads), any rate and channel count.
    block_size : int
        Samples per block at ``sample_rate``.
    realtime : bool
        Deliver each block no earlier than its end time after the first (wall-clock pacing only;
        timestamps always come from the sample counter).
    sample_rate : int

    Raises
    ------
    AudioFileError
        On construction, when the file cannot be read.
    """

    def __init__(self, path: str | os.PathLike, *, block_size: int = 1024, realtime: bool = False,
                 sample_rate: int = DEFAULT_SAMPLE_RATE) -> None:
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.path = Path(path)
        self.block_size = int(block_size)
        self.realtime = bool(realtime)
        self.sample_rate = int(sample_rate)
        self.signal = load_audio(self.path, sample_rate=self.sample_rate)
        self._stop = threading.Event()

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.sample_rate

    def close(self) -> None:
        """Stop an iteration in progress (from another thread)."""
        self._stop.set()

    def __iter__(self) -> Iterator[AudioBlock]:
        self._stop.clear()
        t0 = time.monotonic()
        for start in range(0, len(self.signal), self.block_size):
            if self._stop.is_set():
                return
            block = self.signal[start:start + self.block_size]
            if self.realtime:
                due = t0 + (start + len(block)) / self.sample_rate
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            yield AudioBlock(block, start, self.sample_rate)


class SoundDeviceSource:
    """Live audio from an input device through sounddevice.

    Parameters
    ----------
    device : int, str or None
        Device index or (sub)name, e.g. ``"pulse"``; ``None`` = the default input device.
    sample_rate : int
        Rate of the yielded blocks. The device is opened at this rate when it supports it, else at
        its default rate, and the stream is resampled (:class:`StreamResampler`).
    block_size : int
        Frames per PortAudio callback (at the device's rate).
    channels : int or None
        Channels to capture (mixed to mono); ``None`` = 1.
    queue_blocks : int
        Capacity of the callback queue; when it is full, new blocks are dropped and counted.
    timeout_s : float
        Iteration ends when no block arrives for this long (a stalled device).

    Raises
    ------
    AudioDeviceError
        From :meth:`start` (or iteration), when there is no such input device or it cannot be opened.
    """

    def __init__(self, device: int | str | None = None, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 block_size: int = 1024, channels: int | None = None, queue_blocks: int = 64,
                 timeout_s: float = 2.0) -> None:
        self.device = device
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.channels = int(channels or 1)
        self.timeout_s = float(timeout_s)
        self._queue: queue.Queue = queue.Queue(maxsize=int(queue_blocks))
        self._stream = None
        self._resampler: StreamResampler | None = None
        self.device_rate: int | None = None
        self.device_name: str | None = None
        #: blocks dropped because the queue was full, and PortAudio's input overflows
        self.dropped_blocks = 0
        self.dropped_samples = 0
        self.overflows = 0
        self._n_out = 0

    # -- PortAudio thread: copy and enqueue, nothing else -------------------------------------
    def _callback(self, indata, frames, time_info, status) -> None:  # pragma: no cover - PortAudio
        if status and status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped_blocks += 1
            self.dropped_samples += frames

    def start(self) -> None:
        """Open and start the input stream."""
        import sounddevice as sd

        if self._stream is not None:
            return
        try:
            info = sd.query_devices(self.device, kind="input")
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceError(self._no_device_message(e)) from None
        if int(info.get("max_input_channels", 0)) < 1:
            raise AudioDeviceError(f"audio device {info.get('name')!r} has no input channels")
        self.device_name = str(info["name"])
        rate = self.sample_rate
        try:
            sd.check_input_settings(device=self.device, samplerate=rate, channels=self.channels,
                                    dtype="float32")
        except (sd.PortAudioError, ValueError):
            rate = int(round(float(info["default_samplerate"])))
            log.info("input device %r does not take %d Hz; capturing at %d Hz and resampling",
                     self.device_name, self.sample_rate, rate)
        self.device_rate = rate
        self._resampler = StreamResampler(rate, self.sample_rate) if rate != self.sample_rate else None
        try:
            self._stream = sd.InputStream(device=self.device, samplerate=rate, channels=self.channels,
                                          dtype="float32", blocksize=self.block_size,
                                          callback=self._callback)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as e:
            self._stream = None
            raise AudioDeviceError(f"cannot open audio input {self.device_name!r}: {_clean(e)}") from None
        log.info("capturing from %r at %d Hz", self.device_name, rate)

    def _no_device_message(self, e: Exception) -> str:
        import sounddevice as sd

        try:
            names = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
        except Exception:  # noqa: BLE001 - only for the message
            names = []
        which = "no default audio input device" if self.device is None else \
            f"no audio input device {self.device!r}"
        avail = ", ".join(repr(n) for n in names) if names else "none"
        return f"{which} ({_clean(e)}); input devices available: {avail}"

    def stop(self) -> None:
        """Stop and close the stream (blocks still queued can be read until the queue is empty)."""
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None

    close = stop

    def __enter__(self) -> "SoundDeviceSource":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __iter__(self) -> Iterator[AudioBlock]:
        self.start()
        while True:
            try:
                data = self._queue.get(timeout=self.timeout_s)
            except queue.Empty:
                if self._stream is None or not self._stream.active:
                    return
                log.warning("no audio from %r for %.1f s", self.device_name, self.timeout_s)
                return
            x = _to_mono(data)
            if self._resampler is not None:
                x = self._resampler.process(x)
            if len(x):
                block = AudioBlock(x, self._n_out, self.sample_rate)
                self._n_out += len(x)
                yield block
