"""The companion's main window: library, input choice with level meter, score view, status bar.

Following runs in the bridge's worker thread (:mod:`companion.gui.bridge`); the window only reacts to
its signals. Inputs: an audio device (:class:`~companion.audio.sources.SoundDeviceSource`), a MIDI
keyboard (:class:`~companion.audio.midi.MidiSource`), or an audio file played to the speakers while it
is followed (a MIDI file is followed silently). Without a chosen piece (or with "Identify the piece
automatically"), the engine (:mod:`companion.engine`) identifies the piece while listening, follows
it and re-identifies after jumps; the window opens the piece its positions name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QProgressBar,
                               QSplitter, QToolBar, QToolButton)

from companion.gui.bridge import Bridge
from companion.gui.inputs import (audio_job, changed_since_build, identification_available, input_devices,
                                  midi_inputs, midi_job)
from companion.gui.library import LibraryPanel
from companion.gui.scoreview import ScoreView, bar_of_quarters
from companion.gui.settings import Settings
from companion.score.model import Piece, ScoreError

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

STATE_STYLE = {
    "idle": ("#9a958c", "Idle"),
    "searching": ("#d9a21b", "Searching"),
    "tracking": ("#2e9d57", "Tracking"),
    "lost": ("#c8463c", "Lost"),
}


class MainWindow(QMainWindow):
    """The window. Drive it with :meth:`open_database`, :meth:`open_piece`, :meth:`follow_file`,
    :meth:`follow_device`, :meth:`follow_midi` or :meth:`follow_positions` (a recorded stream).

    Parameters
    ----------
    settings : Settings
    interactive : bool
        False for batch use (``--screenshot``, tests): errors are logged and kept in :attr:`errors`
        instead of shown in message boxes.
    animate_ms : int
        Duration of the highlight's glide between bars (0 for screenshots).
    """

    def __init__(self, settings: Settings, *, interactive: bool = True, animate_ms: int = 140) -> None:
        super().__init__()
        self.settings = settings
        self.interactive = interactive
        self.errors: list[str] = []
        self.db = None
        self.piece: Piece | None = None
        self.last_position: dict | None = None
        self.setWindowTitle("Piano Music Companion")
        self.view = ScoreView(pages_per_view=settings.pages_per_view, zoom=settings.zoom,
                              lead_systems=settings.lead_systems, animate_ms=animate_ms)
        self.library = LibraryPanel()
        self.library.pieceChosen.connect(self.open_piece)
        self.library.databaseChanged.connect(lambda: self.open_database(self.library.db_path))
        self.library.message.connect(self.show_message)
        self.splitter = split = QSplitter()
        split.addWidget(self.library)
        split.addWidget(self.view)
        split.setStretchFactor(1, 1)
        split.setSizes([250, 1000])
        split.setChildrenCollapsible(False)
        self.setCentralWidget(split)
        self.bridge = Bridge(self)
        self.bridge.position.connect(self.on_position)
        self.bridge.level.connect(self.on_level)
        self.bridge.error.connect(lambda m: self.show_message("Input", m))
        self.bridge.info.connect(self.show_info)
        self.bridge.finished.connect(self._on_finished)
        self._make_toolbar()
        self._make_statusbar()
        for keys, step in ((("Left", "Up", "PgUp"), -1), (("Right", "Down", "PgDown", "Space"), +1)):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.activated.connect(lambda s=step: self.view.turn(s))
        QShortcut(QKeySequence.StandardKey.Find, self).activated.connect(self.library.search.setFocus)
        QShortcut(QKeySequence("Escape"), self).activated.connect(self.view.setFocus)
        self.set_state("idle")
        self.resize(QSize(1400, 900))
        geometry = self.settings.store.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        sizes = self.settings.store.value("window/splitter")
        if sizes is not None:
            self.splitter.restoreState(sizes)
        icon = Path(__file__).resolve().parents[2] / "assets" / "companion.svg"  # in a source checkout
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.view.setFocus()  # arrow keys and page-turner pedals turn pages

    # --------------------------------------------------------------------------------------- chrome
    def _make_toolbar(self) -> None:
        tb = QToolBar("Input")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        self.addToolBar(tb)
        tb.addWidget(QLabel(" Input "))
        self.input_combo = QComboBox()
        self.input_combo.setMinimumWidth(260)
        tb.addWidget(self.input_combo)
        self.start_action = QAction("▶  Follow", self)
        self.start_action.setToolTip("Start following the chosen input in the chosen piece")
        self.start_action.triggered.connect(self.toggle_follow)
        tb.addAction(self.start_action)
        self.level = QProgressBar()
        self.level.setRange(-60, 0)
        self.level.setValue(-60)
        self.level.setTextVisible(False)
        self.level.setFixedSize(120, 10)
        self.level.setToolTip("Input level")
        tb.addWidget(self.level)
        tb.addSeparator()
        group = QActionGroup(self)
        for k, text in ((1, "One page"), (2, "Two pages")):
            a = QAction(text, self, checkable=True)
            a.setChecked(self.view.pages_per_view == k)
            a.triggered.connect(lambda _=False, k=k: self.set_pages_per_view(k))
            group.addAction(a)
            tb.addAction(a)
        tb.addSeparator()
        for text, factor in (("−", 1 / 1.15), ("+", 1.15)):
            a = QAction(text, self)
            a.setToolTip("Smaller" if factor < 1 else "Larger")
            a.triggered.connect(lambda _=False, f=factor: self.set_zoom(self.view.zoom * f))
            tb.addAction(a)
        tb.addSeparator()
        menu = QMenu(self)
        turn_group = QActionGroup(self)
        for lead, text in ((0, "Turn on arrival at the next page"), (1, "Turn ahead at the last system"),
                           (2, "Turn ahead at the last two systems")):
            a = QAction(text, self, checkable=True)
            a.setChecked(self.view.lead_systems == lead)
            a.triggered.connect(lambda _=False, n=lead: self.set_lead_systems(n))
            turn_group.addAction(a)
            menu.addAction(a)
        menu.addSeparator()
        beat = QAction("Show the beat", self, checkable=True)
        beat.setChecked(self.view.show_beat)
        beat.toggled.connect(self._set_show_beat)
        menu.addAction(beat)
        button = QToolButton()
        button.setText("Page turns ▾")
        button.setMenu(menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(button)
        self._fill_inputs()

    def _fill_inputs(self) -> None:
        c = self.input_combo
        c.clear()
        for name in input_devices():
            c.addItem(f"🎤  {name}", ("device", name))
        if c.count() == 0:
            c.addItem("No audio input device found", ("none", ""))
        ports = midi_inputs()
        for name in ports:
            c.addItem(f"🎹  {name}", ("midi", name))
        if not ports:
            c.addItem("No MIDI keyboard found", ("none", ""))
        c.addItem("Audio or MIDI file…", ("file", ""))
        model = c.model()
        for i in range(c.count()):
            if c.itemData(i)[0] == "none":
                model.item(i).setEnabled(False)
        saved = self.settings.input_device
        for i in range(c.count()):
            if c.itemData(i)[1] == saved and c.itemData(i)[0] in ("device", "midi"):
                c.setCurrentIndex(i)
        if not c.model().item(c.currentIndex()).isEnabled():
            c.setCurrentIndex(c.findData(("file", "")))

    def _make_statusbar(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel()
        self.piece_label = QLabel("No piece")
        self.conf_label = QLabel()
        self.tempo_label = QLabel()
        self.bar_label = QLabel()
        self.info_label = QLabel()
        self.info_label.setStyleSheet("color: #6b665e;")
        for w in (self.state_label, self.piece_label, self.info_label):
            sb.addWidget(w)
        for w in (self.bar_label, self.conf_label, self.tempo_label):
            w.setMinimumWidth(90)
            sb.addPermanentWidget(w)

    def show_info(self, text: str) -> None:
        """A passing note in the status bar (does not cover the state, piece, bar, tempo)."""
        self.info_label.setText(f"  ·  {text}" if text else "")

    def set_state(self, state: str) -> None:
        colour, text = STATE_STYLE.get(state, STATE_STYLE["idle"])
        self.state = state
        self.state_label.setText(f"<span style='color:{colour}; font-size:14pt'>●</span> <b>{text}</b>")

    def set_pages_per_view(self, k: int) -> None:
        self.view.set_pages_per_view(k)
        self.settings.pages_per_view = k

    def set_lead_systems(self, n: int) -> None:
        """Turn when the player reaches the last ``n`` systems of a page (0: on arrival)."""
        self.view.lead_systems = int(n)
        self.settings.lead_systems = int(n)

    def _set_show_beat(self, on: bool) -> None:
        self.view.show_beat = bool(on)
        self.view.update()

    def set_zoom(self, zoom: float) -> None:
        self.view.set_zoom(zoom)
        self.settings.zoom = self.view.zoom

    def show_message(self, title: str, text: str) -> None:
        """A readable message for the user (a box, or the log in batch mode); never a traceback."""
        self.errors.append(text)
        log.warning("%s: %s", title, text)
        if self.interactive:
            QMessageBox.warning(self, title, text)
        else:
            self.show_info(text)

    # -------------------------------------------------------------------------------------- library
    def open_database(self, path: str | os.PathLike) -> bool:
        from companion.db import Database, DatabaseError

        try:
            self.db = Database.open(path)
        except DatabaseError as exc:
            self.db = None
            self.library.set_pieces(str(path), [])
            self.show_message("Score database", str(exc))
            return False
        self.library.set_pieces(str(self.db.path), self.db.metas)
        self.settings.db = str(self.db.path)
        can = identification_available() and len(self.db.metas) > 0
        self.library.identify.setEnabled(can)
        self.library.identify.setToolTip("Find the piece and the bar while listening, follow it, and find it "
                                         "again after a jump" if can else "Needs a score database and the engine")
        return True

    def open_piece(self, pid: int, *, keep_following: bool = False) -> bool:
        """Show database piece ``pid``."""
        if self.db is None:
            return False
        try:
            piece = self.db.piece(pid)
        except (IndexError, OSError) as exc:
            self.show_message("Open piece", str(exc))
            return False
        ok = self.open_score(piece, validate=changed_since_build(self.db, pid), keep_following=keep_following)
        if ok:
            self.library.select(pid)
        return ok

    def open_score(self, piece: Piece, *, validate: bool = True, keep_following: bool = False) -> bool:
        """Show ``piece`` (its ``meta.source`` is rendered); stops following the previous piece unless
        ``keep_following`` (the follow job itself identified this piece).

        Returns False when the score cannot be drawn (the message says why); a MIDI score has no
        notation to draw, but it is followed (bar numbers in the status bar) and counts as shown.
        """
        if not keep_following:
            self.stop()
        self.piece = piece
        try:
            self.view.load(piece.meta.source, piece, validate=validate)
            shown = True
        except ScoreError as exc:  # still followable: the status bar shows the bar number
            self.view.clear(str(exc))
            shown = piece.meta.source.lower().endswith((".mid", ".midi"))  # no notation to show, not an error
            if not shown:
                self.show_message("Open piece", str(exc))
        self.settings.last_piece = piece.meta.source
        m = piece.meta
        self.piece_label.setText(f"<b>{m.title}</b>" + (f" — {m.composer}" if m.composer else ""))
        self.setWindowTitle(f"{m.title} — Piano Music Companion")
        self.bar_label.setText("")
        return shown

    # ------------------------------------------------------------------------------------ following
    def toggle_follow(self) -> None:
        if self.bridge.running:
            self.stop()
            return
        kind, name = self.input_combo.currentData() or ("none", "")
        if kind == "file":
            path, _ = QFileDialog.getOpenFileName(
                self, "Follow a recording", "",
                "Audio or MIDI (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.mid *.midi);;All files (*)")
            if path:
                self.follow_file(path, play=True)
        elif kind == "device":
            self.follow_device(name)
        elif kind == "midi":
            self.follow_midi(port=name)
        else:
            self.show_message("Input", "No usable input: connect an audio input or a MIDI keyboard, "
                                       "or choose a file.")

    def _identify(self) -> bool:
        """Whether the next follow job identifies the piece first (asked for, or no piece chosen)."""
        if self.db is None or not identification_available() or not self.library.identify.isEnabled():
            return False
        return self.library.identify.isChecked() or self.piece is None

    def _check_piece(self) -> bool:
        if self.piece is None and not self._identify():
            self.show_message("Follow", "Pick the piece you will play in the library first.")
            return False
        return True

    def _make_job(self, blocks, *, stop_at_s: float | None = None, finite: bool = True):
        """The follow job for an audio block source: identify first when asked to, else follow the piece."""
        return audio_job(blocks, piece=self.piece, db=self.db if self._identify() else None,
                         levels=self.bridge.levels, stop_at_s=stop_at_s, finite=finite)

    def _open_followed(self, source: str) -> None:
        """The follow job reports a piece that is not shown: show it without stopping the job."""
        if self.db is None:
            return
        try:
            pid = self.db.find(source)
        except KeyError:
            log.warning("the follower reports %s, which is not in the open database", source)
            return
        self.open_piece(pid, keep_following=True)
        if self.piece is not None:
            self.show_info(f"Identified: {self.piece.meta.title}")

    def _make_midi_job(self, events, *, stop_at_s: float | None = None, finite: bool = True):
        """Like :meth:`_make_job` for MIDI note events."""
        return midi_job(events, piece=self.piece, db=self.db if self._identify() else None,
                        levels=self.bridge.levels, stop_at_s=stop_at_s, finite=finite)

    def follow_midi(self, *, port: str | None = None, path: str | None = None, realtime: bool = True,
                    stop_at_s: float | None = None) -> bool:
        """Follow a MIDI keyboard (``port``; None = the first) or a ``.mid`` file (``path``, silently)."""
        if not self._check_piece():
            return False
        from companion.audio.midi import MidiSource
        from companion.audio.sources import AudioError

        try:
            source = MidiSource(port, path=path, realtime=realtime)
        except AudioError as exc:
            self.show_message("MIDI", str(exc))
            return False
        if port is not None:
            self.settings.input_device = port
        job = self._make_midi_job(lambda stop: source, stop_at_s=stop_at_s, finite=path is not None)

        def make(stop):
            try:
                yield from job(stop)
            finally:
                source.close()

        what = Path(path).name if path else (port or "the MIDI keyboard")
        self._started("Listening to identify the piece…" if self._identify() else f"Following {what}")
        self.bridge.start(make, on_stop=source.close)
        return True

    def follow_file(self, path: str, *, play: bool = True, realtime: bool = True,
                    stop_at_s: float | None = None) -> bool:
        """Follow an audio file in the current piece; ``play`` sends it to the speakers meanwhile.
        A MIDI file is followed as note events, silently."""
        if not self._check_piece():
            return False
        if str(path).lower().endswith((".mid", ".midi")):
            if play:
                self.show_info("MIDI files are followed silently")
            return self.follow_midi(path=path, realtime=realtime, stop_at_s=stop_at_s)
        from companion.audio.sources import load_audio
        from companion.gui.worker import AudioPlayer, paced_blocks

        if not Path(path).is_file():
            self.show_message("Audio file", f"{path}: no such file")
            return False
        bridge, loaded = self.bridge, {}
        job = self._make_job(lambda stop: paced_blocks(loaded["signal"], 44100, realtime=realtime, stop=stop),
                             stop_at_s=stop_at_s)

        def make(stop):  # decoding runs here, in the worker thread: the window never waits for it
            loaded["signal"] = load_audio(path, sample_rate=44100)  # AudioFileError -> a message
            player = AudioPlayer(loaded["signal"], 44100) if play else None
            if player is not None and not player.start():
                bridge.post_info(player.error)
            try:
                yield from job(stop)
            finally:
                if player is not None:
                    player.stop()

        self._started("Listening to identify the piece…" if self._identify() else f"Following {Path(path).name}")
        self.bridge.start(make)
        return True

    def follow_device(self, device: str | None) -> bool:
        """Follow live audio from an input device (None or "" = the default device)."""
        if not self._check_piece():
            return False
        from companion.audio.sources import SoundDeviceSource

        self.settings.input_device = device or ""
        source = SoundDeviceSource(device or None)
        job = self._make_job(lambda stop: iter(source), finite=False)

        def make(stop):
            try:
                yield from job(stop)
            finally:
                source.stop()

        self._started("Listening to identify the piece…" if self._identify()
                      else f"Listening to {device or 'the default input'}")
        self.bridge.start(make, on_stop=source.stop)
        return True

    def follow_positions(self, positions, *, label: str = "Following", stop_at_s: float | None = None) -> None:
        """Show a stream of position dicts (scripted, or recorded from ``companion follow --json``)
        through the same worker, keep-latest queue and timer as live following."""

        def make(stop):
            for pos in positions:
                if stop.is_set() or (stop_at_s is not None and float(pos.get("t", 0.0)) > stop_at_s):
                    return
                yield pos

        self._started(label)
        self.bridge.start(make)

    def _started(self, text: str) -> None:
        self.start_action.setText("■  Stop")
        self.set_state("searching")
        self.show_info(text)

    def stop(self) -> None:
        self.bridge.stop()
        self._on_finished(0)

    def _on_finished(self, _n: int) -> None:
        """The job ended: the last state and bar stay shown (a screenshot shows them); no job, no state."""
        self.start_action.setText("▶  Follow")
        self.level.setValue(-60)
        if self.last_position is None and not self.bridge.running:
            self.set_state("idle")

    def on_level(self, dbfs: float) -> None:
        self.level.setValue(int(max(min(dbfs, 0), -60)))

    def on_position(self, pos: dict) -> None:
        """Show a position (``companion follow``'s JSON object)."""
        self.last_position = pos
        self.set_state(str(pos.get("state", "searching")))
        conf = pos.get("confidence")
        tempo = pos.get("tempo")
        self.conf_label.setText(f"confidence {conf:.0%}" if conf is not None else "")
        self.tempo_label.setText(f"tempo ×{tempo:.2f}" if tempo else "")
        src = pos.get("source")
        if src and (self.piece is None or src != self.piece.meta.source):
            self._open_followed(src)  # the engine identified (another) piece: show it
        if self.piece is None or src not in (None, self.piece.meta.source):
            return
        self.view.set_dimmed(pos.get("state") != "tracking")
        bar = bar_of_quarters(self.piece, pos.get("score_quarters"))
        if bar >= 0 and pos.get("state") != "lost":
            self.view.set_bar(bar, pos.get("measure_offset"))
            self.bar_label.setText(f"bar {self.piece.bars['number'][bar]}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.bridge.stop()
        self.settings.store.setValue("window/geometry", self.saveGeometry())
        self.settings.store.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
