"""Fixtures shared by every test folder; first of all, nfloop is this checkout's (``support/checkout.py``)."""

import zlib

import numpy as np
import pytest
import support.checkout  # noqa: F401  (before anything imports nfloop)


@pytest.fixture
def rng(request):
    """A generator seeded from the test id, so every case is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
