"""Data sets: the built-in tasks and users' own files.

A :class:`Task` holds real-valued inputs and targets with a fixed train/test
split. Classification targets are one-hot vectors (the network regresses
onto them; accuracy is the argmax). Each built-in task ships a default config
in ``model/configs/NAME.toml``.
"""

from __future__ import annotations

import array
import csv
import itertools
import math
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .config import (
    MAX_SHIFT,
    Activation,
    ActivationKind,
    Formats,
    Layer,
    LearnerConfig,
    QFormat,
    Window,
    load_config,
    path_problem,
)

__all__ = ["TaskError", "Task", "BUILTIN_TASKS", "load_task", "default_config", "bounded_config",
           "searched_config", "with_gain_offset"]

CONFIG_DIR = Path(__file__).parent / "configs"

#: The most data a user's file may hold, counted as float64 (8 bytes a value): a .npz whose
#: arrays, or a CSV whose values, would take more are refused before they are loaded.
MAX_DATA_BYTES = 2**30
#: The largest magnitude of a data value: beyond any fixed-point format nfloop has (at most
#: 32 bits of integer codes), so such a value only saturates, and squares of it overflow.
MAX_DATA_VALUE = 2.0 ** 31
#: The most classes a file's integer labels may name (labels 0 to MAX_CLASSES - 1): each
#: class is an output unit and a one-hot column.
MAX_CLASSES = 10_000


class TaskError(ValueError):
    """A data set that cannot be used; the message names the fix."""


@dataclass
class Task:
    """A training problem.

    Members
    -------
    x_train, y_train : float arrays ``(n, inputs)``, ``(n, outputs)``
    x_test, y_test : float arrays, or ``None`` when there is no test split
    labels_train, labels_test : int arrays for classification, else ``None``
    default_epochs : int
    source : the file a user's data came from; ``None`` for a built-in task
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    labels_train: np.ndarray | None = None
    labels_test: np.ndarray | None = None
    default_epochs: int = 10
    description: str = ""
    source: Path | None = None

    def head(self, count: int) -> Task:
        """The same task with only its first ``count`` training samples: a quick run."""
        labels = None if self.labels_train is None else self.labels_train[:count]
        return replace(self, x_train=self.x_train[:count], y_train=self.y_train[:count], labels_train=labels)

    @property
    def is_classification(self) -> bool:
        return self.labels_train is not None

    @property
    def inputs(self) -> int:
        return self.x_train.shape[1]

    @property
    def outputs(self) -> int:
        return self.y_train.shape[1]


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def _classification(name, x_train, labels_train, x_test, labels_test, **kw) -> Task:
    classes = int(max(labels_train.max(), -1 if labels_test is None else labels_test.max())) + 1
    return Task(name, x_train, _one_hot(labels_train, classes), x_test,
                None if labels_test is None else _one_hot(labels_test, classes),
                labels_train, labels_test, **kw)


def staircase_fn(z: np.ndarray) -> np.ndarray:
    """The paper's sigma(z) = sgn(z+1) + sgn(z) + sgn(z-1)."""
    return np.sign(z + 1) + np.sign(z) + np.sign(z - 1)


def _staircase() -> Task:
    # y = sigma(w*x + b) with w = 1, b = -1. Train: 400 points spaced 0.02 over
    # [-4, 4], offset by 0.01 so that none sits on a step (where sigma is 0 and
    # only the exact (w, b) fits); test: 200 fixed random points, likewise.
    # Values are multiples of 2**-8 so the Q(12,8) input format holds them exactly.
    def on_grid(x):
        x = np.round(x * 256) / 256
        return x[~np.isin(x - 1, (-1.0, 0.0, 1.0))]
    x_train = on_grid(-4 + 0.01 + 0.02 * np.arange(400))
    x_test = on_grid(np.random.default_rng(1).uniform(-4, 4, 200))
    return Task("staircase", x_train[:, None], staircase_fn(x_train - 1)[:, None],
                x_test[:, None], staircase_fn(x_test - 1)[:, None], default_epochs=30,
                description="one staircase neuron y = sigma(x - 1) (paper Fig. 4)")


