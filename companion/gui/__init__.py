"""The desktop app (PySide6). The only package that imports Qt; the core never does.

Qt widgets and objects:

* :mod:`~companion.gui.scoreview` - verovio pages in QtSvg, moving bar highlight, page turns
* :mod:`~companion.gui.window` - library, input choice with level meter, status bar
* :mod:`~companion.gui.library` - the library panel ("Add scores..." builds in a thread)
* :mod:`~companion.gui.bridge` - core events -> Qt signals, drained by a timer (Frescobaldi pattern)
* :mod:`~companion.gui.settings` - QSettings
* :mod:`~companion.gui.app` - ``companion gui`` and its ``--screenshot`` mode

Qt-free helpers (tested without a display):

* :mod:`~companion.gui.worker` - the follow thread, the keep-latest mailbox, identify-then-follow
* :mod:`~companion.gui.inputs` - the follow jobs for audio and MIDI inputs
"""
