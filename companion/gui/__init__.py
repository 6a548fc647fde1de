"""The desktop app (PySide6). The only package that imports Qt; the core never does.

* :mod:`~companion.gui.scoreview` - verovio pages in QtSvg, bar highlight, page turns
* :mod:`~companion.gui.worker` - the follow thread and the keep-latest mailbox (no Qt)
* :mod:`~companion.gui.bridge` - core events -> Qt signals, drained by a timer
* :mod:`~companion.gui.window` - library, input choice, status bar
* :mod:`~companion.gui.app` - ``companion gui`` and its ``--screenshot`` mode
"""

from companion.gui.qtfix import immortalize_singletons

immortalize_singletons()  # before any Qt slot is called: see companion.gui.qtfix
