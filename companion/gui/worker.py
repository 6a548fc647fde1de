"""The GUI's pipeline side, without Qt: a thread that follows an input and a keep-latest mailbox.

The worker thread runs the follower over an input's blocks and puts each new position into a
:class:`LatestQueue` (the GUI only ever needs the newest one; older ones are overwritten, never
queued up), and errors and the end of the input into an ordinary queue (never dropped). The GUI
drains both with a timer (:mod:`companion.gui.bridge`), so it never waits on the pipeline.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Iterable, Iterator

import numpy as np

from companion.pipeline import LatestQueue  # re-exported: the GUI's keep-latest mailbox
from companion.score.model import Piece

__all__ = ["LatestQueue", "FollowWorker", "AudioPlayer", "level_dbfs", "paced_blocks",
           "warm_up"]

log = logging.getLogger(__name__)


def warm_up(*, transcriber: bool = False) -> None:
    """Load the pipeline's heavy parts now (in the GUI thread, before the window shows).

    Their first use otherwise happens in the worker thread, and importing numba's compiled tracker
    (about 1 s) or torch (about 3 s here) holds the interpreter lock for long stretches: the window
    would freeze when the player starts. Failures are logged; the job reports them when it runs.
    """
    from companion.score.model import BAR_DTYPE, NOTE_DTYPE, PieceMeta

    try:
        from companion.tracking.follower import Follower

        notes = np.zeros(8, NOTE_DTYPE)
        notes["onset_quarters"] = notes["onset_s"] = np.arange(8) * 0.5
        notes["duration_quarters"] = 0.5
        notes["pitch"] = 60 + np.arange(8)
        bars = np.zeros(1, BAR_DTYPE)
        bars[0] = (0.0, 0.0, "1", "")
        follower = Follower(Piece(PieceMeta("warm-up", "", ""), notes, bars))  # loads the compiled kernels
        follower.process_spec(np.zeros((10, 1025), np.float32), np.zeros((10, 88), np.float32))
    except Exception:  # the follow job will report it
        log.debug("warming up the tracker failed", exc_info=True)
    if transcriber:
        try:
            from companion.transcription.transcriber import Transcriber

            Transcriber()
        except Exception:
            log.debug("warming up the transcriber failed", exc_info=True)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of a block in dB full scale (-120 for silence)."""
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(20.0 * np.log10(rms + 1e-12), -120.0)


def paced_blocks(signal: np.ndarray, sample_rate: int, *, block_size: int = 2048, realtime: bool = False,
                 stop: threading.Event | None = None) -> Iterator:
    """Blocks of a signal, each yielded no earlier than its end time when ``realtime`` (a late consumer
    gets the blocks that are due at once, so it catches up)."""
    import time

    from companion.audio.sources import AudioBlock

    t0 = time.monotonic()
    for start in range(0, len(signal), block_size):
        block = signal[start:start + block_size]
        if realtime:
            delay = t0 + (start + len(block)) / sample_rate - time.monotonic()
            if delay > 0 and stop is not None:
                stop.wait(delay)
            elif delay > 0:
                time.sleep(delay)
        if stop is not None and stop.is_set():
            return
        yield AudioBlock(block, start, sample_rate)


class FollowWorker(threading.Thread):
    """Moves positions from a producer (e.g. :func:`companion.gui.inputs.audio_job`'s) into a
    :class:`LatestQueue`.

    Parameters
    ----------
    make_positions : callable
        Called in the thread with a stop event; returns an iterable of position dicts. Building the
        follower happens there too, so the GUI thread never waits for it.
    positions : LatestQueue
    events : queue.Queue
        Receives ``("error", message)``, ``("info", message)`` and finally ``("finished", n_positions)``.
    """

    def __init__(self, make_positions: Callable[[threading.Event], Iterable[dict]], *, positions: LatestQueue,
                 events: queue.Queue) -> None:
        super().__init__(name="companion-follow", daemon=True)
        self._make = make_positions
        self.positions = positions
        self.events = events
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        n = 0
        try:
            for pos in self._make(self.stop_event):
                self.positions.put(pos)
                n += 1
                if self.stop_event.is_set():
                    break
        except Exception as exc:  # shown to the user as a message, logged with its traceback
            from companion.audio.sources import AudioError
            from companion.score.model import ScoreError

            if isinstance(exc, (AudioError, ScoreError, OSError, ValueError, KeyError)):
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                log.warning("following stopped: %s", msg)
                self.events.put(("error", str(msg)))
            else:
                log.exception("following failed")
                self.events.put(("error", f"Following stopped because of an internal error: {exc}"))
        finally:
            self.events.put(("finished", n))


class AudioPlayer:
    """Plays a signal to the default output device while it is followed (sounddevice).

    ``start()`` returns False (and :attr:`error` says why) when there is no usable output device;
    the caller then follows silently.
    """

    def __init__(self, signal: np.ndarray, sample_rate: int) -> None:
        self.signal = np.asarray(signal, np.float32).reshape(-1)
        self.sample_rate = int(sample_rate)
        self.error = ""
        self._stream = None
        self._pos = 0

    def _callback(self, outdata, frames, time_info, status) -> None:  # pragma: no cover - PortAudio
        chunk = self.signal[self._pos:self._pos + frames]
        outdata[:len(chunk), 0] = chunk
        outdata[len(chunk):, 0] = 0.0
        self._pos += frames

    def start(self) -> bool:
        try:
            import sounddevice as sd

            sd.query_devices(None, kind="output")
            self._stream = sd.OutputStream(samplerate=self.sample_rate, channels=1, dtype="float32",
                                           callback=self._callback)
            self._stream.start()
            return True
        except Exception as exc:  # PortAudioError, ValueError (no device), OSError (no library)
            self.error = f"No audio output device ({exc}); following silently."
            self._stream = None
            return False

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # pragma: no cover - device vanished
                log.debug("closing the output stream failed", exc_info=True)
            self._stream = None
