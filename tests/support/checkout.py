"""Makes ``nfloop.*`` this checkout's code, whichever checkout the environment's nfloop was installed from.

The tests live beside the code they test; with two checkouts and one virtual environment, an installed
editable nfloop would otherwise serve the other checkout's modules. Imported first by ``tests/conftest.py``
and by the cocotb benches, before anything imports nfloop.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The subpackages, as pyproject.toml maps them onto the checkout's folders.
SUBPACKAGES = ("model", "hdl", "sim", "boards", "scripts")


class CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds ``nfloop.<subpackage>`` in :data:`ROOT`; deeper modules follow from the package's path."""

    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if parts[0] != "nfloop" or len(parts) != 2 or parts[1] not in SUBPACKAGES:
            return None
        folder = ROOT / parts[1]
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


def install() -> None:
    if not any(isinstance(finder, CheckoutFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, CheckoutFinder())
    loaded = sys.modules.get("nfloop.model")
    if loaded is not None and Path(loaded.__file__).resolve().parents[1] != ROOT:
        raise ImportError(f"nfloop was imported from {Path(loaded.__file__).parents[1]} before the tests of "
                          f"{ROOT} could point it at their own checkout")


install()