def _xor() -> Task:
    x = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    labels = np.array([0, 1, 1, 0])
    return _classification("xor", x, labels, x, labels, default_epochs=100,
                           description="XOR of two +-1 inputs, two one-hot outputs; test = train")


def _digits() -> Task:
    from sklearn.datasets import load_digits
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    x = data.data[order] / 16.0
    labels = data.target[order].astype(np.int64)
    return _classification("digits", x[:1400], labels[:1400], x[1400:], labels[1400:],
                           default_epochs=15,
                           description="scikit-learn 8x8 digits, 1400 train / 397 test, pixels / 16")


def _iris() -> Task:
    from sklearn.datasets import load_iris
    data = load_iris()
    order = np.random.default_rng(0).permutation(len(data.target))
    x, labels = data.data[order], data.target[order].astype(np.int64)
    mean, std = x[:100].mean(axis=0), x[:100].std(axis=0)
    x = (x - mean) / std
    return _classification("iris", x[:100], labels[:100], x[100:], labels[100:],
                           default_epochs=50,
                           description="scikit-learn iris, standardised, 100 train / 50 test")


def _standardised(name, x, labels, train: int, epochs: int, description: str) -> Task:
    """A classification task from ``x`` shuffled with seed 0, each column standardised by the
    training split's mean and spread, the first ``train`` samples for training."""
    order = np.random.default_rng(0).permutation(len(labels))
    x, labels = x[order], labels[order].astype(np.int64)
    mean, std = x[:train].mean(axis=0), x[:train].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    return _classification(name, x[:train], labels[:train], x[train:], labels[train:], default_epochs=epochs,
                           description=description)


def _moons() -> Task:
    from sklearn.datasets import make_moons
    x, labels = make_moons(n_samples=600, noise=0.2, random_state=0)
    return _standardised("moons", x, labels, 400, 50,
                         "scikit-learn two moons, noise 0.2, seed 0, standardised, 400 train / 200 test")


def _circles() -> Task:
    from sklearn.datasets import make_circles
    x, labels = make_circles(n_samples=600, noise=0.1, factor=0.5, random_state=0)
    return _standardised("circles", x, labels, 400, 50,
                         "scikit-learn two circles, noise 0.1, factor 0.5, seed 0, standardised, 400 train / 200 test")


def _breast_cancer() -> Task:
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    return _standardised("breast_cancer", data.data, data.target, 400, 20,
                         "scikit-learn breast cancer (Wisconsin), 30 features standardised, 400 train / 169 test")


def _wine() -> Task:
    from sklearn.datasets import load_wine
    data = load_wine()
    return _standardised("wine", data.data, data.target, 120, 50,
                         "scikit-learn wine, 13 features standardised, 120 train / 58 test")


BUILTIN_TASKS = {"staircase": _staircase, "xor": _xor, "digits": _digits, "iris": _iris, "moons": _moons,
                 "circles": _circles, "breast_cancer": _breast_cancer, "wine": _wine}


# -- Users' files ---------------------------------------------------------------------------

