"""The learner config: every invalid combination is refused with a message naming the problem,
and every valid config round-trips through TOML unchanged."""

from __future__ import annotations

from pathlib import Path

import nfloop.model
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nfloop.model import (
    Activation,
    ActivationKind,
    AdaptiveGain,
    ConfigError,
    Formats,
    Layer,
    LearnerConfig,
    QFormat,
    Rounding,
    Window,
    load_config,
    save_config,
)

CONFIG_DIR = Path(nfloop.model.__file__).parent / "configs"
SHIPPED = sorted(CONFIG_DIR.glob("*.toml"))

STAIR = ActivationKind.STAIRCASE


def net(*layers, inputs=2, **kw) -> LearnerConfig:
    return LearnerConfig(inputs=inputs, layers=tuple(layers) or (Layer(1),), **kw)


# -- The Python API ------------------------------------------------------------------------------

INVALID = {
    # formats
    "width_1": (lambda: QFormat(1, 0), "Format width must be an integer from 2 to 32 bits, not 1"),
    "width_33": (lambda: QFormat(33, 0), "Format width must be an integer from 2 to 32 bits, not 33"),
    "width_float": (lambda: QFormat(8.0, 4), "Format width must be an integer"),
    "width_bool": (lambda: QFormat(True, 0), "Format width must be an integer"),
    "frac_eq_bits": (lambda: QFormat(8, 8),
                     "fraction bits must be an integer from 0 to 7 for a 8-bit format, not 8"),
    "frac_negative": (lambda: QFormat(8, -1), "fraction bits must be an integer from 0 to 7"),
    "acc_int_bits": (lambda: Formats(weight_acc=QFormat(32, 27)),
                     "formats.weight_acc must have the integer bits of formats.weight (4)"),
    "acc_int_bits_fix": (lambda: Formats(weight_acc=QFormat(32, 27)), "use Q(31,27)"),
    "acc_frac": (lambda: Formats(weight=QFormat(16, 12), weight_acc=QFormat(14, 10)),
                 "formats.weight_acc needs at least the fraction bits of formats.weight (12), not 10"),
    "operand_25_bits": (lambda: Formats(input=QFormat(25, 4)), "formats.input must be at most 24 bits wide"),
    "error_25_bits": (lambda: Formats(error=QFormat(25, 12)), "formats.error must be at most 24 bits wide"),
    "format_not_qformat": (lambda: Formats(input=(8, 4)), "formats.input must be a QFormat"),
    # activations
    "kind_string": (lambda: Activation("relu"), "Activation kind must be one of"),
    "leaky_slope_0": (lambda: Activation(ActivationKind.LEAKY_RELU, slope_shift=0),
                      "leaky_relu slope_shift must be an integer from 1 to 16"),
    "leaky_slope_17": (lambda: Activation(ActivationKind.LEAKY_RELU, slope_shift=17),
                       "leaky_relu slope_shift must be an integer from 1 to 16"),
    "hardtanh_equal": (lambda: Activation(ActivationKind.HARDTANH, lo=1.0, hi=1.0), "hardtanh needs lo < hi"),
    "hardtanh_reversed": (lambda: Activation(ActivationKind.HARDTANH, lo=1.0, hi=-1.0),
                          "hardtanh needs lo < hi, not lo=1.0 hi=-1.0"),
    "stair_unsorted": (lambda: Activation(STAIR, thresholds=(0.0, -1.0)), "strictly increasing"),
    "stair_duplicate": (lambda: Activation(STAIR, thresholds=(-1.0, 0.0, 0.0)), "strictly increasing"),
    "stair_empty": (lambda: Activation(STAIR, thresholds=()), "staircase needs at least one threshold"),
    "stair_scale_0": (lambda: Activation(STAIR, scale=0.0), "staircase scale must be positive"),
    "sign_scale_negative": (lambda: Activation(ActivationKind.SIGN, scale=-1.0),
                            "sign scale must be positive"),
    "stair_threshold_not_code": (lambda: net(Layer(1, Activation(STAIR, thresholds=(-0.5, 0.0001)))),
                                 "layers[0]: staircase threshold 0.0001 is not a code of formats.activation "
                                 "Q(16,10)"),
    "stair_threshold_outside": (lambda: net(Layer(1, Activation(STAIR, thresholds=(0.0, 40.0)))),
                                "staircase threshold 40.0 is not a code"),
    "stair_scale_not_code": (lambda: net(Layer(1, Activation(STAIR, scale=0.0001))),
                             "staircase scale 0.0001 is not a code"),
    "stair_output_too_large": (lambda: net(Layer(1, Activation(STAIR, scale=16.0))),
                               "staircase output +-48.0 does not fit formats.activation Q(16,10)"),
    # 4 steps of 8: -32 is the min code, +32 one past the max code
    "stair_output_one_past_max": (lambda: net(Layer(1, Activation(STAIR, thresholds=(-3.0, -1.0, 1.0, 3.0),
                                                                  scale=8.0))),
                                  "output +-32.0 does not fit"),
    "sign_scale_outside": (lambda: net(Layer(1, Activation(ActivationKind.SIGN, scale=4.0)),
                                          formats=Formats(activation=QFormat(8, 5))),
                              "sign scale 4.0 is not a code"),
    "hardtanh_lo_not_code": (lambda: net(Layer(1, Activation(ActivationKind.HARDTANH, lo=-0.3))),
                             "layers[0]: hardtanh lo=-0.3 is not a code of formats.activation"),
    "hardtanh_hi_outside": (lambda: net(Layer(1, Activation(ActivationKind.HARDTANH, hi=100.0))),
                            "hardtanh hi=100.0 is not a code"),
    # windows
    "window_reversed": (lambda: Window(lo=1.0, hi=0.0), "Window needs lo <= hi, not lo=1.0 hi=0.0"),
    "derivative_with_lo": (lambda: Window(lo=0.0, derivative=True),
                           "A derivative window takes no lo/hi bounds"),
    "derivative_with_hi": (lambda: Window(hi=1.0, derivative=True),
                           "A derivative window takes no lo/hi bounds"),
    "window_not_code": (lambda: net(Layer(1, window=Window(lo=-0.3))),
                        "layers[0]: window lo=-0.3 is not a code of formats.activation"),
    "window_outside": (lambda: net(Layer(2), Layer(1, window=Window(hi=64.0))),
                       "layers[1]: window hi=64.0 is not a code"),
    # layers
    "size_0": (lambda: Layer(0), "Layer size must be a positive integer, not 0"),
    "gain_shift_41": (lambda: Layer(1, gain_shift=41), "gain_shift must be an integer from -8 to 40"),
    "gain_shift_-9": (lambda: Layer(1, gain_shift=-9), "gain_shift must be an integer from -8 to 40"),
    "gain_shift_float": (lambda: Layer(1, gain_shift=6.0), "gain_shift must be an integer"),
    "leak_shift_0": (lambda: Layer(1, leak_shift=0), "leak_shift must be an integer from 1 to 40"),
    "leak_shift_41": (lambda: Layer(1, leak_shift=41), "leak_shift must be an integer from 1 to 40"),
    # adaptive gain
    "adaptive_period_3": (lambda: AdaptiveGain(period=3),
                          "adaptive_gain period must be a power of two from 1 to 65536"),
    "adaptive_period_huge": (lambda: AdaptiveGain(period=1 << 17), "adaptive_gain period must be a power of two"),
    "adaptive_up_5": (lambda: AdaptiveGain(up=5), "adaptive_gain up must be an integer from 0 to 4"),
    "adaptive_down_negative": (lambda: AdaptiveGain(down=-1), "adaptive_gain down must be an integer from 0 to 8"),
    "adaptive_not_a_rule": (lambda: net(Layer(1), adaptive_gain=4),
                            "adaptive_gain must be an AdaptiveGain or None, not 4"),
    "adaptive_down_shifts_to_zero": (  # update shift 59 is valid; 59 + 8 is past int64's 62
        lambda: net(Layer(1, gain_shift=40), adaptive_gain=AdaptiveGain(down=8),
                    formats=Formats(input=QFormat(16, 15), error=QFormat(20, 16), weight_acc=QFormat(16, 12))),
        "gain_shift 40 (with adaptive_gain down) shifts every update to zero"),
    "adaptive_down_past_32_stochastic": (
        lambda: net(Layer(1, gain_shift=28), rounding=Rounding.STOCHASTIC, formats=Formats(weight_acc=QFormat(16, 12)),
                    adaptive_gain=AdaptiveGain(down=1)),
        "stochastic rounding draws 32 random bits"),
    "momentum_shift_0": (lambda: Layer(1, momentum_shift=0),
                         "momentum_shift must be an integer from 1 to 40"),
    "residual_size": (lambda: net(Layer(3, residual=True)),
                      "layers[0]: a residual layer adds its input to its output, so it needs as many units as "
                      "inputs: it has 3 units and 2 inputs; set size = 2 or residual = false"),
    "residual_second_layer_size": (lambda: net(Layer(4), Layer(2, residual=True)),
                                   "layers[1]: a residual layer adds its input to its output"),
    "residual_not_bool": (lambda: Layer(1, residual=1), "residual must be true or false, not 1"),
    "mac_sum_residual_too_wide": (    # 24 + 24 + log2(8193) = 62 bits, plus the residual's bit for W + I
        lambda: net(Layer(1 << 13, residual=True), inputs=1 << 13,
                    formats=Formats(input=QFormat(24, 20), weight=QFormat(24, 20),
                                    weight_acc=QFormat(32, 28))),
        "layers[0]: the exact MAC sum needs 63 bits, more than 62"),
    "init_rows": (lambda: net(Layer(2, init=((1.0, 2.0, 3.0),))),
                  "layers[0]: init must have 2 rows of 3 values (2 weights and the bias)"),
    "init_row_length": (lambda: net(Layer(1, init=((1.0, 2.0),))), "init must have 1 rows of 3 values"),
    "init_second_layer": (lambda: net(Layer(3), Layer(1, init=((1.0, 2.0, 3.0),))),
                          "layers[1]: init must have 1 rows of 4 values"),
    "init_no_rows": (lambda: net(Layer(1, init=())), "layers[0]: init must have 1 rows of 3 values"),
    # A NaN weight has no code: the fixed model would silently make it formats.weight_acc's min code.
    "init_nan": (lambda: net(Layer(1, init=((float("nan"), 1.0, 0.0),))),
                 "init weights must be finite numbers (no NaN or infinity)"),
    # the learner
    "inputs_0": (lambda: LearnerConfig(inputs=0, layers=(Layer(1),)), "inputs must be a positive integer"),
    "no_layers": (lambda: LearnerConfig(inputs=1, layers=()), "A learner needs at least one layer"),
    "layer_not_layer": (lambda: LearnerConfig(inputs=1, layers=(3,)), "layers must hold Layer objects"),
    "batch_size_0": (lambda: net(batch_size=0), "batch_size must be a positive integer, not 0"),
    "lfsr_seed_0": (lambda: net(lfsr_seed=0), "lfsr_seed must be an integer from 1 to 2**32-1"),
    "lfsr_seed_2_32": (lambda: net(lfsr_seed=1 << 32), "lfsr_seed must be an integer from 1 to 2**32-1"),
    "forward_stochastic": (lambda: net(forward_rounding=Rounding.STOCHASTIC),
                           "forward_rounding must be 'floor' or 'half_up', not 'stochastic'"),
    "rounding_string": (lambda: net(rounding="half_up"), "rounding must be one of"),
    "init_seed_negative": (lambda: net(init_seed=-1), "init_seed must be a non-negative integer"),
    "init_scale_0": (lambda: net(init_scale=0.0), "init_scale must be positive"),
    "stochastic_shift_past_32": (   # update shift 12 + 4 + 29 - 12 = 33
        lambda: net(Layer(1, gain_shift=29), rounding=Rounding.STOCHASTIC,
                    formats=Formats(weight_acc=QFormat(16, 12))),
        "stochastic rounding draws 32 random bits"),
    "stochastic_leak_past_32": (lambda: net(Layer(1, leak_shift=33), rounding=Rounding.STOCHASTIC),
                                "stochastic rounding draws 32 random bits"),
    "mac_sum_too_wide": (
        lambda: net(Layer(1), inputs=(1 << 15) - 1,     # 24 + 24 + log2(2**15)
                    formats=Formats(input=QFormat(24, 20), weight=QFormat(24, 20),
                                    weight_acc=QFormat(32, 28))),
        "layers[0]: the exact MAC sum needs 63 bits, more than 62"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_config_raises(case):
    build, message = INVALID[case]
    with pytest.raises(ConfigError) as info:
        build()
    assert message in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


VALID_EDGES = {
    "width_2": lambda: QFormat(2, 1),
    "width_32": lambda: QFormat(32, 31),
    "gain_shift_-8": lambda: net(Layer(1, gain_shift=-8)),
    "gain_shift_40": lambda: net(Layer(1, gain_shift=40)),
    "leak_40": lambda: net(Layer(1, leak_shift=40, momentum_shift=1)),
    "stair_output_at_min": lambda: net(Layer(1, Activation(STAIR, thresholds=(-3.0, -1.0, 1.0, 3.0),
                                                           scale=7.75))),
    "window_point": lambda: net(Layer(1, window=Window(lo=0.5, hi=0.5))),
    "lfsr_max": lambda: net(lfsr_seed=(1 << 32) - 1),
    "residual": lambda: net(Layer(2, residual=True), Layer(2, residual=True), Layer(1)),
    "adaptive_extremes": lambda: net(Layer(1, gain_shift=-4), adaptive_gain=AdaptiveGain(period=1 << 16, up=4, down=8)),
    "stochastic_32": lambda: net(Layer(1, gain_shift=28), rounding=Rounding.STOCHASTIC,
                                 formats=Formats(weight_acc=QFormat(16, 12))),
    "mac_sum_62": lambda: net(Layer(1), inputs=(1 << 14) - 1,
                              formats=Formats(input=QFormat(24, 20), weight=QFormat(24, 20),
                                              weight_acc=QFormat(32, 28))),
}


@pytest.mark.parametrize("case", VALID_EDGES)
def test_valid_edges_are_accepted(case):
    VALID_EDGES[case]()


def test_qformat_derived_values():
    f = QFormat(8, 4)
    assert (f.min_code, f.max_code, f.int_bits) == (-128, 127, 4)
    assert (f.min_value, f.max_value, f.lsb) == (-8.0, 7.9375, 0.0625)
    assert f.representable(7.9375) and f.representable(-8.0) and not f.representable(8.0)
    assert not f.representable(0.03125)
    assert [f.code(v) for v in (0.03125, -0.03125, 100.0, -100.0)] == [1, 0, 127, -128]


def test_sign_has_the_single_threshold_zero():
    assert Activation(ActivationKind.SIGN, thresholds=(-1.0, 1.0)).thresholds == (0.0,)


def test_as_gradient_descent_sets_every_window_to_derivative():
    config = load_config(CONFIG_DIR / "digits_staircase.toml")
    gd = config.as_gradient_descent()
    assert all(l.window == Window(derivative=True) for l in gd.layers)
    assert [l.activation for l in gd.layers] == [l.activation for l in config.layers]
    assert gd.formats == config.formats and gd.batch_size == config.batch_size


# -- TOML ---------------------------------------------------------------------------------------

BASE_TOML = """\
inputs = 2
[formats]
input = [8, 4]
[rounding]
update = "half_up"
[[layers]]
size = 1
"""

BAD_TOML = {
    "unknown_top_key": (BASE_TOML + "", "foo = 1\n", "Unknown key(s) ['foo'] in the config"),
    "unknown_formats_key": (BASE_TOML.replace("input = [8, 4]", "input = [8, 4]\nbias = [8, 4]"), "",
                            "Unknown key(s) ['bias'] in [formats]"),
    "unknown_rounding_key": (BASE_TOML.replace('update = "half_up"', 'update = "half_up"\nmode = 1'), "",
                             "Unknown key(s) ['mode'] in [rounding]"),
    "unknown_layer_key": (BASE_TOML + "gain = 3\n", "", "Unknown key(s) ['gain'] in [[layers]] 0"),
    "unknown_activation_key": (BASE_TOML + 'activation = { kind = "relu", slope = 2 }\n', "",
                               "Unknown key(s) ['slope'] in [[layers]] 0 activation"),
    "unknown_window_key": (BASE_TOML + "window = { lo = -1.0, mid = 0.0 }\n", "",
                           "Unknown key(s) ['mid'] in [[layers]] 0 window"),
    "unknown_init_key": (BASE_TOML.replace("[[layers]]", "[init]\nsead = 3\n[[layers]]"), "",
                         "Unknown key(s) ['sead'] in [init]"),
    "overflow_wrap": (BASE_TOML.replace('update = "half_up"', 'update = "half_up"\noverflow = "wrap"'), "",
                      "[rounding] overflow must be 'saturate', not 'wrap'"),
    "format_one_number": (BASE_TOML.replace("input = [8, 4]", "input = [8]"), "",
                          "formats.input must be [bits, fraction_bits], not [8]"),
    "format_string": (BASE_TOML.replace("input = [8, 4]", 'input = "Q(8,4)"'), "",
                      "formats.input must be [bits, fraction_bits]"),
    "format_float": (BASE_TOML.replace("input = [8, 4]", "input = [8.0, 4]"), "",
                     "formats.input must be [bits, fraction_bits]"),
    "format_three": (BASE_TOML.replace("input = [8, 4]", "input = [8, 4, 0]"), "",
                     "formats.input must be [bits, fraction_bits]"),
    "format_frac_too_big": (BASE_TOML.replace("input = [8, 4]", "input = [8, 9]"), "",
                            "formats.input: Format fraction bits must be an integer from 0 to 7"),
    "format_too_wide": (BASE_TOML.replace("input = [8, 4]", "weight_acc = [40, 36]"), "",
                        "formats.weight_acc: Format width must be an integer from 2 to 32"),
    "formats_not_table": (BASE_TOML.replace("[formats]\ninput = [8, 4]\n", "").replace(
        "inputs = 2", "inputs = 2\nformats = 3"), "", "[formats] must be a table"),
    "missing_inputs": (BASE_TOML.replace("inputs = 2\n", ""), "", "the config is missing ['inputs']"),
    "missing_layers": (BASE_TOML.replace("[[layers]]\nsize = 1\n", ""), "",
                       "the config is missing ['layers']"),
    "empty_layers": ("inputs = 2\nlayers = []\n", "",
                     "layers must be a non-empty array of [[layers]] tables"),
    "missing_size": (BASE_TOML.replace("size = 1", 'activation = "relu"'), "",
                     "[[layers]] 0 is missing ['size']"),
    "bad_update_rounding": (BASE_TOML.replace('"half_up"', '"round"'), "",
                            "[rounding] update must be one of ['floor', 'half_up', 'stochastic'], "
                            "not 'round'"),
    "forward_stochastic": (BASE_TOML.replace('update = "half_up"', 'forward = "stochastic"'), "",
                           "forward_rounding must be 'floor' or 'half_up'"),
    "bad_activation": (BASE_TOML + 'activation = "tanh"\n', "", "[[layers]] 0 activation must be one of"),
    "bad_activation_kind": (BASE_TOML + 'activation = { kind = "tanh" }\n', "",
                            "[[layers]] 0 activation.kind must be one of"),
    "bad_window": (BASE_TOML + 'window = "none"\n', "",
                   "[[layers]] 0 window must be 'auto', 'all', 'derivative' or a table"),
    "bad_value_type": (BASE_TOML + 'activation = { kind = "hardtanh", lo = "a" }\n', "", "bad value"),
    "size_string": (BASE_TOML.replace("size = 1", 'size = "1"'), "", "Layer size must be a positive integer"),
    "gain_out_of_range": (BASE_TOML + "gain_shift = 50\n", "", "gain_shift must be an integer from -8 to 40"),
    "lfsr_zero": (BASE_TOML.replace('update = "half_up"', "lfsr_seed = 0"), "",
                  "lfsr_seed must be an integer"),
    "init_shape": (BASE_TOML + "init = [[1.0, 2.0]]\n", "", "init must have 1 rows of 3 values"),
    "adaptive_unknown_key": (BASE_TOML + "[adaptive_gain]\nrate = 2\n", "",
                             "Unknown key(s) ['rate'] in [adaptive_gain]"),
    "adaptive_bad_period": (BASE_TOML + "[adaptive_gain]\nperiod = 100\n", "",
                            "adaptive_gain period must be a power of two from 1 to 65536"),
    "residual_string": (BASE_TOML + 'residual = "yes"\n', "", "residual must be true or false, not 'yes'"),
    "residual_size": (BASE_TOML + "residual = true\n", "", "a residual layer adds its input to its output"),
    # An explicit but empty init is a wrong shape too, not "absent" (which means random weights).
    "init_empty": (BASE_TOML + "init = []\n", "", "init must have 1 rows of 3 values"),
    "init_nan": (BASE_TOML + "init = [[nan, 1.0, 0.0]]\n", "",
                 "init weights must be finite numbers (no NaN or infinity)"),
    "threshold_not_code": (BASE_TOML + 'activation = { kind = "staircase", thresholds = [0.3] }\n', "",
                           "layers[0]: staircase threshold 0.3 is not a code of formats.activation Q(16,10)"),
}


@pytest.mark.parametrize("case", BAD_TOML)
def test_bad_toml_raises(case, tmp_path):
    body, prefix, message = BAD_TOML[case]
    path = tmp_path / "bad.toml"
    path.write_text(prefix + body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)      # the message names the file


def test_base_toml_is_valid(tmp_path):
    """The bad cases above are each one edit away from this valid file."""
    path = tmp_path / "good.toml"
    path.write_text(BASE_TOML)
    config = load_config(path)
    assert config.inputs == 2 and config.sizes == (2, 1)
    assert config.formats == Formats() and config.rounding is Rounding.HALF_UP


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path)       # a directory is not a config file


def test_load_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("inputs = \n[[layers\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


def test_load_binary_file(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00\x81inputs")
    with pytest.raises(ConfigError, match="not a text file|not valid TOML"):
        load_config(path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_round_trip(path, tmp_path):
    config = load_config(path)
    assert config.name == path.stem
    out = tmp_path / "copy.toml"
    save_config(config, out)
    again = load_config(out)
    assert again == config
    out2 = tmp_path / "copy2.toml"
    save_config(again, out2)
    assert out2.read_text() == out.read_text()
    assert LearnerConfig.from_dict(config.to_dict()) == config


def test_shipped_configs_exist():
    assert {p.stem for p in SHIPPED} >= {"digits", "digits_staircase", "iris", "staircase", "xor"}


# -- Random valid configs round-trip -----------------------------------------------------------

QUARTERS = st.integers(-16, 16).map(lambda k: k / 4)      # -4 .. 4 in steps of 1/4


@st.composite
def activations(draw):
    kind = draw(st.sampled_from(list(ActivationKind)))
    if kind is ActivationKind.LEAKY_RELU:
        return Activation(kind, slope_shift=draw(st.integers(1, 16)))
    if kind is ActivationKind.HARDTANH:
        lo, hi = sorted(draw(st.lists(QUARTERS, min_size=2, max_size=2, unique=True)))
        return Activation(kind, lo=lo, hi=hi)
    if kind is ActivationKind.SIGN:
        return Activation(kind, scale=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])))
    if kind is ActivationKind.STAIRCASE:
        thresholds = tuple(sorted(draw(st.lists(QUARTERS, min_size=1, max_size=5, unique=True))))
        return Activation(kind, thresholds=thresholds, scale=draw(st.sampled_from([0.25, 0.5, 1.0])))
    return Activation(kind)


@st.composite
def windows(draw):
    choice = draw(st.sampled_from(["auto", "all", "derivative", "lo", "hi", "both"]))
    if choice == "auto":
        return None
    if choice == "all":
        return Window()
    if choice == "derivative":
        return Window(derivative=True)
    if choice == "lo":
        return Window(lo=draw(QUARTERS))
    if choice == "hi":
        return Window(hi=draw(QUARTERS))
    lo, hi = sorted(draw(st.lists(QUARTERS, min_size=2, max_size=2)))
    return Window(lo=lo, hi=hi)


@st.composite
def configs(draw):
    weight = draw(st.sampled_from([QFormat(16, 12), QFormat(12, 8), QFormat(8, 4), QFormat(24, 20)]))
    extra = draw(st.integers(0, 32 - weight.bits))
    formats = Formats(
        input=draw(st.sampled_from([QFormat(8, 4), QFormat(12, 8), QFormat(16, 15), QFormat(8, 0)])),
        activation=draw(st.sampled_from([QFormat(16, 10), QFormat(12, 8), QFormat(24, 16)])),
        error=draw(st.sampled_from([QFormat(16, 12), QFormat(12, 8), QFormat(20, 16)])),
        weight=weight, weight_acc=QFormat(weight.bits + extra, weight.frac + extra))
    inputs = draw(st.integers(1, 8))
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    layers = []
    n_in = inputs
    for size in sizes:
        init = None
        if draw(st.booleans()):
            value = st.floats(-4, 4, allow_nan=False, allow_infinity=False)
            init = tuple(tuple(draw(value) for _ in range(n_in + 1)) for _ in range(size))
        layers.append(Layer(size, draw(activations()), draw(windows()),
                            gain_shift=draw(st.integers(-2, 24)),
                            leak_shift=draw(st.none() | st.integers(1, 32)),
                            momentum_shift=draw(st.none() | st.integers(1, 32)), init=init,
                            residual=size == n_in and draw(st.booleans())))
        n_in = size
    try:
        return LearnerConfig(
            inputs=inputs, layers=tuple(layers), formats=formats,
            batch_size=draw(st.integers(1, 256)),
            rounding=draw(st.sampled_from(list(Rounding))),
            forward_rounding=draw(st.sampled_from([Rounding.FLOOR, Rounding.HALF_UP])),
            lfsr_seed=draw(st.integers(1, (1 << 32) - 1)),
            init_seed=draw(st.integers(0, 1 << 40)),
            init_scale=draw(st.floats(0.001, 100, allow_nan=False)),
            adaptive_gain=draw(st.none() | st.builds(AdaptiveGain, st.sampled_from([1, 2, 256, 1 << 16]),
                                                     st.integers(0, 4), st.integers(0, 8))),
            name=draw(st.text(max_size=12)))
    except ConfigError:
        assume(False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
@given(config=configs())
def test_random_config_round_trip(config, tmp_path):
    path = tmp_path / "random.toml"
    save_config(config, path)
    assert load_config(path) == config
    assert LearnerConfig.from_dict(config.to_dict()) == config


def test_auto_staircase_window_is_representable_for_uneven_steps():
    act = Activation(ActivationKind.STAIRCASE, thresholds=(-2.0, -0.5, 0.5, 2.0), scale=0.25)
    config = LearnerConfig(inputs=2, layers=(Layer(3, act),))
    assert (config.layers[0].window.lo, config.layers[0].window.hi) == (-3.0, 3.0)


@pytest.mark.parametrize("weight, acc", [((16, 12), (32, 26)), ((24, 20), (32, 30)), ((16, 2), (32, 30)),
                                         ((8, 4), (20, 18)), ((24, 0), (30, 10))])
def test_suggested_accumulator_is_itself_valid(weight, acc):
    """The fix a format error suggests is one the validator accepts."""
    import re
    with pytest.raises(ConfigError, match="use Q") as error:
        Formats(weight=QFormat(*weight), weight_acc=QFormat(*acc))
    bits, frac = map(int, re.search(r"use Q\((\d+),(\d+)\)", str(error.value)).groups())
    Formats(weight=QFormat(*weight), weight_acc=QFormat(bits, frac))


def test_written_config_has_the_documented_layout(tmp_path):
    """save_config writes what docs/config.md shows: inline format pairs, one [[layers]] table per layer."""
    from nfloop.model.tasks import CONFIG_DIR
    config = load_config(CONFIG_DIR / "digits.toml")
    save_config(config, tmp_path / "c.toml")
    text = (tmp_path / "c.toml").read_text()
    assert "weight = [16, 12]\n" in text and text.count("[[layers]]") == len(config.layers)
    assert "layers = [" not in text
