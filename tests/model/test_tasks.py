"""Tasks: the built-in data sets have their documented shapes, users' .npz / .csv files load,
and bad files stop with a TaskError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest
from nfloop.model import TaskError, default_config, load_task
from nfloop.model.stability import check_stability
from nfloop.model.tasks import BUILTIN_TASKS

# -- Built-in tasks ------------------------------------------------------------------------------

def check_one_hot(y, labels, classes):
    assert y.shape == (len(labels), classes)
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(y, axis=1), labels)
    assert set(np.unique(y)) == {0.0, 1.0}


def test_digits():
    task = load_task("digits")
    assert task.name == "digits" and task.is_classification
    assert task.x_train.shape == (1400, 64) and task.x_test.shape == (397, 64)
    assert (task.inputs, task.outputs) == (64, 10)
    check_one_hot(task.y_train, task.labels_train, 10)
    check_one_hot(task.y_test, task.labels_test, 10)
    assert set(task.labels_train) == set(range(10)) and set(task.labels_test) == set(range(10))
    assert task.x_train.min() == 0.0 and task.x_train.max() == 1.0
    np.testing.assert_array_equal(task.x_train * 16, np.round(task.x_train * 16))   # pixels / 16
    assert task.default_epochs == 15


def test_iris():
    task = load_task("iris")
    assert task.x_train.shape == (100, 4) and task.x_test.shape == (50, 4)
    assert task.outputs == 3
    check_one_hot(task.y_train, task.labels_train, 3)
    check_one_hot(task.y_test, task.labels_test, 3)
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0.0, atol=1e-12)   # standardised by train
    np.testing.assert_allclose(task.x_train.std(axis=0), 1.0, rtol=1e-12)


def test_xor():
    task = load_task("xor")
    assert task.x_train.shape == (4, 2) and task.outputs == 2
    assert set(task.x_train.ravel()) == {-1.0, 1.0}
    expected = (task.x_train[:, 0] != task.x_train[:, 1]).astype(int)
    np.testing.assert_array_equal(task.labels_train, expected)
    check_one_hot(task.y_train, task.labels_train, 2)
    np.testing.assert_array_equal(task.x_test, task.x_train)
    np.testing.assert_array_equal(task.y_test, task.y_train)


def test_staircase():
    task = load_task("staircase")
    x, y = task.x_train[:, 0], task.y_train[:, 0]
    assert task.x_train.shape == (400, 1) and task.y_train.shape == (400, 1)
    assert not task.is_classification and task.default_epochs == 30
    assert -4 <= x.min() < -3.9 and 3.9 < x.max() <= 4
    np.testing.assert_allclose(np.diff(x), 0.02, atol=2 ** -8)          # evenly spread, 0.02 apart
    np.testing.assert_array_equal(x * 256, np.round(x * 256))          # exact in Q(12,8)
    z = x - 1                                                          # w = 1, b = -1
    assert not np.isin(z, [-1.0, 0.0, 1.0]).any()                      # none on a step
    assert np.min(np.abs(z[:, None] - np.array([-1.0, 0.0, 1.0]))) > 2 ** -9
    np.testing.assert_array_equal(y, sum(np.sign(z - c) for c in (-1.0, 0.0, 1.0)))
    assert set(np.unique(y)) == {-3.0, -1.0, 1.0, 3.0}
    zt = task.x_test[:, 0] - 1
    assert 0 < len(zt) <= 200 and task.y_test.shape == (len(zt), 1)
    assert not np.isin(zt, [-1.0, 0.0, 1.0]).any()
    np.testing.assert_array_equal(task.y_test[:, 0], sum(np.sign(zt - c) for c in (-1.0, 0.0, 1.0)))


@pytest.mark.parametrize("name", ["staircase", "xor", "iris"])
def test_builtin_tasks_are_reproducible(name):
    a, b = load_task(name), load_task(name)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_default_config_fits_builtin_task(name):
    task = load_task(name)
    config = default_config(task)
    assert config.name == name
    assert (config.inputs, config.outputs) == (task.inputs, task.outputs)


# -- Users' files --------------------------------------------------------------------------------

def test_npz_integer_labels_are_classification(tmp_path):
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(30, 3)), rng.integers(0, 4, 30)
    labels[:4] = [0, 1, 2, 3]
    path = tmp_path / "cls.npz"
    np.savez(path, x=x, y=labels)
    task = load_task(str(path))
    assert task.name == "cls" and task.is_classification
    np.testing.assert_array_equal(task.x_train, x)
    check_one_hot(task.y_train, labels, 4)
    assert task.x_test is None and task.y_test is None and task.labels_test is None


def test_npz_float_targets_are_regression(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20), rng.normal(size=20)           # 1-D: one input, one output
    path = tmp_path / "reg.npz"
    np.savez(path, x=x, y=y)
    task = load_task(str(path))
    assert not task.is_classification
    assert task.x_train.shape == (20, 1) and task.y_train.shape == (20, 1)
    np.testing.assert_array_equal(task.y_train[:, 0], y)
    path2 = tmp_path / "reg2.npz"
    np.savez(path2, x=x.reshape(10, 2), y=np.arange(20.0).reshape(10, 2))
    task = load_task(str(path2))
    assert (task.inputs, task.outputs) == (2, 2) and not task.is_classification


def test_npz_with_test_split(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "split.npz"
    np.savez(path, x=rng.normal(size=(12, 2)), y=np.array([0, 1] * 6),
             x_test=rng.normal(size=(5, 2)), y_test=np.array([2, 0, 1, 1, 0]))
    task = load_task(str(path))
    assert task.x_test.shape == (5, 2)
    assert task.outputs == 3                          # a class seen only in the test split counts
    check_one_hot(task.y_test, [2, 0, 1, 1, 0], 3)
    np.testing.assert_array_equal(task.labels_test, [2, 0, 1, 1, 0])
    path = tmp_path / "split_reg.npz"
    np.savez(path, x=np.ones((4, 2)), y=np.ones((4, 3)), x_test=np.ones((2, 2)), y_test=np.zeros((2, 3)))
    task = load_task(str(path))
    assert task.y_test.shape == (2, 3) and not task.is_classification


def test_csv_label_column(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text(" a , label , b\n1.5,0,2\n-1,2,3.25\n0,1,0\n\n")
    task = load_task(str(path))
    assert task.name == "flowers" and task.is_classification
    np.testing.assert_array_equal(task.x_train, [[1.5, 2.0], [-1.0, 3.25], [0.0, 0.0]])
    np.testing.assert_array_equal(task.labels_train, [0, 2, 1])
    check_one_hot(task.y_train, [0, 2, 1], 3)
    assert task.x_test is None


def test_csv_y_columns_and_split(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("y1,f0,split,y0,f1\n"
                    "1,2,train,3,4\n"
                    "5,6,test,7,8\n"
                    "9,10,TRAIN,11,12\n"
                    "13,14,Test,15,16\n")
    task = load_task(str(path))
    assert not task.is_classification
    np.testing.assert_array_equal(task.x_train, [[2, 4], [10, 12]])
    np.testing.assert_array_equal(task.y_train, [[1, 3], [9, 11]])      # header order: y1, y0
    np.testing.assert_array_equal(task.x_test, [[6, 8], [14, 16]])
    np.testing.assert_array_equal(task.y_test, [[5, 7], [13, 15]])


def test_csv_single_y_column(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n0.5,1\n1.5,-2\n")
    task = load_task(str(path))
    assert (task.inputs, task.outputs) == (1, 1)
    np.testing.assert_array_equal(task.y_train[:, 0], [1.0, -2.0])


def test_csv_labels_with_split(tmp_path):
    path = tmp_path / "cls.csv"
    path.write_text("f,label,split\n1,0,train\n2,1,train\n3,1,test\n")
    task = load_task(str(path))
    np.testing.assert_array_equal(task.labels_train, [0, 1])
    np.testing.assert_array_equal(task.labels_test, [1])
    np.testing.assert_array_equal(task.x_test, [[3.0]])


def test_default_config_for_user_data(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-3.5, 3.5, size=(50, 5))
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=rng.integers(0, 3, 50))
    task = load_task(str(path))
    config = default_config(task)
    assert (config.inputs, config.outputs) == (5, 3)
    assert config.sizes == (5, 16, 3)
    assert config.formats.input.bits == 8
    assert config.formats.input.max_value >= np.abs(x).max()            # the data fits the format
    assert check_stability(config, task.x_train).ok                      # gains inside the bound


# -- Bad files -----------------------------------------------------------------------------------

def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


BAD_NPZ = {
    "missing_y": (dict(x=np.ones((3, 2))), "lacks the array(s) ['y']"),
    "missing_x": (dict(y=np.ones(3)), "lacks the array(s) ['x']"),
    "row_mismatch": (dict(x=np.ones((5, 2)), y=np.ones(4)), "x has 5 rows but y has 4"),
    "label_row_mismatch": (dict(x=np.ones((5, 2)), y=np.array([0, 1, 0])), "x has 5 rows but y has 3"),
    "nan_x": (dict(x=np.array([[1.0, np.nan]]), y=np.ones(1)), "array 'x' contains NaN or infinite values"),
    "inf_y": (dict(x=np.ones((2, 1)), y=np.array([1.0, np.inf])),
              "array 'y' contains NaN or infinite values"),
    "x_test_without_y_test": (dict(x=np.ones((2, 1)), y=np.ones(2), x_test=np.ones((1, 1))),
                              "give both x_test and y_test, or neither"),
    "y_test_without_x_test": (dict(x=np.ones((2, 1)), y=np.ones(2), y_test=np.ones(1)),
                              "give both x_test and y_test, or neither"),
    "test_columns": (dict(x=np.ones((2, 3)), y=np.ones(2), x_test=np.ones((1, 2)), y_test=np.ones(1)),
                     "x_test has 2 columns, x has 3"),
    "test_rows": (dict(x=np.ones((2, 1)), y=np.ones(2), x_test=np.ones((3, 1)), y_test=np.ones(2)),
                  "x_test and y_test have different numbers of rows"),
    "labels_vs_real": (dict(x=np.ones((2, 1)), y=np.array([0, 1]), x_test=np.ones((1, 1)), y_test=np.ones(1)),
                       "y and y_test must both be integer class labels or both be real targets"),
    "negative_label": (dict(x=np.ones((2, 1)), y=np.array([0, -1])), "class labels in 'y' must be >= 0"),
    "strings": (dict(x=np.array([["a", "b"]]), y=np.ones(1)), "array 'x' is not numeric"),
    "empty": (dict(x=np.ones((0, 2)), y=np.ones(0)), "must be 1-D or 2-D and non-empty"),
    "3d": (dict(x=np.ones((2, 2, 2)), y=np.ones(2)), "must be 1-D or 2-D and non-empty"),
}


@pytest.mark.parametrize("case", BAD_NPZ)
def test_bad_npz(case, tmp_path):
    arrays, message = BAD_NPZ[case]
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TaskError) as info:
        load_task(str(path))
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(TaskError, match="is not a readable .npz file"):
        load_task(str(path))


BAD_CSV = {
    "non_numeric": ("a,label\n1,0\nfoo,1\n", ":3: a value is not a number"),
    "empty_cell": ("a,b,y\n1,,0\n", ":2: a value is not a number"),
    "no_target": ("a,b\n1,2\n", "no target column; name it 'label'"),
    "ragged_long": ("a,b,y\n1,2,3\n1,2,3,4\n", ":3: 4 fields, the header has 3"),
    "ragged_short": ("a,b,y\n1,2\n", ":2: 2 fields, the header has 3"),
    "header_only": ("a,y\n", "a CSV needs a header row and at least one data row"),
    "label_and_y": ("a,label,y\n1,0,2\n", "use either a 'label' column or 'y' columns, not both"),
    "fractional_label": ("a,label\n1,0.5\n", "'label' must hold whole class numbers"),
    "bad_split": ("a,y,split\n1,2,validate\n", ":2: split must be 'train' or 'test', not 'validate'"),
    "all_test": ("a,y,split\n1,2,test\n", "every row is in the test split"),
    "no_features": ("y0,y1\n1,2\n", "no feature columns besides the targets"),
    "nan": ("a,y\nnan,1\n", "contains NaN or infinite values"),
    "negative_label": ("a,label\n1,-1\n", "must be >= 0"),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_bad_csv(case, tmp_path):
    text, message = BAD_CSV[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TaskError) as info:
        load_task(str(path))
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    for name in ("gone.npz", "gone.csv", "GONE.CSV"):
        with pytest.raises(TaskError, match="does not exist"):
            load_task(str(tmp_path / name))


def test_unknown_suffix_or_name(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a,y\n1,2\n")
    with pytest.raises(TaskError, match=r"Unknown task .*data\.txt.*staircase.*\.npz / \.csv"):
        load_task(str(path))
    with pytest.raises(TaskError, match="Unknown task 'mnist'"):
        load_task("mnist")


def test_task_error_is_a_value_error():
    assert issubclass(TaskError, ValueError)


def test_csv_with_byte_order_mark(tmp_path):
    """Spreadsheets save 'CSV UTF-8' with a BOM before the first header name."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbflabel,a\n0,1\n1,2\n")
    task = load_task(str(path))
    np.testing.assert_array_equal(task.labels_train, [0, 1])


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (0.0, 1.0), (-0.5, 2.0)])
def test_one_hot_targets_in_any_two_levels_report_accuracy(tmp_path, low, high):
    rng = np.random.default_rng(1)
    labels, labels_test = rng.integers(0, 4, 40), rng.integers(0, 4, 10)
    y, y_test = np.full((40, 4), low), np.full((10, 4), low)
    y[np.arange(40), labels] = high
    y_test[np.arange(10), labels_test] = high
    path = tmp_path / "hot.npz"
    np.savez(path, x=rng.normal(size=(40, 3)), y=y, x_test=rng.normal(size=(10, 3)), y_test=y_test)
    task = load_task(str(path))
    assert task.is_classification and (task.labels_train == labels).all() and (task.labels_test == labels_test).all()
    assert np.array_equal(task.y_train, y)          # the targets stay as given


