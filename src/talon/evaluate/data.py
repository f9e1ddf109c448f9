"""Data sets for :func:`talon.evaluate.evaluate`: random access by sample index, shipped to workers by range.

A source is anything with ``len(source)`` and ``source.load(start, stop) -> (inputs, labels)``
(``inputs``: a sequence of per-sample arrays, ``labels``: int64 ``[stop - start]`` or ``None``) and
``source.part(start, stop)``, a small picklable source of just that range that a worker loads.
:func:`as_source` wraps what users have:

* ``(x, y)`` or ``x``: numpy arrays ``[N, ...]`` (a ``part`` carries a copy of its rows only);
* a ``.npy`` path (memory-mapped; labels from a second ``.npy`` path) or a ``.npz`` path with arrays
  ``x`` and optional ``y`` (each worker opens the file itself: nothing is sent but the path);
* a PyTorch ``Dataset`` (or a ``DataLoader``, whose ``.dataset`` is used) or a tonic data set:
  ``dataset[i]`` is ``(sample, label)``; a sample may be a tensor, an array or a tonic event array;
* :func:`digits`: scikit-learn's bundled handwritten digits (the ``make demo`` data, no download).

Nothing reads the whole data set into memory unless the caller already holds it as arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from talon.ir.paths import check_path

from .errors import EvaluationError


class Source(Protocol):
    def __len__(self) -> int: ...

    def load(self, start: int, stop: int) -> tuple[Sequence[np.ndarray], np.ndarray | None]: ...

    def part(self, start: int, stop: int) -> Source: ...


def _labels(y, n: int, where: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iub":
        raise EvaluationError(f"{where}: labels must be integers shaped [{n}], got {y.dtype} {list(y.shape)}")
    if n and y.min() < 0:
        raise EvaluationError(f"{where}: labels must be non-negative class indices, got {int(y.min())}")
    return y.astype(np.int64)


@dataclass
class ArraySource:
    """In-memory (or memory-mapped) arrays ``x [N, ...]`` and optional labels ``y [N]``."""

    x: np.ndarray
    y: np.ndarray | None = None
    offset: int = 0  # global index of x[0] (a part remembers where it came from)

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.ndim < 1:
            raise EvaluationError("inputs must be an array shaped [N, ...] (one row per sample)")
        if self.x.dtype.kind not in "fiub":
            raise EvaluationError(f"inputs must be a real numeric array, got dtype {self.x.dtype}")
        self.y = _labels(self.y, len(self.x), "labels")

    def __len__(self) -> int:
        return len(self.x)

    def load(self, start: int, stop: int):
        a, b = start - self.offset, stop - self.offset
        return np.asarray(self.x[a:b]), None if self.y is None else self.y[a:b]

    def part(self, start: int, stop: int) -> ArraySource:
        a, b = start - self.offset, stop - self.offset
        return ArraySource(np.array(self.x[a:b]), None if self.y is None else self.y[a:b].copy(), start)


@dataclass
class FileSource:
    """``.npy`` (memory-mapped, optional labels ``.npy``) or ``.npz`` (arrays ``x``, optional ``y``)."""

    path: str
    labels_path: str | None = None

    def __post_init__(self) -> None:
        self.path = os.fspath(check_path(self.path, "FileSource: the .npy or .npz data file"))
        if Path(self.path).is_dir():
            raise EvaluationError(f"{self.path} is a directory, not a .npy or .npz data file")
        if not Path(self.path).is_file():
            raise EvaluationError(f"{self.path}: no such data file")
        if not self.path.endswith((".npy", ".npz")):
            raise EvaluationError(f"{self.path}: data files must be .npy or .npz")
        if self.labels_path is not None:
            if self.path.endswith(".npz"):
                raise EvaluationError(
                    f"{self.path}: an .npz data file carries its labels as its array 'y'; separate labels "
                    f"({os.fspath(self.labels_path)}) are for an .npy data file"
                )
            self.labels_path = os.fspath(check_path(self.labels_path, "FileSource: the .npy labels file"))
        x, y = self._arrays()
        if x.dtype.kind not in "fiub":
            raise EvaluationError(f"{self.path}: inputs must be a real numeric array, got dtype {x.dtype}")
        self._n = len(x)
        _labels(None if y is None else np.asarray(y), self._n, self.labels_path or self.path)

    def _arrays(self):
        try:
            if self.path.endswith(".npy"):
                x, y = np.load(self.path, mmap_mode="r", allow_pickle=False), None
            else:
                archive = np.load(self.path, allow_pickle=False)
                x, y = (archive["x"], archive.get("y")) if "x" in archive else (None, None)
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{self.path}: cannot read the data file: {exc}") from None
        if x is None:
            raise EvaluationError(f"{self.path}: an .npz data file needs an array named 'x' (and optionally 'y')")
        if x.ndim < 1:
            raise EvaluationError(f"{self.path}: inputs must be shaped [N, ...]")
        if self.labels_path is not None:
            y = self._labels_array()
        return x, y

    def _labels_array(self) -> np.ndarray:
        try:
            y = np.load(self.labels_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{self.labels_path}: cannot read the labels file: {exc}") from None
        if not isinstance(y, np.ndarray):
            raise EvaluationError(f"{self.labels_path}: the labels file must be an .npy array")
        return y

    def __len__(self) -> int:
        return self._n

    def load(self, start: int, stop: int):
        x, y = self._arrays()
        return np.asarray(x[start:stop]), None if y is None else np.asarray(y[start:stop]).astype(np.int64)

    def part(self, start: int, stop: int) -> FileSource:
        return self


@dataclass
class DatasetSource:
    """A PyTorch / tonic data set: ``dataset[i] -> (sample, label)`` (or just a sample)."""

    dataset: Any

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, start: int, stop: int):
        inputs, labels = [], []
        for i in range(start, stop):
            item = self.dataset[i]
            if isinstance(item, (tuple, list)) and len(item) == 2:
                sample, label = item
                labels.append(int(np.asarray(_to_numpy(label)).reshape(())))
            else:
                sample = item
            inputs.append(_to_numpy(sample))
        if labels and len(labels) != len(inputs):
            raise EvaluationError("the data set gives labels for some samples and not for others")
        return inputs, (np.asarray(labels, np.int64) if labels else None)

    def part(self, start: int, stop: int) -> DatasetSource:
        return self


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_source(data, labels=None) -> Source:
    """Wrap ``data`` (see the module docstring) as a :class:`Source`."""
    if isinstance(data, (ArraySource, FileSource, DatasetSource)):
        return data
    if isinstance(data, (str, os.PathLike)):
        return FileSource(data, None if labels is None else os.fspath(labels))
    if isinstance(data, tuple) and len(data) == 2 and labels is None:
        data, labels = data
    if isinstance(data, np.ndarray):
        return ArraySource(data, labels)
    if hasattr(data, "dataset") and hasattr(data, "batch_size"):  # a torch DataLoader: sample by index
        data = data.dataset
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if labels is not None:
            raise EvaluationError("labels= is for arrays; a data set gives (sample, label) pairs itself")
        return DatasetSource(data)
    raise EvaluationError(
        f"cannot evaluate on a {type(data).__name__}: pass arrays (x, y), an .npy/.npz path, "
        "a PyTorch or tonic Dataset, or talon.evaluate.digits()"
    )


def digits(split: str = "test", seed: int = 0) -> ArraySource:
    """scikit-learn's handwritten digits scaled to [0, 1], the stratified 80/20 split of ``make demo``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise EvaluationError(f"split must be 'train', 'test' or 'all', got {split!r}")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    if split == "all":
        return ArraySource(x, y)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return ArraySource(x_te, y_te) if split == "test" else ArraySource(x_tr, y_tr)