def _as_matrix(array, name: str, path: Path) -> np.ndarray:
    try:
        m = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise TaskError(f"{path}: array {name!r} is not numeric") from None
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise TaskError(f"{path}: array {name!r} must be 1-D or 2-D and non-empty, not shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise TaskError(f"{path}: array {name!r} contains NaN or infinite values; clean the data")
    peak = float(np.max(np.abs(m)))
    if peak > MAX_DATA_VALUE:
        raise TaskError(f"{path}: array {name!r} holds a value of magnitude {peak:.3g}, beyond 2**31, more than "
                        f"any fixed-point format of nfloop holds; rescale the data (e.g. standardise each column)")
    return m


def _size(count: int) -> str:
    """A number of bytes in GiB, MiB or KiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):,.1f} {unit}"
    return f"{count} bytes"


def _check_labels(values: np.ndarray, name: str, path: Path) -> None:
    """Refuse class labels that are negative or name more classes than :data:`MAX_CLASSES`, before
    they are cast to int64 (where 2**63 and above would wrap) or one-hot encoded."""
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 0:
        raise TaskError(f"{path}: class labels in {name!r} must be >= 0, found {low}")
    if high >= MAX_CLASSES:
        raise TaskError(f"{path}: class labels in {name!r} go up to {high}, but nfloop takes at most "
                        f"{MAX_CLASSES:,} classes (labels 0 to {MAX_CLASSES - 1}); number the classes 0, 1, 2, ... "
                        f"(numpy.unique(y, return_inverse=True) does)")


def _labels(array, name: str, path: Path) -> np.ndarray | None:
    """Integer class labels if ``array`` is a 1-D integer array, else None (regression)."""
    a = np.asarray(array)
    if a.ndim == 1 and np.issubdtype(a.dtype, np.integer):
        _check_labels(a, name, path)
        return a.astype(np.int64)
    return None


def _from_arrays(path: Path, x, y, x_test, y_test) -> Task:
    x = _as_matrix(x, "x", path)
    if (x_test is None) != (y_test is None):
        raise TaskError(f"{path}: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test = _as_matrix(x_test, "x_test", path)
        if x_test.shape[1] != x.shape[1]:
            raise TaskError(f"{path}: x_test has {x_test.shape[1]} columns, x has {x.shape[1]}")
    labels, labels_test = _labels(y, "y", path), None if y_test is None else _labels(y_test, "y_test", path)
    if y_test is not None and (labels is None) != (labels_test is None):
        raise TaskError(f"{path}: y and y_test must both be integer class labels or both be real targets")
    if labels is None:
        y = _as_matrix(y, "y", path)
        y_test = None if y_test is None else _as_matrix(y_test, "y_test", path)
        if y_test is not None and y_test.shape[1] != y.shape[1]:
            raise TaskError(f"{path}: y_test has {y_test.shape[1]} columns, y has {y.shape[1]}")
    if len(labels if labels is not None else y) != len(x):
        raise TaskError(f"{path}: x has {len(x)} rows but y has {len(labels if labels is not None else y)}")
    if x_test is not None and len(labels_test if labels_test is not None else y_test) != len(x_test):
        raise TaskError(f"{path}: x_test and y_test have different numbers of rows")
    name = path.stem
    if labels is not None:
        classes = int(max(labels.max(), -1 if labels_test is None else labels_test.max())) + 1
        rows = len(labels) + (0 if labels_test is None else len(labels_test))
        if rows * classes * 8 > MAX_DATA_BYTES:
            raise TaskError(f"{path}: one-hot targets for {classes:,} classes and {rows:,} samples would take "
                            f"{_size(rows * classes * 8)}, more than the {_size(MAX_DATA_BYTES)} nfloop loads; "
                            f"use fewer classes or samples")
        return _classification(name, x, labels, x_test, labels_test, description=f"from {path}", source=path,
                               default_epochs=file_epochs(len(x)))
    hot = _one_hot_labels(y)
    if hot is not None and (y_test is None or _one_hot_labels(y_test, _levels(y)) is not None):
        # one-hot targets in any two levels (0/1, -1/+1, ...): regress onto them as given, and
        # report the arg-max accuracy
        return Task(name, x, y, x_test, y_test, labels_train=hot,
                    labels_test=None if y_test is None else np.argmax(y_test, axis=1),
                    description=f"from {path} (one-hot targets)", source=path, default_epochs=file_epochs(len(x)))
    return Task(name, x, y, x_test, y_test, description=f"from {path}", source=path,
                default_epochs=file_epochs(len(x)))


#: Training steps a user's data gets by default, and the fewest and most epochs they make.
FILE_STEPS, FILE_EPOCHS = 20_000, (10, 100)


def file_epochs(samples: int) -> int:
    """Default epochs for a user's data of ``samples`` training samples: about :data:`FILE_STEPS` online
    steps, within :data:`FILE_EPOCHS` (small data sets need more passes to converge; the built-in tasks
    of a few hundred samples train best over 20-50)."""
    low, high = FILE_EPOCHS
    return min(high, max(low, -(-FILE_STEPS // max(samples, 1))))


def _levels(y: np.ndarray):
    values = np.unique(y)
    return tuple(values) if len(values) == 2 else None


def _one_hot_labels(y: np.ndarray, levels=None) -> np.ndarray | None:
    """The class of each row if ``y`` is one-hot in two levels (one high entry a row), else None."""
    levels = levels or _levels(y)
    if y.shape[1] < 2 or levels is None or not np.isin(y, levels).all():
        return None
    high = y == levels[1]
    return np.argmax(y, axis=1) if np.all(high.sum(axis=1) == 1) else None


def _npz_sizes(path: Path) -> dict[str, tuple[tuple[int, ...], int]]:
    """Each member's shape and the bytes it would take loaded as float64, from the .npy headers inside
    the .npz (and the zip's own sizes for other members), without loading any data."""
    sizes = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):         # numpy.load hands these over as raw bytes
                sizes[info.filename] = ((info.file_size,), info.file_size)
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"array {info.filename[:-4]!r} is in .npy format version "
                                     f"{version[0]}.{version[1]}, which holds no plain numeric array")
            sizes[info.filename[:-4]] = (shape, math.prod(shape) * max(dtype.itemsize, 8))
    return sizes


