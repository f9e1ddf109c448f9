"""Spike encoders: latency and delta codes identical to snntorch.spikegen; rate codes seeded."""

import numpy as np
import pytest

from talon.io import EventFormatError, delta_encode, latency_encode, rate_encode, temporal_encode

torch = pytest.importorskip("torch")
spikegen = pytest.importorskip("snntorch.spikegen")

LATENCY_OPTIONS = [
    dict(tau=5, threshold=0.01),
    dict(tau=5, threshold=0.01, clip=True),
    dict(tau=1, threshold=0.2, clip=True),
    dict(tau=3, linear=True),
    dict(tau=3, linear=True, threshold=0.3, clip=True),
    dict(tau=5, normalize=True),
    dict(tau=5, normalize=True, linear=True),
    dict(tau=2, first_spike_time=3),
]


@pytest.mark.parametrize("options", LATENCY_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("shape", [(64,), (3, 8, 8)])
def test_latency_equals_snntorch(options, shape):
    x = np.random.default_rng(len(shape)).random(shape).astype(np.float32)
    x.flat[0], x.flat[1] = 1.0, 0.0
    theirs = spikegen.latency(torch.from_numpy(x), num_steps=60, **options).numpy()
    ours = latency_encode(x, 60, **options)
    assert ours.shape == (60, *shape)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum(axis=0).max() == 1  # at most one spike each
    flat = ours.reshape(60, -1)
    times = flat.argmax(axis=0)
    assert times[0] == times[flat.sum(axis=0) > 0].min()  # the strongest input (1.0) fires first


def test_latency_drops_spikes_beyond_the_window_where_snntorch_raises():
    x = np.array([1.0, 0.5, 0.0], np.float32)
    with pytest.raises(Exception, match="out of bounds"):
        spikegen.latency(torch.from_numpy(x), num_steps=20, tau=5)
    ours = latency_encode(x, 20, tau=5)
    assert ours.sum(axis=0).tolist() == [1.0, 1.0, 0.0]  # the silent input's time (~58) is past step 19
    with pytest.raises(EventFormatError, match=r"\[0, 1\]"):
        latency_encode(np.array([1.5]), 10)


@pytest.mark.parametrize("threshold", [0.05, 0.2])
def test_delta_equals_snntorch_on_off(threshold):
    frames = np.random.default_rng(0).random((30, 4, 6, 5)).astype(np.float32)
    ours = delta_encode(frames, threshold)
    assert ours.shape == (29, 2, 4, 6, 5)
    theirs = spikegen.delta(torch.from_numpy(frames), threshold=threshold, padding=True, off_spike=True).numpy()
    np.testing.assert_array_equal(ours[:, 0] - ours[:, 1], theirs[1:])
    only_on = spikegen.delta(torch.from_numpy(frames), threshold=threshold, padding=True).numpy()
    np.testing.assert_array_equal(ours[:, 0], only_on[1:])


def test_rate_is_seeded_and_has_the_expected_rate():
    x = np.random.default_rng(1).random(20_000).astype(np.float32)
    a, b = rate_encode(x, 25, seed=3), rate_encode(x, 25, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rate_encode(x, 25, seed=4))
    assert abs(a.mean() - x.mean()) < 0.005  # 500k Bernoulli draws: std of the mean ~0.0007
    assert rate_encode(np.array([0.0, 1.0]), 50).sum(axis=0).tolist() == [0.0, 50.0]
    assert rate_encode(np.array([0.5]), 10, rate_scale=2.0).sum() == 10.0


def test_temporal_crossings_by_hand():
    signal = np.array([[0.6, 0.0], [0.4, 0.2], [0.7, 0.5], [0.9, 0.1], [0.2, 0.8]])
    assert temporal_encode(signal, 0.5).tolist() == [[1, 0], [0, 0], [1, 1], [0, 0], [0, 1]]
