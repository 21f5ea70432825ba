"""Fixtures shared by every test folder."""

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test id, so every case is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
