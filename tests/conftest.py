"""Fixtures shared by every test folder; first of all, nfloop is this checkout's (``support/checkout.py``)."""

import zlib

import numpy as np
import pytest
import support.checkout  # noqa: F401  (before anything imports nfloop)


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="also run the tests marked slow: board builds, gate-level netlists, proofs, fuzzing, "
                          "interrupted runs, the wide co-simulation cases (about half an hour on two cores)")


def _quick(config) -> bool:
    """The quick run: neither --full nor a -m of one's own."""
    return not (config.getoption("--full") or config.getoption("markexpr"))


def pytest_report_header(config):
    if _quick(config):
        return "tests marked slow are left out: --full runs them too"


def pytest_collection_modifyitems(config, items):
    """In the quick run the slow tests are deselected, and counted as such."""
    if not _quick(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture
def rng(request):
    """A generator seeded from the test id, so every case is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
