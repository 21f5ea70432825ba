"""hdl/error.py against nfloop.model.fixed.output_error."""

import numpy as np
import pytest
from nfloop.hdl.error import ErrorUnit
from nfloop.model.config import Formats, Layer, LearnerConfig, QFormat, Rounding
from nfloop.model.fixed import output_error
from support.sim import edge_codes, random_codes, run_comb


@pytest.mark.parametrize("act, err", [((16, 10), (16, 12)), ((16, 10), (12, 8)), ((12, 6), (16, 6)),
                                      ((8, 4), (8, 7))], ids=str)
@pytest.mark.parametrize("rounding", [Rounding.FLOOR, Rounding.HALF_UP], ids=lambda r: r.value)
def test_error_matches_model(act, err, rounding, rng):
    f = Formats(activation=QFormat(*act), error=QFormat(*err))
    cfg = LearnerConfig(inputs=2, layers=(Layer(1),), formats=f, forward_rounding=rounding)
    edges = edge_codes(f.activation)
    y = np.concatenate([np.repeat(edges, len(edges)), random_codes(f.activation, 300, rng)])
    yhat = np.concatenate([np.tile(edges, len(edges)), random_codes(f.activation, 300, rng)])
    got = run_comb(ErrorUnit(cfg), {"y": y, "yhat": yhat}, ["e"])["e"]
    np.testing.assert_array_equal(got, output_error(y, yhat, f.activation, f.error, rounding))
