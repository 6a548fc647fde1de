"""Work around a reference-count bug of the pinned PySide6/shiboken 6.12.0 (measured here).

Every call from Python to a ``void`` Qt slot (``QWidget.update()``, ``repaint()``, ``show()``,
``setFocus()``, ``QTimer.start()``/``stop()``, ``QAbstractAnimation.start()``, ...) releases one
reference to ``None`` that it never took. ``None`` starts with a few thousand references, so a window
that repaints 60 times a second aborts within minutes with ``Fatal Python error: none_dealloc``
(``bool_dealloc`` likewise for ``True``/``False``). PySide6-Essentials 6.11.3 does not have the bug
(measured the same way: no reference lost in 2000 calls).

Python 3.12 makes these singletons immortal (PEP 683: a huge reference count that is never reached).
On older Pythons :func:`immortalize_singletons` does the same: it adds 2**40 to their reference
counts, which a leak of one per call cannot use up (35 000 years at 1000 calls a second). They are
never freed anyway, so the extra count changes nothing else.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["immortalize_singletons", "none_leak_per_slot_call"]

log = logging.getLogger(__name__)

_IMMORTAL = 1 << 40


def immortalize_singletons() -> bool:
    """Give ``None``, ``True`` and ``False`` an immortal reference count (no-op on Python >= 3.12).

    Returns
    -------
    bool
        True when the counts were raised (now or by an earlier call).
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of every PyObject
        if count.value < _IMMORTAL:
            count.value += _IMMORTAL
    return True


def none_leak_per_slot_call(n: int = 64) -> float:
    """References to ``None`` lost per call of a void slot (``QTimer.stop``): 0 in a fixed PySide6."""
    from PySide6.QtCore import QTimer

    t = QTimer()
    before = sys.getrefcount(None)
    for _ in range(n):
        t.stop()
    return (before - sys.getrefcount(None)) / n
