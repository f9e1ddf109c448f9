"""Per-sample input encoders: one sample (and its global index) → a time-major stimulus ``[T, *shape]``.

An encoder sees one sample at a time and its index in the data set, so the stimulus of sample
*i* is the same whichever worker, shard or batch it lands in. Any picklable callable
``encoder(sample, index, n_steps) -> array [n_steps, *input_shape]`` works; these are provided:

* :class:`Direct` — the sample held constant for ``n_steps`` (direct / current encoding);
* :class:`Rate` — Bernoulli rate coding: ``x[t] = 1`` with probability ``clip(sample, 0, 1)``, drawn
  from ``numpy.random.default_rng([seed, index])``;
* :class:`Sequence` — the sample already is ``[T, *shape]`` (e.g. frames from tonic's ``ToFrame``);
  ``T`` must equal ``n_steps``.

``encoder=None`` chooses :class:`Direct` when a sample has the Input's shape and :class:`Sequence`
when it has one more (leading) axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EvaluationError


def _check_shape(sample: np.ndarray, shape: tuple[int, ...], index: int, what: str) -> None:
    if tuple(sample.shape) != tuple(shape):
        raise EvaluationError(
            f"sample {index} has shape {list(sample.shape)}; {what} needs the Input shape {list(shape)}"
        )


@dataclass(frozen=True)
class Direct:
    """``x[t] = sample`` for every step."""

    def __call__(self, sample: np.ndarray, index: int, n_steps: int, shape: tuple[int, ...]) -> np.ndarray:
        sample = np.asarray(sample, np.float32)
        _check_shape(sample, shape, index, "direct encoding")
        return np.broadcast_to(sample, (n_steps, *shape))


@dataclass(frozen=True)
class Rate:
    """``x[t] ~ Bernoulli(clip(sample, 0, 1))``, seeded per sample by ``(seed, index)``; a sample holding
    NaN or infinity is refused (a NaN intensity would never spike)."""

    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise EvaluationError(f"Rate: seed must be a non-negative integer, got {self.seed!r}")

    def __call__(self, sample: np.ndarray, index: int, n_steps: int, shape: tuple[int, ...]) -> np.ndarray:
        sample = np.asarray(sample, np.float64)
        _check_shape(sample, shape, index, "rate encoding")
        if not np.all(np.isfinite(sample)):  # a NaN would silently never spike (talon.io.rate_encode refuses it too)
            raise EvaluationError(f"sample {index} contains NaN or infinity; rate encoding needs finite intensities")
        rng = np.random.default_rng([self.seed, index])
        return (rng.random((n_steps, *shape)) < np.clip(sample, 0.0, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class Sequence:
    """The sample is already time-major ``[T, *shape]``."""

    def __call__(self, sample: np.ndarray, index: int, n_steps: int, shape: tuple[int, ...]) -> np.ndarray:
        sample = np.asarray(sample, np.float32)
        if tuple(sample.shape) != (n_steps, *shape):
            raise EvaluationError(
                f"sample {index} has shape {list(sample.shape)}; a sequence sample must be "
                f"[n_steps={n_steps}, {', '.join(map(str, shape))}]"
            )
        return sample


ENCODERS = {"direct": Direct, "rate": Rate, "sequence": Sequence}


def resolve_encoder(encoder, sample_shape: tuple[int, ...], input_shape: tuple[int, ...]):
    """The encoder to use: ``encoder`` itself, a name from :data:`ENCODERS`, or the automatic choice."""
    if isinstance(encoder, str):
        if encoder not in ENCODERS:
            raise EvaluationError(f"unknown encoder {encoder!r}; choose one of {sorted(ENCODERS)} or pass a callable")
        return ENCODERS[encoder]()
    if encoder is not None:
        if not callable(encoder):
            raise EvaluationError(f"encoder must be callable, got {type(encoder).__name__}")
        return encoder
    if tuple(sample_shape) == tuple(input_shape):
        return Direct()
    if tuple(sample_shape[1:]) == tuple(input_shape):
        return Sequence()
    raise EvaluationError(
        f"samples shaped {list(sample_shape)} do not fit the Input shape {list(input_shape)}: pass an encoder "
        "(talon.evaluate.Rate(), a tonic transform in the data set, or a callable)"
    )


def encode_batch(encoder, samples, start: int, n_steps: int, shape: tuple[int, ...]) -> np.ndarray:
    """Stack the encoded samples ``start, start+1, ...`` time-major: ``[T, B, *shape]`` float32."""
    out = np.empty((n_steps, len(samples), *shape), np.float32)
    for k, sample in enumerate(samples):
        x = np.asarray(encoder(sample, start + k, n_steps, shape))
        if x.shape != (n_steps, *shape):
            raise EvaluationError(
                f"the encoder returned {list(x.shape)} for sample {start + k}; expected {[n_steps, *shape]}"
            )
        out[:, k] = x
    finite = np.isfinite(out).reshape(n_steps, len(samples), -1).all(axis=(0, 2)) if out.size else np.ones(0, bool)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        more = f" (and {len(bad) - 1} more of samples {start}..{start + len(samples) - 1})" if len(bad) > 1 else ""
        raise EvaluationError(f"the encoded sample {start + int(bad[0])} contains NaN or infinity{more}")
    return out