def _check_npz_size(path: Path) -> None:
    """Refuse a .npz whose arrays would take more than :data:`MAX_DATA_BYTES` once loaded (as float64)."""
    try:
        sizes = _npz_sizes(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise TaskError(f"{path} is not a readable .npz file ({err}); save one with "
                        f"numpy.savez(path, x=..., y=...)") from None
    total = sum(size for _, size in sizes.values())
    if total > MAX_DATA_BYTES:
        shapes = ", ".join(f"{name!r} {shape}" for name, (shape, _) in sizes.items())
        raise TaskError(f"{path}: its arrays ({shapes}) would take {_size(total)} as float64, more than "
                        f"the {_size(MAX_DATA_BYTES)} nfloop loads; save a subset of the data")


def _load_npz(path: Path) -> Task:
    _check_npz_size(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise TaskError(f"{path} is not a readable .npz file ({err}); save one with "
                        f"numpy.savez(path, x=..., y=...)") from None
    missing = {"x", "y"} - set(arrays)
    if missing:
        raise TaskError(f"{path} lacks the array(s) {sorted(missing)}; it has {sorted(arrays)}. "
                        f"Save with numpy.savez(path, x=..., y=..., x_test=..., y_test=...)")
    return _from_arrays(path, arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"))


def _load_csv(path: Path) -> Task:
    """CSV with a header: a ``label`` column (classes) or ``y``/``y0``, ``y1``... columns
    (regression targets), an optional ``split`` column (train/test), features otherwise."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:   # -sig: spreadsheets' BOM
            data, test_mask, header, features, targets = _read_csv(csv.reader(file), path)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TaskError(f"{path} is not a readable CSV text file ({err})") from None
    x, y = data[:, :len(features)], data[:, len(features):]
    if header[targets[0]] == "label":
        if not np.all(y == np.round(y)):
            raise TaskError(f"{path}: 'label' must hold whole class numbers")
        _check_labels(y[:, 0], "label", path)
        y = y[:, 0].astype(np.int64)
    if test_mask.all():
        raise TaskError(f"{path}: every row is in the test split; mark some rows 'train'")
    has_test = test_mask.any()
    return _from_arrays(path, x[~test_mask], y[~test_mask],
                        x[test_mask] if has_test else None, y[test_mask] if has_test else None)


def _read_csv(reader, path: Path):
    """The values of a CSV, row by row into one float64 array (not a list of strings per cell: a
    100 MB file took 1.7 GB that way); stops at :data:`MAX_DATA_BYTES`."""
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise TaskError(f"{path}: a CSV needs a header row and at least one data row")
    header = [h.strip() for h in header]
    is_target = [h == "label" or h == "y" or (h.startswith("y") and h[1:].isdigit()) for h in header]
    if not any(is_target):
        raise TaskError(f"{path}: no target column; name it 'label' (classes) or 'y' / 'y0', 'y1', ... "
                        f"(real targets). Header: {header}")
    if "label" in header and sum(is_target) > 1:
        raise TaskError(f"{path}: use either a 'label' column or 'y' columns, not both")
    split_col = header.index("split") if "split" in header else None
    features = [i for i, h in enumerate(header) if not is_target[i] and i != split_col]
    targets = [i for i, t in enumerate(is_target) if t]
    if not features:
        raise TaskError(f"{path}: no feature columns besides the targets")
    columns = features + targets
    most = MAX_DATA_BYTES // (8 * len(columns))
    values, test_mask = array.array("d"), bytearray()
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise TaskError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
        try:
            numbers = [float(row[i]) for i in columns]
        except ValueError:
            raise TaskError(f"{path}:{line}: a value is not a number: {row}") from None
        split = row[split_col].strip().lower() if split_col is not None else "train"
        if split not in ("train", "test"):
            raise TaskError(f"{path}:{line}: split must be 'train' or 'test', not {split!r}")
        if len(test_mask) >= most:
            raise TaskError(f"{path}: more than {most:,} rows of {len(columns)} values, more than the "
                            f"{_size(MAX_DATA_BYTES)} of data nfloop loads; use a subset of the data")
        values.extend(numbers)
        test_mask.append(split == "test")
    if not test_mask:
        raise TaskError(f"{path}: a CSV needs a header row and at least one data row")
    data = np.frombuffer(values, dtype=np.float64).reshape(len(test_mask), len(columns))
    return data, np.frombuffer(test_mask, dtype=np.bool_), header, features, targets


def load_task(name_or_path: str) -> Task:
    """A built-in task by name, or a ``.npz`` / ``.csv`` file."""
    if name_or_path in BUILTIN_TASKS:
        return BUILTIN_TASKS[name_or_path]()
    path = Path(name_or_path)
    if path.suffix.lower() not in (".npz", ".csv"):
        raise TaskError(f"Unknown task {name_or_path!r}: use one of {sorted(BUILTIN_TASKS)} or a "
                        f".npz / .csv file")
    problem = path_problem(path, "Data file", "a .npz or .csv file")
    if problem is not None:
        raise TaskError(problem)
    return _load_npz(path) if path.suffix.lower() == ".npz" else _load_csv(path)


# -- Default configs ------------------------------------------------------------------------

def default_config(task: Task) -> LearnerConfig:
    """The shipped config of a built-in task, or for a user's data :func:`bounded_config` with the hidden
    window and gains that train best on a held-out part of the data (:func:`searched_config`)."""
    shipped = CONFIG_DIR / f"{task.name}.toml"
    if task.source is None and task.name in BUILTIN_TASKS and shipped.is_file():   # a file named moons.csv
        return load_config(shipped)                                                # is not the built-in moons
    return searched_config(bounded_config(task), task)


def bounded_config(task: Task) -> LearnerConfig:
    """A config sized for a user's data, each layer's gain from the stability bound of its input.

    For a user's data: one hidden ReLU layer of 16 units, an input format
    wide enough for the data's range in 8 bits, and each layer's gain inside
    the LMS stability bound of that layer's input with a factor-of-two margin:
    the data for the hidden layer, the hidden units' activations at the initial
    weights for the output layer (:func:`~.stability.layer_inputs`).
    """
    from .stability import layer_inputs, stable_gain_shift
    peak = float(np.max(np.abs(task.x_train)))
    int_bits = max(1, math.ceil(math.log2(peak + 1e-12)) + 1) + 1 if peak > 0 else 2
    int_bits = min(int_bits, 8)
    input_fmt = QFormat(8, 8 - int_bits)
    shift = stable_gain_shift(task.x_train, batch_size=1)
    if shift > MAX_SHIFT:
        raise TaskError(f"{task.name}: the data's largest inputs need a loop gain below 2**-{shift}, smaller than "
                        f"the smallest nfloop has (2**-{MAX_SHIFT}); rescale the data (e.g. standardise each column)")
    config = LearnerConfig(
        name=task.name, inputs=task.inputs,
        layers=(Layer(16, Activation(ActivationKind.RELU), gain_shift=shift), Layer(task.outputs, gain_shift=shift)),
        formats=Formats(input=input_fmt),
    )
    hidden = layer_inputs(config, task.x_train)[-1]
    output_shift = min(max(stable_gain_shift(hidden, batch_size=1), 0), MAX_SHIFT)
    return config.with_changes(layers=(config.layers[0], replace(config.layers[1], gain_shift=output_shift)))


#: Gain offsets :func:`searched_config` tries: -1 doubles every gain, +2 quarters it.
GAIN_OFFSETS = (-1, 0, 1, 2)
#: Hidden ReLU windows it tries: the loop's default, and ReLU's own slope (gradient descent's).
HIDDEN_WINDOWS = (Window(lo=-0.5), Window(lo=0.0))
#: Training steps each offset gets at most in the search, and the samples the search needs at least.
SEARCH_STEPS, SEARCH_SAMPLES = 100_000, 20


def with_gain_offset(config: LearnerConfig, offset: int) -> LearnerConfig:
    """``config`` with every layer's gain shift moved by ``offset`` (within the shifts a config allows)."""
    return config.with_changes(layers=tuple(replace(l, gain_shift=min(max(l.gain_shift + offset, -8), MAX_SHIFT))
                                            for l in config.layers))


def searched_config(config: LearnerConfig, task: Task, seeds: int = 2) -> LearnerConfig:
    """``config`` with the hidden window of :data:`HIDDEN_WINDOWS` and the gain offset of
    :data:`GAIN_OFFSETS` that train the loop best (fixed point, seeds 0 .. ``seeds`` - 1, the least
    squared error over the last five epochs) on a fifth of the training data held out, after training
    on the rest; among those that keep every layer inside the stability bound of its input. Ties go to
    the default window and the smaller gains.

    The bound with its factor-two margin is safe but rarely best: low-dimensional data of alike samples
    train best at a quarter of it, data whose bound is set by a few outliers at twice it
    (``docs/results.md``); and the window that lets error through below z = 0 can cost accuracy on
    data where few units die. ``config`` itself for data too small to hold any out (under
    :data:`SEARCH_SAMPLES`).
    """
    from .stability import check_layers
    from .train import train
    n = len(task.x_train)
    if n < SEARCH_SAMPLES:
        return config
    order = np.random.default_rng(0).permutation(n)
    held, kept = order[:n // 5], order[n // 5:]
    labels = task.labels_train
    part = replace(task, x_train=task.x_train[kept], y_train=task.y_train[kept], x_test=task.x_train[held],
                   y_test=task.y_train[held], labels_train=None if labels is None else labels[kept],
                   labels_test=None if labels is None else labels[held])
    epochs = max(1, min(task.default_epochs, SEARCH_STEPS // len(kept)))
    scores = {}
    for (w, window), offset in itertools.product(enumerate(HIDDEN_WINDOWS), GAIN_OFFSETS):
        hidden = replace(config.layers[0], window=window)
        candidate = with_gain_offset(config.with_changes(layers=(hidden, *config.layers[1:])), offset)
        if not all(report.ok for report in check_layers(candidate, part.x_train)):
            continue
        results = [train(candidate.with_changes(init_seed=seed), part, arith="fixed", epochs=epochs, seed=seed)
                   for seed in range(seeds)]
        # the held-out squared error, what the loop minimises, over the last epochs: a gain too large for
        # the data shows as an error that stays high or jumps from epoch to epoch, which one epoch's
        # accuracy on a small held-out part can miss
        scores[(-w, offset)] = (-np.mean([m.test_mse for r in results for m in r.history[-min(5, epochs):]]),
                                candidate)
    if not scores:
        return config
    best = max(score for score, _ in scores.values())
    return scores[max(key for key, (score, _) in scores.items() if score >= best - 1e-12)][1]
