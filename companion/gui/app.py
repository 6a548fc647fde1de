"""Start the window (``companion gui``), or follow a file to a point and save a screenshot.

Only :mod:`companion.gui` imports PySide6; the core stays Qt-free.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

__all__ = ["run_gui", "make_app", "take_screenshot"]

log = logging.getLogger(__name__)

#: Qt warnings that verovio's SVG triggers and that do not change what is drawn
_QUIET = ("Point size <= 0", "Could not add child element", "qt.svg", "propagateSizeHints")


def _qt_message_handler(mode, context, message: str) -> None:
    from PySide6.QtCore import QtMsgType

    if mode in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
        log.error("Qt: %s", message)
    elif mode == QtMsgType.QtWarningMsg and not any(q in message for q in _QUIET):
        log.info("Qt: %s", message)
    else:
        log.debug("Qt: %s", message)


def _display_ok(batch: bool) -> bool:
    """On Linux without a display: screenshots go offscreen; the window needs one (say so, exit)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    if batch:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return True
    print("companion gui: no display (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it on a desktop, "
          "under Xvfb (xvfb-run companion gui ...), or save a picture with --screenshot PNG.", file=sys.stderr)
    return False


def make_app():
    """The QApplication (created once), with Qt's messages routed to logging."""
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_qt_message_handler)
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Piano Music Companion")
        app.setOrganizationName("companion")
        app.setStyle("Fusion")
    return app


def _resolve_piece(window, query: str):
    """Show ``query``: a database piece (path or unique title substring), else a score file."""
    from companion.score.load import load_score
    from companion.score.model import ScoreError

    if window.db is not None:
        try:
            return window.open_piece(window.db.find(query))
        except KeyError as exc:
            if not Path(query).expanduser().is_file():
                window.show_message("Piece", str(exc.args[0] if exc.args else exc))
                return False
    try:
        piece = load_score(query)
    except ScoreError as exc:
        window.show_message("Piece", str(exc))
        return False
    return window.open_score(piece)


def read_positions(path: str | os.PathLike):
    """Position objects from a JSON-lines file (``companion follow --json`` output); bad lines skipped."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: not JSON, skipped", path, i)
                continue
            if isinstance(obj, dict) and "t" in obj:
                yield obj


def take_screenshot(window, png: str | os.PathLike, *, input_path: str | None = None,
                    positions_path: str | None = None, at_s: float) -> bool:
    """Follow ``input_path`` (or replay ``positions_path``) as fast as possible up to ``at_s`` seconds
    of input, then save the window to ``png``."""
    from PySide6.QtCore import QEventLoop, QTimer

    app = make_app()
    loop = QEventLoop()
    window.bridge.finished.connect(lambda _n: QTimer.singleShot(0, loop.quit))
    if positions_path:
        if not Path(positions_path).is_file():
            window.show_message("Positions", f"{positions_path}: no such file")
            return False
        window.follow_positions(read_positions(positions_path), label="Replaying positions", stop_at_s=at_s)
    elif not window.follow_file(input_path, play=False, realtime=False, stop_at_s=at_s):
        return False
    loop.exec()
    window.bridge.drain()
    window.view.flush_layout()
    window.view.ensure_rendered()  # all visible pages, and the highlight landed on its bar
    for _ in range(3):
        app.processEvents()
    if window.piece is None:
        window.show_message("Screenshot", "no piece was shown (not identified?)")
        return False
    ok = window.grab().save(str(png))
    if not ok:
        window.show_message("Screenshot", f"could not write {png}")
    return ok


def screenshot_report(window, png, input_path: str, at_s: float) -> dict:
    """What the screenshot shows, as one JSON object (for tests and reviewers)."""
    view = window.view
    pos = window.last_position or {}
    rect = view.highlight_rect()
    top_left = view.mapTo(window, rect.topLeft().toPoint()) if rect.isValid() else None
    return {
        "screenshot": str(png),
        "input": str(input_path),
        "at": at_s,
        "t": pos.get("t"),
        "state": pos.get("state"),
        "piece": window.piece.meta.source if window.piece else None,
        "measure": pos.get("measure"),
        "score_quarters": pos.get("score_quarters"),
        "measure_id": view.highlighted_id or None,
        "pages": [p + 1 for p in view.view_pages],
        "highlight_px": [top_left.x(), top_left.y(), round(rect.width()), round(rect.height())] if top_left else None,
    }


def run_gui(args) -> int:
    """``companion gui``: returns the exit status."""
    from companion.gui.settings import Settings, open_settings
    from companion.gui.window import MainWindow

    if args.screenshot and not (args.input or args.positions):
        print("companion gui: --screenshot needs --input FILE (or --positions JSONL)", file=sys.stderr)
        return 2
    if args.screenshot and args.positions and not args.piece:
        print("companion gui: --positions needs --piece SOURCE", file=sys.stderr)
        return 2
    batch = bool(args.screenshot)
    if not _display_ok(batch):
        return 1
    app = make_app()
    window = MainWindow(Settings(open_settings()), interactive=not batch, animate_ms=0 if batch else 140)
    db_path = args.db or window.settings.db
    if not db_path:  # first run: the default database (built from music21's corpus when missing)
        try:
            from companion.db.default import ensure_default_db

            db_path = str(ensure_default_db())
        except Exception as exc:  # DatabaseError or a failed build: shown, the window still opens
            window.show_message("Score database", f"The default database could not be built: {exc}")
    from companion.gui.window import identification_available
    from companion.gui.worker import warm_up

    # load numba's tracker and torch (the transcriber: the engine identifies, or finds the bar in a
    # known piece) before the window shows, so that it does not freeze when following starts
    if not args.positions:
        warm_up(transcriber=identification_available())
    if batch:
        window.resize(1400, 900)  # screenshots have a fixed size (the window remembers the user's)
    window.show()  # lay the score out for the window's real size
    app.processEvents()
    if db_path:
        window.open_database(db_path)
    if args.piece:
        _resolve_piece(window, args.piece)
    elif args.input and window.db is not None and identification_available():
        window.library.identify.setChecked(True)  # like `companion follow` without --piece: identify first
    elif window.settings.last_piece and window.db is not None:
        try:
            window.open_piece(window.db.find(window.settings.last_piece))
        except KeyError:
            pass
    if batch:
        ok = (window.piece is not None or window.library.identify.isChecked()) and take_screenshot(window, args.screenshot, input_path=args.input,
                                                          positions_path=args.positions, at_s=float(args.at))
        window.bridge.stop()
        for e in window.errors:
            print(f"companion gui: {e}", file=sys.stderr)
        if ok and getattr(args, "json", False):
            print(json.dumps(screenshot_report(window, args.screenshot, args.input or args.positions,
                                               float(args.at))), flush=True)
        return 0 if ok else 1
    if args.positions:
        window.follow_positions(read_positions(args.positions), label="Replaying positions")
    elif args.input:
        window.follow_file(args.input, play=True)
    else:  # listen to the input device, when there is one (else say how to follow a file)
        from companion.gui.inputs import input_devices

        if not input_devices():
            window.show_info("No audio input device found: choose “Audio or MIDI file…” under Input")
        elif window.piece is not None or window.library.identify.isEnabled():
            window.follow_device(window.settings.input_device or None)
    return int(app.exec())
