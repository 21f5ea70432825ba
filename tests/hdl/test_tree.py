"""hdl/tree.py: every level sums its neighbouring lanes, exactly."""

import numpy as np
import pytest
from nfloop.hdl.tree import ReductionTree
from support.sim import run_pipelined


@pytest.mark.parametrize("lanes, levels", [(1, 0), (4, 2), (8, 3), (16, 2)])
def test_every_level_sums_its_lanes(lanes, levels, rng):
    width = 32
    n = 50
    products = rng.integers(-2**(width - 1), 2**(width - 1), (n, lanes))
    products[0] = -2**(width - 1)                  # the most negative sum
    dut = ReductionTree(lanes, width, levels)
    for t in range(levels + 1):
        got = _run(dut, {f"products[{p}]": products[:, p] for p in range(lanes)}, t, lanes >> t)
        np.testing.assert_array_equal(got, products.reshape(n, lanes >> t, 1 << t).sum(axis=2))


def _run(dut, vectors, level, nodes):
    class View:
        """Names ``products[p]`` and ``level_<t>[m]`` as attributes for run_pipelined."""
        def __getattr__(self, name):
            base, _, index = name.partition("[")
            return getattr(dut, base)[int(index[:-1])] if index else getattr(dut, base)
    outputs = [f"level_{level}[{m}]" for m in range(nodes)]
    got = run_pipelined(dut, vectors, outputs, dut.level_latency(level), view=View())
    return np.stack([got[name] for name in outputs], axis=1)


@pytest.mark.parametrize("inputs, levels, message", [(3, 1, "inputs must be a power of two"),
                                                     (4, 3, "levels must be an integer from 0 to 2")])
def test_parameters_are_checked(inputs, levels, message):
    with pytest.raises(ValueError, match=message):
        ReductionTree(inputs, 16, levels)
