"""``companion transcribe INPUT... [--online] [-o OUT.mid] [--json]``: piano audio to notes (DESIGN.md §2).

Prints one line per INPUT, in order. With ``--json``:
``{"input", "notes": [{"onset", "pitch", "velocity"}], "rtf"}`` (onsets in seconds from the start of
INPUT; ``rtf`` = processing time / input duration), or ``{"input", "error"}`` when INPUT cannot be
read. ``--online`` feeds the audio block by block through the live path. A ``.mid`` INPUT gives its
notes directly (the MIDI keyboard path, no transcription). ``-o`` writes the notes of the (single)
INPUT to a MIDI file. Exit status 0 when every input was transcribed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("companion.transcribe")

MIDI_EXTENSIONS = (".mid", ".midi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (.wav .flac .ogg .mp3) or .mid")
    parser.add_argument("--online", action="store_true", help="use the block-wise live path")
    parser.add_argument("--block-size", type=int, default=1024, metavar="N",
                        help="samples per block with --online (default 1024)")
    parser.add_argument("-o", "--output", metavar="OUT.mid", help="write the notes to a MIDI file (one INPUT)")
    parser.add_argument("--json", action="store_true", help="print only JSON lines on stdout")


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    from companion.audio.midi import read_midi_notes
    from companion.audio.sources import AudioError, load_audio
    from companion.transcription.features import SAMPLE_RATE

    if args.output and len(args.inputs) != 1:
        msg = "-o/--output takes exactly one INPUT"
        if args.json:
            _emit({"error": msg})
        else:
            print(f"error: {msg}", file=sys.stderr)
        return 2
    if args.block_size < 1:
        print("error: --block-size must be >= 1", file=sys.stderr)
        return 2
    transcriber = None
    if any(Path(i).suffix.lower() not in MIDI_EXTENSIONS for i in args.inputs):
        from companion.transcription.transcriber import Transcriber

        transcriber = Transcriber()  # loaded once, outside the timing of each input
    status = 0
    for inp in args.inputs:
        t0 = time.perf_counter()
        try:
            if Path(inp).suffix.lower() in MIDI_EXTENSIONS:
                notes = read_midi_notes(inp)
                duration = float(notes["onset_s"][-1]) if len(notes) else 0.0
            else:
                signal = load_audio(inp, sample_rate=SAMPLE_RATE)
                duration = len(signal) / SAMPLE_RATE
                notes = transcriber.transcribe(signal, online=args.online, block_size=args.block_size)
        except AudioError as e:
            status = 1
            log.error("%s", e)
            if args.json:
                _emit({"input": inp, "error": str(e)})
            else:
                print(f"{inp}: error: {e}")
            continue
        elapsed = time.perf_counter() - t0
        rtf = elapsed / duration if duration > 0 else 0.0
        if args.output:
            from companion.audio.render import write_midi

            write_midi(args.output, notes["onset_s"], notes["pitch"], 0.3, notes["velocity"])
            log.info("wrote %s", args.output)
        if args.json:
            _emit({"input": inp,
                   "notes": [{"onset": round(float(n["onset_s"]), 4), "pitch": int(n["pitch"]),
                              "velocity": int(n["velocity"])} for n in notes],
                   "rtf": round(rtf, 4)})
        else:
            print(f"{inp}: {len(notes)} notes, {duration:.1f} s, rtf {rtf:.3f}")
            for n in notes:
                print(f"{float(n['onset_s']):9.3f}\t{int(n['pitch'])}\t{int(n['velocity'])}")
    return status
