"""Shared fixtures. Data tests read ASAP from ../shared and skip, saying why, when it is absent."""

from __future__ import annotations

import pytest

from companion.bench.asap import SKIP_REASON, asap_root


@pytest.fixture(scope="session")
def asap():
    root = asap_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root
