"""Bad input stops with one line naming the fix (a ConfigError or TaskError), never a traceback,
a silent wrap-around or an allocation of gigabytes: non-finite config numbers, unreadable config
files, absurd data values, labels, paths, layer sizes and data sizes, and backward sums past int64."""

from __future__ import annotations

import errno
import pathlib
import tracemalloc
import zipfile

import numpy as np
import pytest
from nfloop.model import ConfigError, Formats, Layer, LearnerConfig, QFormat, TaskError, default_config, load_task
from nfloop.model import config as config_module
from nfloop.model import tasks as tasks_module
from nfloop.model.config import Window, load_config
from nfloop.model.stability import check_stability, stable_gain_shift

BASE = "inputs = 2\n\n[[layers]]\nsize = 1\n"


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and text.strip() == text and text
    return text


def config_error(tmp_path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = one_line(info.value)
    assert str(path) in message
    return message


def task_error(path) -> str:
    with pytest.raises(TaskError) as info:
        load_task(str(path))
    return one_line(info.value)


# -- 1. infinity and NaN in config numbers -------------------------------------------------------

NON_FINITE = {
    "window_lo_inf": ("window = { lo = -inf }\n", "window lo must be a finite number, not -inf"),
    "window_hi_nan": ("window = { hi = nan }\n", "window hi must be a finite number, not nan"),
    "hardtanh_lo_inf": ('activation = { kind = "hardtanh", lo = -inf }\n',
                        "hardtanh lo must be a finite number, not -inf"),
    "hardtanh_hi_inf": ('activation = { kind = "hardtanh", hi = inf }\n',
                        "hardtanh hi must be a finite number, not inf"),
    "hardtanh_hi_nan": ('activation = { kind = "hardtanh", hi = nan }\n',
                        "hardtanh hi must be a finite number, not nan"),
    "staircase_threshold_inf": ('activation = { kind = "staircase", thresholds = [0.0, inf] }\n',
                                "every staircase threshold must be a finite number, not inf"),
    "staircase_threshold_nan": ('activation = { kind = "staircase", thresholds = [nan] }\n',
                                "every staircase threshold must be a finite number, not nan"),
    "staircase_scale_inf": ('activation = { kind = "staircase", scale = inf }\n',
                            "staircase scale must be a finite number, not inf"),
    "sign_scale_inf": ('activation = { kind = "sign", scale = inf }\n', "sign scale must be a finite number, not inf"),
    "sign_scale_nan": ('activation = { kind = "sign", scale = nan }\n', "sign scale must be a finite number, not nan"),
    # finite, but past float64 once scaled by the format: no code, not an OverflowError
    "hardtanh_hi_1e308": ('activation = { kind = "hardtanh", hi = 1e308 }\n', "hardtanh hi=1e+308 is not a code"),
    "window_lo_1e308": ("window = { lo = -1e308 }\n", "window lo=-1e+308 is not a code"),
}


@pytest.mark.parametrize("case", NON_FINITE)
def test_non_finite_layer_numbers_are_refused(case, tmp_path):
    layer_text, message = NON_FINITE[case]
    assert message in config_error(tmp_path, BASE + layer_text)


@pytest.mark.parametrize("scale", ["inf", "nan", "1.7e308", "-inf"])
def test_non_finite_init_scale_is_refused(scale, tmp_path):
    """Refused when the config is read, not later in numpy's uniform()."""
    message = config_error(tmp_path, f"inputs = 2\n\n[init]\nscale = {scale}\n\n[[layers]]\nsize = 1\n")
    assert "init_scale must be positive, finite and at most 2**32" in message


def test_non_finite_numbers_are_refused_in_python_too():
    with pytest.raises(ConfigError, match="window lo must be a finite number, not inf"):
        Window(lo=float("inf"))
    with pytest.raises(ConfigError, match="init_scale must be positive, finite"):
        LearnerConfig(inputs=1, layers=(Layer(1),), init_scale=float("inf"))
    assert not QFormat(16, 10).representable(float("inf"))
    assert not QFormat(16, 10).representable(float("nan"))


# -- 2. an unreadable config file --------------------------------------------------------------

def test_unreadable_config_says_why(tmp_path, monkeypatch):
    """Tests run as root, for whom no permission bit makes a file unreadable: read_text fails as it would."""
    path = tmp_path / "locked.toml"
    path.write_text(BASE)
    real_read_text = pathlib.Path.read_text

    def read_text(self, *args, **kwargs):
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = one_line(info.value)
    assert str(path) in message and "cannot be read: Permission denied" in message


def test_config_that_is_a_folder_says_so(tmp_path):
    folder = tmp_path / "config.toml"
    folder.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(folder)
    assert "it is a folder; give the path of a TOML config file" in one_line(info.value)


# -- 3. absurdly large data values -------------------------------------------------------------

@pytest.mark.parametrize("value", [1e154, 1e200, -1.7e308])
def test_huge_data_values_are_refused(value, tmp_path):
    x = np.array([[value, 1.0], [2.0, 3.0]])
    np.savez(tmp_path / "huge.npz", x=x, y=np.array([0, 1]))
    message = task_error(tmp_path / "huge.npz")
    assert "array 'x' holds a value of magnitude" in message and "rescale the data" in message
    (tmp_path / "huge.csv").write_text(f"a,b,y\n{value},1,0\n2,3,1\n")
    assert "rescale the data" in task_error(tmp_path / "huge.csv")


@pytest.mark.parametrize("batch_size", [1, 4])
def test_stability_of_huge_values_is_computed_safely(batch_size):
    """Squares of values past 1e154 overflow float64; the bound is still a finite shift."""
    x = np.array([[1e200, 1.0], [2.0, 3.0]])
    # ||x||^2 and lambda_max are about 1e400 (batch: times 2 samples / 2 rows), 2**1328.8
    assert stable_gain_shift(x, batch_size) in (1329, 1330)
    config = LearnerConfig(inputs=2, layers=(Layer(1),), batch_size=batch_size)
    report = check_stability(config, x)
    assert not report.ok and "use gain_shift >= 13" in report.advice
    # data that do not overflow take the same path as ever: ||(1, -1, 1)||^2 = 3
    assert stable_gain_shift(np.array([[1.0, -1.0]]), batch_size) == 2


def test_data_too_large_for_any_gain_says_rescale(tmp_path):
    """Values of 1e6 in 64 columns need a gain below 2**-46, past the smallest gain (2**-40)."""
    np.savez(tmp_path / "wide.npz", x=np.full((4, 64), 1e6), y=np.arange(4.0))
    task = load_task(str(tmp_path / "wide.npz"))
    with pytest.raises(TaskError) as info:
        default_config(task)
    assert "rescale the data" in one_line(info.value)


# -- 4. labels -------------------------------------------------------------------------------

LABELS = {
    "uint64_2_63": np.array([0, 2**63], dtype=np.uint64),
    "uint64_max": np.array([0, 2**64 - 1], dtype=np.uint64),
    "int64_1e9": np.array([0, 10**9]),
    "int32_10000": np.array([0, 10_000], dtype=np.int32),
}


@pytest.mark.parametrize("case", LABELS)
def test_labels_naming_too_many_classes_are_refused(case, tmp_path):
    np.savez(tmp_path / "labels.npz", x=np.ones((2, 2)), y=LABELS[case])
    message = task_error(tmp_path / "labels.npz")
    assert "class labels in 'y' go up to" in message and "at most 10,000 classes" in message


@pytest.mark.parametrize("label", ["1000000000", "1e30"])
def test_csv_labels_naming_too_many_classes_are_refused(label, tmp_path):
    (tmp_path / "labels.csv").write_text(f"a,label\n1,0\n2,{label}\n")
    assert "at most 10,000 classes" in task_error(tmp_path / "labels.csv")


def test_labels_up_to_the_limit_load(tmp_path):
    np.savez(tmp_path / "labels.npz", x=np.ones((2, 2)), y=np.array([0, 9_999], dtype=np.uint64))
    task = load_task(str(tmp_path / "labels.npz"))
    assert task.outputs == 10_000 and list(task.labels_train) == [0, 9_999]


def test_one_hot_targets_past_the_data_limit_are_refused(tmp_path):
    """13,500 samples of 10,000 classes: over 1 GiB of one-hot targets."""
    np.savez(tmp_path / "many.npz", x=np.zeros((13_500, 1)), y=np.arange(13_500) % 10_000)
    message = task_error(tmp_path / "many.npz")
    assert "one-hot targets for 10,000 classes and 13,500 samples" in message


# -- 5. paths ----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_path_component_too_long(suffix, tmp_path):
    path = tmp_path / ("a" * 300 + suffix)
    message = task_error(path)
    assert f"is {300 + len(suffix)} bytes long, more than the 255 a file or folder name may have" in message
    assert "shorten that name" in message


def test_config_path_component_too_long(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / ("c" * 300 + ".toml"))
    assert "more than the 255 a file or folder name may have" in one_line(info.value)


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_folder_given_as_data_file(suffix, tmp_path):
    folder = tmp_path / f"data{suffix}"
    folder.mkdir()
    message = task_error(folder)
    assert "it is a folder; give the path of a .npz or .csv file" in message


def test_file_used_as_a_folder(tmp_path):
    (tmp_path / "plain").write_text("")
    assert "a part of the path before the last is a file, not a folder" in task_error(tmp_path / "plain" / "d.npz")


# -- 6. layers that need terabytes -------------------------------------------------------------

def test_layers_past_the_memory_limit_are_refused():
    with pytest.raises(ConfigError) as info:
        LearnerConfig(inputs=1_000_000, layers=(Layer(1_000_000), Layer(10)))
    message = one_line(info.value)
    assert "1,000,011,000,010 weights and biases" in message
    assert f"{config_module.STATE_ARRAYS} 8-byte values per weight, 44,704.0 GiB, more than the 4 GiB" in message


def test_layers_just_inside_the_memory_limit_are_accepted():
    inside = LearnerConfig(inputs=9_999, layers=(Layer(8_000),))
    assert inside.state_bytes <= config_module.MAX_STATE_BYTES
    with pytest.raises(ConfigError, match="more than the 4 GiB"):
        LearnerConfig(inputs=9_999, layers=(Layer(9_000),))


def test_layers_past_the_memory_limit_are_refused_in_toml(tmp_path):
    message = config_error(tmp_path, "inputs = 100000\n\n[[layers]]\nsize = 100000\n")
    assert "GiB, more than the 4 GiB nfloop allows" in message


# -- 7. data files that inflate ----------------------------------------------------------------

def npz_with_header(path, shape, dtype="<f8"):
    """A .npz whose x.npy header promises ``shape`` but holds a few bytes: sizes come from headers."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {"descr": dtype, "fortran_order": False, "shape": shape})
            member.write(bytes(64))
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(4))
    return path


@pytest.mark.parametrize("shape, dtype", [((1 << 28, 2), "<f8"), ((1 << 31,), "|i1"), ((1 << 40, 1 << 20), "<f4")])
def test_npz_whose_arrays_inflate_is_refused_before_loading(shape, dtype, tmp_path):
    message = task_error(npz_with_header(tmp_path / "bomb.npz", shape, dtype))
    assert f"'x' {shape}" in message and "GiB as float64, more than the 1.0 GiB nfloop loads" in message


def test_compressed_npz_past_the_limit_is_refused(tmp_path, monkeypatch):
    """A real savez_compressed file of zeros: a few KiB on disk, 2 MiB of data (limit lowered to 1 MiB)."""
    monkeypatch.setattr(tasks_module, "MAX_DATA_BYTES", 1 << 20, raising=False)
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((1 << 18, 1)), y=np.zeros(1 << 18))
    assert path.stat().st_size < 1 << 16
    assert "more than the" in task_error(path)


def test_csv_is_loaded_as_numbers_not_strings(tmp_path):
    """The old loader kept every cell as a Python string: 16 times the float64 data at peak."""
    rng = np.random.default_rng(0)
    rows = 20_000
    data = np.column_stack([rng.normal(size=(rows, 10)), rng.integers(0, 3, rows)])
    path = tmp_path / "big.csv"
    with path.open("w") as file:
        file.write(",".join([f"f{i}" for i in range(10)] + ["label"]) + "\n")
        np.savetxt(file, data, fmt=["%.6f"] * 10 + ["%d"], delimiter=",")
    tracemalloc.start()
    try:
        task = load_task(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert task.x_train.shape == (rows, 10) and task.outputs == 3
    assert peak < 6 * data.nbytes


def test_csv_past_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks_module, "MAX_DATA_BYTES", 8 * 3 * 100, raising=False)
    path = tmp_path / "long.csv"
    path.write_text("a,b,y\n" + "1,2,3\n" * 101)
    assert "more than 100 rows of 3 values" in task_error(path)
    path.write_text("a,b,y\n" + "1,2,3\n" * 100)
    assert load_task(str(path)).x_train.shape == (100, 2)


# -- 8. the backward sum W^T delta ---------------------------------------------------------------

WIDE = Formats(error=QFormat(24, 12), weight=QFormat(24, 12), weight_acc=QFormat(32, 20))


def test_backward_sum_past_int64_is_refused():
    """24 + 24 + ceil(log2(2**14 + 1)) = 63 bits for the sum over layer 1's 2**14 units."""
    with pytest.raises(ConfigError) as info:
        LearnerConfig(inputs=1, layers=(Layer(1), Layer(1 << 14)), formats=WIDE)
    message = one_line(info.value)
    assert message.startswith("layers[1]: the exact backward sum W^T delta over its 16384 units needs 63 bits")
    assert "more than 62; narrow formats.weight or formats.error, or the layer" in message


def test_backward_sum_at_the_limit_is_accepted():
    config = LearnerConfig(inputs=1, layers=(Layer(1), Layer((1 << 14) - 1)), formats=WIDE)
    assert config.backward_sum_bits(1) == 62
    # the first layer has no backward sum: as wide as the output may be
    assert LearnerConfig(inputs=1, layers=(Layer(1 << 14),), formats=WIDE).outputs == 1 << 14
