"""Audio and MIDI sources: file formats, resampling, corrupt files, missing devices, the callback queue."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from companion.audio.midi import MidiSource, midi_input_names, read_midi_notes
from companion.audio.render import write_midi
from companion.audio.sources import (AudioBlock, AudioDeviceError, AudioFileError, FileSource, SoundDeviceSource,
                                     StreamResampler, load_audio)


def _tone(sr: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("ext,subtype,atol", [(".wav", "FLOAT", 0.0), (".wav", "PCM_16", 1e-4),
                                              (".flac", "PCM_24", 1e-6), (".ogg", "VORBIS", 0.05)])
def test_file_source_formats_give_mono_blocks_on_the_sample_clock(tmp_path, ext, subtype, atol):
    x = _tone(44100, 1.0, channels=2)
    path = tmp_path / f"x{ext}"
    sf.write(path, x, 44100, subtype=subtype)
    src = FileSource(path, block_size=1000)
    blocks = list(src)
    assert all(isinstance(b, AudioBlock) and b.sample_rate == 44100 for b in blocks)
    assert [b.start_sample for b in blocks] == list(range(0, 44100, 1000))
    y = np.concatenate([b.samples for b in blocks])
    assert y.dtype == np.float32 and y.shape == (44100,)
    np.testing.assert_allclose(y, x[:, 0], atol=atol)


def test_mp3_is_read(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no MP3 support (needs >= 1.1)")
    x = _tone(44100, 1.0)
    path = tmp_path / "x.mp3"
    sf.write(path, x, 44100, format="MP3")
    y = load_audio(path)
    assert abs(len(y) - 44100) < 2000 and np.abs(y).max() > 0.1


def test_file_source_resamples_to_44100(tmp_path):
    x = _tone(48000, 1.0)
    path = tmp_path / "x48.wav"
    sf.write(path, x, 48000, subtype="FLOAT")
    y = np.concatenate([b.samples for b in FileSource(path, block_size=4096)])
    np.testing.assert_allclose(y, resample_poly(x.astype(np.float64), 147, 160).astype(np.float32), atol=1e-6)
    assert len(y) == 44100


@pytest.mark.parametrize("rate", [48000, 22050, 96000])
def test_stream_resampler_equals_whole_signal_resampling(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(rate + 123).astype(np.float32)
    r = StreamResampler(rate, 44100)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 2500))
        out.append(r.process(x[i:i + n]))
        i += n
    out.append(r.process(np.zeros(0, np.float32), final=True))
    g = np.gcd(rate, 44100)
    ref = resample_poly(x.astype(np.float64), 44100 // g, rate // g).astype(np.float32)
    np.testing.assert_allclose(np.concatenate(out), ref, atol=1e-6)


def test_corrupt_missing_and_unsupported_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioFileError, match="bad.wav: not a readable audio file"):
        FileSource(bad)
    txt = tmp_path / "notes.txt"
    txt.write_text("not audio at all\n")
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        load_audio(txt)
    with pytest.raises(AudioFileError, match="no such file"):
        load_audio(tmp_path / "missing.flac")
    with pytest.raises(AudioFileError, match="is a directory"):
        load_audio(tmp_path)


def test_realtime_file_source_gives_the_same_blocks(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, _tone(44100, 0.3), 44100)
    fast = list(FileSource(path, block_size=4410))
    paced = list(FileSource(path, block_size=4410, realtime=True))
    assert [b.start_sample for b in paced] == [b.start_sample for b in fast]
    np.testing.assert_array_equal(np.concatenate([b.samples for b in paced]),
                                  np.concatenate([b.samples for b in fast]))


def test_sounddevice_source_without_such_device_raises_clear_error():
    src = SoundDeviceSource(device="no-such-device-xyz")
    with pytest.raises(AudioDeviceError, match="no audio input device 'no-such-device-xyz'"):
        src.start()


def test_sounddevice_source_without_any_input_device_raises_clear_error():
    import sounddevice as sd

    try:
        sd.query_devices(kind="input")
    except sd.PortAudioError:
        pass
    else:
        pytest.skip("this machine has a default input device")
    with pytest.raises(AudioDeviceError, match="no default audio input device"):
        SoundDeviceSource().start()
    with pytest.raises(AudioDeviceError):
        next(iter(SoundDeviceSource()))


def test_callback_drops_and_counts_when_the_queue_is_full():
    src = SoundDeviceSource(queue_blocks=2)
    block = np.ones((256, 1), np.float32)
    for _ in range(5):
        src._callback(block, 256, None, None)  # what PortAudio calls; it must never block
    assert src.dropped_blocks == 3 and src.dropped_samples == 3 * 256
    assert src._queue.qsize() == 2
    block[:] = 0  # the queue holds copies
    assert src._queue.get_nowait().max() == 1.0


def test_midi_file_source_and_notes(tmp_path):
    path = write_midi(tmp_path / "m.mid", np.array([0.5, 0.0, 1.25]), np.array([64, 60, 67]), 0.3,
                      np.array([70, 80, 90]))
    notes = read_midi_notes(path)
    np.testing.assert_allclose(notes["onset_s"], [0.0, 0.5, 1.25], atol=2e-3)
    assert list(notes["pitch"]) == [60, 64, 67] and list(notes["velocity"]) == [80, 70, 90]
    events = list(MidiSource(path=path))
    assert [e.pitch for e in events] == [60, 64, 67]
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(AudioFileError, match="not a readable MIDI file"):
        MidiSource(path=bad)


def test_midi_port_missing_gives_clear_error():
    if midi_input_names():
        pytest.skip("this machine has MIDI inputs")
    with pytest.raises(AudioDeviceError, match="no MIDI input port"):
        MidiSource().start()
