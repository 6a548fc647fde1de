"""The library panel: the database's pieces, a search box, and "Add scores..."."""

from __future__ import annotations

import logging
import queue
import threading

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu,
                               QProgressBar, QPushButton, QStyle, QStyledItemDelegate, QVBoxLayout, QWidget)

from companion.score.model import PieceMeta

__all__ = ["LibraryPanel"]

log = logging.getLogger(__name__)

PID_ROLE = Qt.ItemDataRole.UserRole
COMPOSER_ROLE = Qt.ItemDataRole.UserRole + 1


class _PieceDelegate(QStyledItemDelegate):
    """Two lines per piece: the title, and the composer in grey; elided to the panel's width."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt API
        h = option.fontMetrics.height()
        return QSize(160, 2 * h + 12)

    def paint(self, painter, option, index) -> None:
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, option.palette.color(QPalette.ColorRole.Highlight))
        r = option.rect.adjusted(8, 5, -8, -5)
        fm = option.fontMetrics
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        title = index.data(Qt.ItemDataRole.DisplayRole) or ""
        painter.drawText(QRect(r.left(), r.top(), r.width(), fm.height()), Qt.AlignmentFlag.AlignLeft,
                         QFontMetrics(bold).elidedText(title, Qt.TextElideMode.ElideRight, r.width()))
        painter.setFont(option.font)
        painter.setPen(QColor("#e8e8e8") if selected else QColor("#7a756c"))
        composer = index.data(COMPOSER_ROLE) or ""
        painter.drawText(QRect(r.left(), r.top() + fm.height() + 2, r.width(), fm.height()), Qt.AlignmentFlag.AlignLeft,
                         fm.elidedText(composer, Qt.TextElideMode.ElideRight, r.width()))
        painter.restore()


class LibraryPanel(QWidget):
    """Lists pieces; emits :attr:`pieceChosen` with a piece id when the user picks one.

    Adding scores runs ``build_database`` in a thread; its progress and report come back through a
    queue drained by a timer, and :attr:`databaseChanged` fires when the build wrote a new generation.
    """

    pieceChosen = Signal(int)
    databaseChanged = Signal()
    message = Signal(str, str)  # (title, text) for a message box

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db_path = ""
        self._metas: list[PieceMeta] = []
        self.search = QLineEdit(placeholderText="Search title, composer or file")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.list = QListWidget()
        self.list.setItemDelegate(_PieceDelegate(self.list))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setUniformItemSizes(True)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        self.count = QLabel()
        self.count.setStyleSheet("color: #6b665e;")
        self.identify = QCheckBox("Identify the piece automatically")
        self.identify.setEnabled(False)
        self.identify.setToolTip("Open a score database to identify pieces while they are played.")
        self.add = QPushButton("Add scores…")
        self.add.setToolTip("Add MusicXML, MEI, Humdrum, ABC or MIDI files (or folders) to the database")
        add_menu = QMenu(self.add)
        add_menu.addAction("Score files…", self._ask_add)
        add_menu.addAction("A folder of scores…", self._ask_add_folder)
        self.add.setMenu(add_menu)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        title = QLabel("<b>Library</b>")
        lay.addWidget(title)
        lay.addWidget(self.search)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.count)
        lay.addWidget(self.identify)
        lay.addWidget(self.add)
        lay.addWidget(self.progress)
        self._build_events: queue.Queue = queue.Queue()
        self._build_thread: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._drain_build)

    # --------------------------------------------------------------------------------------- content
    def set_pieces(self, db_path: str, metas: list[PieceMeta]) -> None:
        self.db_path = db_path
        self._metas = list(metas)
        self.list.clear()
        for pid, m in enumerate(self._metas):
            item = QListWidgetItem(m.title)
            item.setData(PID_ROLE, pid)
            item.setData(COMPOSER_ROLE, m.composer or "")
            item.setToolTip(m.source)
            self.list.addItem(item)
        self._filter(self.search.text())

    def select(self, pid: int) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(PID_ROLE) == pid:
                self.list.setCurrentItem(item)
                return

    def visible_pids(self) -> list[int]:
        return [self.list.item(i).data(PID_ROLE) for i in range(self.list.count()) if not self.list.item(i).isHidden()]

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        shown = 0
        for i in range(self.list.count()):
            item = self.list.item(i)
            m = self._metas[item.data(PID_ROLE)]
            hay = f"{m.title} {m.composer} {m.source}".lower()
            hide = not all(w in hay for w in words)
            item.setHidden(hide)
            shown += not hide
        total = len(self._metas)
        self.count.setText(f"{shown} of {total} pieces" if words else f"{total} pieces")

    def _activated(self, item: QListWidgetItem) -> None:
        self.pieceChosen.emit(int(item.data(PID_ROLE)))

    # ------------------------------------------------------------------------------------ add scores
    def _ask_add(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add scores", "", "Scores (*.musicxml *.xml *.mxl *.mei *.krn *.abc *.mid *.midi);;All files (*)")
        if files:
            self.add_scores(files)

    def _ask_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of scores (searched recursively)")
        if folder:
            self.add_scores([folder])

    def add_scores(self, paths: list[str]) -> None:
        """Add files or folders to the database in a worker thread (progress shown here)."""
        if self._build_thread is not None and self._build_thread.is_alive():
            self.message.emit("Add scores", "A build is already running.")
            return
        if not self.db_path:
            self.message.emit("Add scores", "No database is open.")
            return
        self.add.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Reading scores…")
        db_path, events = self.db_path, self._build_events

        def work() -> None:
            from companion.db import DatabaseError, build_database

            try:
                report = build_database(db_path, paths, on_progress=lambda d, n, s: events.put(("progress", (d, n, s))))
                events.put(("done", report))
            except DatabaseError as exc:
                events.put(("error", str(exc)))
            except Exception as exc:  # shown, with the traceback in the log
                log.exception("adding scores failed")
                events.put(("error", f"Adding scores failed: {exc}"))

        self._build_thread = threading.Thread(target=work, name="companion-db-build", daemon=True)
        self._build_thread.start()
        self._timer.start()

    def _drain_build(self) -> None:
        while True:
            try:
                kind, payload = self._build_events.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                done, total, src = payload
                self.progress.setRange(0, max(int(total), 1))
                self.progress.setValue(int(done))
                self.progress.setFormat(f"%v / %m  {src.rsplit('/', 1)[-1]}")
                continue
            self._timer.stop()
            self.add.setEnabled(True)
            self.progress.setVisible(False)
            if kind == "error":
                self.message.emit("Add scores", payload)
                return
            report = payload
            lines = [f"Added {len(report.added)}, updated {len(report.updated)}, "
                     f"unchanged {len(report.unchanged)}."]
            if report.failed:
                lines.append(f"{len(report.failed)} file(s) could not be read:")
                lines += [f"• {p.rsplit('/', 1)[-1]}: {why}" for p, why in report.failed[:12]]
            if report.failed:
                self.message.emit("Add scores", "\n".join(lines))
            if report.generation is not None:
                self.databaseChanged.emit()
            return
