"""Where an element of a Spyx tensor sits in the corresponding talon tensor.

Spyx (flax) is channels-last: a per-sample tensor is ``(H, W, C)`` or ``(L, C)``; talon (like NIR
and PyTorch) is channels-first, ``(C, H, W)`` or ``(C, L)``. A spatial tensor therefore maps by
moving the last axis to the front. Flattening breaks this: Spyx's ``Flatten`` orders the
features ``h, w, c`` while talon's orders them ``c, h, w``, so after a Flatten the two vectors
hold the same values in a different order. :class:`Layout` tracks that order as a permutation
``perm`` (talon feature ``j`` is Spyx feature ``perm[j]``) until a dense layer absorbs it into
its weight columns (or rows, going the other way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    spyx_shape: tuple[int, ...]  # per-sample shape as Spyx sees it (channels-last)
    perm: np.ndarray | None = None  # for a flat tensor: talon feature j is Spyx feature perm[j]

    @classmethod
    def from_talon(cls, shape) -> Layout:
        shape = tuple(int(d) for d in shape)
        return cls(shape if len(shape) < 2 else (*shape[1:], shape[0]))

    @property
    def rank(self) -> int:
        return len(self.spyx_shape)

    @property
    def talon_shape(self) -> tuple[int, ...]:
        s = self.spyx_shape
        return s if len(s) < 2 else (s[-1], *s[:-1])

    @property
    def permuted(self) -> bool:
        return self.perm is not None and not np.array_equal(self.perm, np.arange(self.perm.size))

    def to_talon(self, arr: np.ndarray) -> np.ndarray:
        """A per-element array in Spyx order (broadcastable to ``spyx_shape``) in talon order."""
        arr = np.broadcast_to(arr, self.spyx_shape)
        if self.rank >= 2:
            arr = np.moveaxis(arr, -1, 0)
        elif self.perm is not None:
            arr = arr[self.perm]
        return np.array(arr, order="C")  # an owned, writable copy (broadcast views are read-only)

    def to_spyx(self, arr: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_talon` (``arr`` has the talon shape)."""
        arr = np.broadcast_to(arr, self.talon_shape)
        if self.rank >= 2:
            return np.array(np.moveaxis(arr, 0, -1), order="C")
        if self.perm is None:
            return np.array(arr, order="C")
        out = np.empty(arr.shape, arr.dtype)
        out[self.perm] = arr
        return out

    def flattened(self) -> Layout:
        """The layout after a Spyx ``Flatten`` (talon ``Flatten(0, -1)``)."""
        if self.rank < 2:
            return self
        size = int(np.prod(self.spyx_shape))
        spyx_index = np.arange(size).reshape(self.spyx_shape)
        return Layout((size,), np.ascontiguousarray(np.moveaxis(spyx_index, -1, 0).reshape(-1)))

    def dense_in_columns(self, weight: np.ndarray) -> np.ndarray:
        """A dense weight ``(out, in)`` over Spyx-ordered inputs, reordered to read this (flat) layout."""
        return np.ascontiguousarray(weight[:, self.perm] if self.perm is not None else weight)

    def dense_in_rows(self, weight: np.ndarray) -> np.ndarray:
        """A talon weight ``(out, in)`` reading this layout -> Spyx kernel ``(in, out)`` over Spyx order."""
        kernel = np.ascontiguousarray(weight.T)
        if self.perm is None:
            return kernel
        out = np.empty_like(kernel)
        out[self.perm] = kernel
        return out

    def recurrent_to_talon(self, w: np.ndarray) -> np.ndarray:
        """Spyx ``recurrent_w`` ``(in, out)`` (``s @ W``) -> talon Linear weight in this layout."""
        p = self.perm if self.perm is not None else np.arange(w.shape[0])
        return np.ascontiguousarray(w[np.ix_(p, p)].T)

    def recurrent_to_spyx(self, weight: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`recurrent_to_talon`."""
        p = self.perm if self.perm is not None else np.arange(weight.shape[0])
        out = np.empty_like(weight)
        out[np.ix_(p, p)] = weight.T
        return out
