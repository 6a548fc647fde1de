"""``companion identify [--db DIR] INPUT... [--top K] [--json]``: piece and bar of MIDI or audio inputs.

Prints one line per INPUT, in order (DESIGN.md §2)::

    {"input": path, "matches": [{"source", "title", "composer", "measure", "measure_offset",
     "confidence", "tempo_ratio", "transposition"}, ...], "elapsed_ms": ...}

``"matches": []`` means "not in the database". An input that cannot be read gives the same line with
``"error": "..."`` and no matches; the command goes on with the next input. ``measure`` is the bar at
the end of the input. MIDI inputs (``.mid``, ``.midi``) are read directly; audio inputs (``.wav .flac
.mp3 .ogg``) are transcribed first and asked with the identifier's parameters for transcribed notes
(``IdentifyParams.for_audio``). Without ``--db`` the default database is used (built on first use).
Exit status: 0 when every input was read, 1 when some input failed, 2 when the database cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MIDI_SUFFIXES = (".mid", ".midi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="MIDI (.mid) or audio (.wav .flac .mp3 .ogg) files")
    parser.add_argument("--db", metavar="DIR", default=None,
                        help="score database (default: the built-in default database)")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="at most K matches per input (default 5)")
    parser.add_argument("--json", action="store_true", help="print only JSON lines on stdout")


def read_input_notes(path: str):
    """Notes (``PERF_NOTE_DTYPE``) of a MIDI or audio file.

    Raises
    ------
    ValueError
        For an unsupported file type, a missing or unreadable file, or when transcription is unavailable.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    if suffix in MIDI_SUFFIXES:
        from companion.audio.midi import read_midi_notes

        try:
            return read_midi_notes(p)
        except Exception as exc:  # AudioFileError and anything mido raises
            raise ValueError(str(exc)) from None
    if suffix in AUDIO_SUFFIXES:
        try:
            from companion.transcription.transcriber import transcribe_file
        except ImportError as exc:
            raise ValueError(f"{p}: audio input needs the transcriber, which is not available ({exc})") from None
        try:
            return transcribe_file(p)
        except Exception as exc:
            raise ValueError(f"{p}: could not transcribe ({type(exc).__name__}: {exc})") from None
    raise ValueError(f"{p}: unsupported input type {suffix!r} "
                     f"(supported: {' '.join(MIDI_SUFFIXES + AUDIO_SUFFIXES)})")


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _print_human(line: dict) -> None:
    print(f"{line['input']}  ({line['elapsed_ms']:.0f} ms)")
    if "error" in line:
        print(f"  error: {line['error']}")
    elif not line["matches"]:
        print("  not in the database")
    for m in line["matches"]:
        who = f"{m['composer']}: " if m["composer"] else ""
        print(f"  {m['confidence']:.2f}  {who}{m['title']}  bar {m['measure']} +{m['measure_offset']:.2f} q"
              f"  tempo x{m['tempo_ratio']:.2f}  transposed {m['transposition']:+d}")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import logging

    from companion.db import Database, DatabaseError

    log = logging.getLogger("companion.identify")
    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.db is None:
            from companion.db.default import ensure_default_db

            db = Database.open(ensure_default_db())
        else:
            db = Database.open(args.db)
        from companion.fingerprint.identify import Identifier, IdentifyParams

        idents = {False: Identifier(db)}  # audio (True) made when first needed
    except (DatabaseError, ValueError, OSError) as exc:
        if args.json:
            _emit({"error": str(exc)})
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.inputs:
        t0 = time.perf_counter()
        line: dict = {"input": path, "matches": []}
        try:
            notes = read_input_notes(path)
            audio = Path(path).suffix.lower() in AUDIO_SUFFIXES
            if audio not in idents:
                idents[audio] = Identifier(db, params=IdentifyParams.for_audio())
            line["matches"] = [m.to_json() for m in idents[audio].identify(notes, top_k=args.top)]
        except ValueError as exc:
            line["error"] = str(exc)
            failed += 1
        except Exception as exc:  # never a traceback for one bad input; go on with the next
            log.debug("identify failed on %s", path, exc_info=True)
            line["error"] = f"{type(exc).__name__}: {exc}"
            failed += 1
        line["elapsed_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        if args.json:
            _emit(line)
        else:
            _print_human(line)
    return 1 if failed else 0