def test_real_targets_that_are_not_one_hot_stay_regression(tmp_path):
    y = np.zeros((20, 3))
    y[:, 0] = 1
    y[0, 1] = 1                                      # two high entries in one row
    path = tmp_path / "two.npz"
    np.savez(path, x=np.ones((20, 2)), y=y)
    assert not load_task(str(path)).is_classification


@pytest.mark.parametrize("name, inputs, classes, train, test", [
    ("moons", 2, 2, 400, 200), ("circles", 2, 2, 400, 200), ("breast_cancer", 30, 2, 400, 169),
    ("wine", 13, 3, 120, 58)])
def test_the_scikit_learn_tasks_are_standardised_and_split(name, inputs, classes, train, test):
    task = load_task(name)
    assert (task.inputs, task.outputs, len(task.x_train), len(task.x_test)) == (inputs, classes, train, test)
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(task.x_train.std(axis=0), 1, atol=1e-9)
    assert set(np.unique(task.labels_train)) == set(range(classes))
    again = load_task(name)
    np.testing.assert_array_equal(again.x_test, task.x_test)


def test_a_file_named_like_a_built_in_task_gets_a_config_of_its_own(tmp_path):
    """moons.npz with three inputs is the user's data, not the built-in moons (two inputs)."""
    rng = np.random.default_rng(5)
    path = tmp_path / "moons.npz"
    np.savez(path, x=rng.normal(size=(30, 3)), y=rng.integers(0, 2, 30))
    config = default_config(load_task(str(path)))
    assert config.inputs == 3 and config.sizes == (3, 16, 2)


def test_a_users_data_trains_about_twenty_thousand_steps():
    from nfloop.model.tasks import FILE_EPOCHS, FILE_STEPS, file_epochs
    assert [file_epochs(n) for n in (50, 120, 400, 2000, 60000)] == [100, 100, 50, 10, 10]
    assert file_epochs(400) * 400 == FILE_STEPS and FILE_EPOCHS == (10, 100)
