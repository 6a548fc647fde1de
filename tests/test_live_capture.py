"""Live capture through a real PulseAudio null sink (DESIGN.md §3).

The test starts its own PulseAudio daemon (private runtime directory and HOME, so it touches no user
session), plays a recording into the null sink ``vsink`` with ``paplay`` and captures the sink's
monitor with :class:`~companion.audio.sources.SoundDeviceSource` (``device="pulse"``) in a child
process (PortAudio lists ALSA's ``pulse`` device only if a server answers when it initialises). The
captured audio then goes through the live transcription path and must give the recording's notes.
It skips only when PulseAudio is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from companion.audio.sources import load_audio

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo.ogg"
TOOLS = ("pulseaudio", "pactl", "paplay")

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="PulseAudio is not installed (needs pulseaudio, pactl, paplay)")

CAPTURE = r"""
import json, subprocess, sys, time
import numpy as np, soundfile as sf
from companion.audio.sources import SoundDeviceSource
wav, out = sys.argv[1], sys.argv[2]
src = SoundDeviceSource(device="pulse", block_size=1024, timeout_s=2.0)
src.start()
player = subprocess.Popen(["paplay", "--device=vsink", wav])
blocks, done_at = [], None
for b in src:
    blocks.append(b)
    if done_at is None and player.poll() is not None:
        done_at = b.end_sample
    if done_at is not None and b.end_sample - done_at > 0.5 * 44100:
        break
src.stop()
x = np.concatenate([b.samples for b in blocks])
assert [b.start_sample for b in blocks] == list(np.cumsum([0] + [len(b.samples) for b in blocks[:-1]]))
sf.write(out, x, 44100, subtype="FLOAT")
print(json.dumps({"device": src.device_name, "rate": src.device_rate, "dropped": src.dropped_blocks,
                  "paplay": player.returncode}))
"""


@pytest.fixture
def pulse():
    """A private PulseAudio daemon with a null sink ``vsink``; yields the environment to talk to it."""
    run_dir = Path(tempfile.mkdtemp(prefix="pa-"))  # short path: unix socket names are limited
    env = dict(os.environ, PULSE_RUNTIME_PATH=str(run_dir), XDG_RUNTIME_DIR=str(run_dir), HOME=str(run_dir),
               PULSE_STATE_PATH=str(run_dir / "state"))
    env.pop("PULSE_SERVER", None)
    cmd = ["pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--use-pid-file=yes",
           "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=vsink"]
    started = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    try:
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"pulseaudio did not start: rc={started.returncode} {started.stderr.strip()}")
        subprocess.run(["pactl", "set-default-source", "vsink.monitor"], env=env, check=True, timeout=10)
        yield env
    finally:
        subprocess.run(["pulseaudio", "-k"], env=env, capture_output=True, timeout=10)
        pid_file = run_dir / "pid"
        for _ in range(50):  # the daemon removes its pid file when it has exited (it may be empty meanwhile)
            if not pid_file.is_file():
                break
            time.sleep(0.1)
        else:  # still there: pulseaudio -k did not stop it
            words = pid_file.read_text().split() if pid_file.is_file() else []
            if words and words[0].isdigit():
                try:
                    os.kill(int(words[0]), signal.SIGTERM)
                except ProcessLookupError:
                    pass
        shutil.rmtree(run_dir, ignore_errors=True)


def _delay(captured: np.ndarray, original: np.ndarray) -> int:
    """Samples by which ``captured`` lags ``original`` (cross-correlation peak; negative when the
    capture began after the playback: PulseAudio may start the monitor a fragment late)."""
    n = len(captured) + len(original)
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(captured, nfft) * np.conj(np.fft.rfft(original, nfft)), nfft)
    lag = int(np.argmax(c))
    return lag - nfft if lag > nfft // 2 else lag


def test_live_capture_through_pulseaudio_null_sink(pulse, tmp_path):
    from companion.bench.transcribe_bench import match_count
    from companion.events import PERF_NOTE_DTYPE
    from companion.transcription.transcriber import Transcriber

    if not DEMO.is_file():
        pytest.fail(f"{DEMO} is missing from the checkout")
    original = load_audio(DEMO)[: 5 * 44100]
    wav = tmp_path / "play.wav"
    sf.write(wav, original, 44100, subtype="PCM_16")
    out = tmp_path / "captured.wav"
    res = subprocess.run([sys.executable, "-c", CAPTURE, str(wav), str(out)], env=pulse, capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["device"] == "pulse" and info["paplay"] == 0 and info["dropped"] == 0
    captured, sr = sf.read(out, dtype="float32")
    assert sr == 44100
    lag = _delay(captured, original)
    cap_seg, orig_seg = (captured[lag:], original) if lag >= 0 else (captured, original[-lag:])
    n = min(len(cap_seg), len(orig_seg))
    cap_seg, orig_seg = cap_seg[:n], orig_seg[:n]
    assert n > 4 * 44100, f"only {n} samples of the playback were captured (lag {lag})"
    corr = float(np.dot(cap_seg, orig_seg) / (np.linalg.norm(cap_seg) * np.linalg.norm(orig_seg)))
    assert corr > 0.9, f"captured audio does not match what was played (correlation {corr:.2f})"

    tr = Transcriber()
    expected = tr.transcribe(original, online=False)
    live = tr.transcribe(captured, online=True)  # the live path, block by block
    assert len(expected) > 10
    shifted = live.copy()
    shifted["onset_s"] -= lag / 44100
    shifted = shifted[(shifted["onset_s"] >= 0) & (shifted["onset_s"] < len(original) / 44100 - 0.3)]
    ref = expected[expected["onset_s"] < len(original) / 44100 - 0.3].astype(PERF_NOTE_DTYPE)
    m = len(match_count(ref, shifted["onset_s"], shifted["pitch"]))
    f1 = 2 * m / (len(ref) + len(shifted))
    assert f1 >= 0.85, f"live capture notes differ from the file's: F1 {f1:.2f}"
