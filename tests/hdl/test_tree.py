"""hdl/tree.py: row sums over the columns of each group, column sums over the groups, exactly."""

import numpy as np
import pytest
from nfloop.hdl.tree import ReductionTree, bit_reverse
from support.sim import run_pipelined


@pytest.mark.parametrize("lanes, levels", [(1, 0), (4, 2), (8, 3), (16, 2)])
def test_every_level_sums_its_lanes(lanes, levels, rng):
    width = 32
    n = 50
    products = rng.integers(-2**(width - 1), 2**(width - 1), (n, lanes))
    products[0] = -2**(width - 1)                  # the most negative sum
    reverse = rng.integers(0, 2, n)
    dut = ReductionTree(lanes, width, levels)
    bits = lanes.bit_length() - 1
    for t in range(levels + 1):
        vectors = {f"products[{p}]": products[:, p] for p in range(lanes)} | {"reverse": reverse}
        got = _run(dut, vectors, t, lanes >> t)
        order = np.array([[bit_reverse(q, bits) if rev else q for q in range(lanes)] for rev in reverse])
        permuted = np.take_along_axis(products, order, axis=1)
        expected = permuted.reshape(n, lanes >> t, 1 << t).sum(axis=2)
        np.testing.assert_array_equal(got, expected)


def test_backward_tap_gives_the_column_sums_over_the_groups(rng):
    """Lane p = g*C + c; with reversed inputs level log2 G holds column bit_reverse(m) at node m."""
    G, C = 4, 4
    products = rng.integers(-1000, 1000, (3, G * C))
    dut = ReductionTree(G * C, 16, 2)
    vectors = {f"products[{p}]": products[:, p] for p in range(G * C)} | {"reverse": np.ones(3, dtype=np.int64)}
    got = _run(dut, vectors, 2, C)
    columns = products.reshape(3, G, C).sum(axis=1)
    np.testing.assert_array_equal(got[:, [bit_reverse(m, 2) for m in range(C)]], columns)


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
