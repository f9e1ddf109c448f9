"""talon.evaluate: identical results whatever the executor, shard size, failures or interruptions."""

from __future__ import annotations

import numpy as np
import pytest

from talon import evaluate as ev
from talon.evaluate import EvaluationError

from .models import DyingRate, InterruptedRate, digits_graph

T = 20
PRECISIONS = ("fp32", "int8")
RUN = {"n_steps": T, "encoder": ev.Rate(), "precisions": PRECISIONS, "reference": "fp32"}  # every exact comparison


def exact(result) -> dict:
    """Everything except the measured latency and how the run was executed."""
    out = {}
    for name, p in result.precisions.items():
        d = p.to_dict()
        d.pop("latency_per_sample_ms")
        out[name] = d
    return out


@pytest.fixture(scope="module")
def graph():
    return digits_graph()


@pytest.fixture(scope="module")
def data():
    return ev.digits()


@pytest.fixture(scope="module")
def serial(graph, data):
    return ev.evaluate(graph, data, **RUN, executor="serial", shard_size=360)


def test_the_serial_run_fires_and_reports_every_metric(serial):
    fp32, int8 = serial["fp32"], serial["int8"]
    assert serial.samples == 360 and serial.shards == 1
    assert all(0.02 < rate < 0.9 for rate in fp32.firing_rates.values()), fp32.firing_rates
    assert fp32.spike_agreement == 1.0 and 0.9 < int8.spike_agreement < 1.0  # int8 differs a little
    assert fp32.confusion_matrix.sum() == 360 and np.trace(fp32.confusion_matrix) == round(fp32.accuracy * 360)
    assert fp32.energy_per_sample_uj > int8.energy_per_sample_uj > 0
    assert fp32.neurobench["footprint_bytes"] > int8.neurobench["footprint_bytes"]
    assert fp32.neurobench["synaptic_operations"]["effective_acs"] > 0


def test_shard_sizes_and_a_process_pool_give_identical_results(graph, data, serial):
    small = ev.evaluate(graph, data, **RUN, executor="serial", shard_size=7)
    pooled = ev.evaluate(graph, data, **RUN, workers=2, shard_size=50)
    assert small.shards == 52 and pooled.shards == 8
    assert exact(small) == exact(serial)
    assert exact(pooled) == exact(serial)


def test_a_dask_cluster_gives_identical_results(graph, data, serial):
    with ev.local_cluster(n_workers=2) as client:
        result = ev.evaluate(graph, data, **RUN, executor=client, shard_size=90)
        env = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert set(env.values()) == {None}  # the slow malloc setting is off in the workers
    assert exact(result) == exact(serial)


def test_a_killed_worker_is_retried_and_the_result_is_unchanged(graph, data, serial, tmp_path):
    encoder = DyingRate(str(tmp_path / "died"), index=123)
    result = ev.evaluate(graph, data, **{**RUN, "encoder": encoder}, workers=2, shard_size=40)
    assert (tmp_path / "died").exists()
    assert any(f.start <= 123 < f.stop for f in result.failures)
    assert all("BrokenProcessPool" in f.error for f in result.failures)
    assert exact(result) == exact(serial)


def test_a_shard_that_keeps_failing_stops_the_run_naming_its_samples(graph, data, tmp_path):
    def broken(sample, index, n_steps, shape):
        if index >= 40:
            raise RuntimeError("sensor offline")
        return ev.Rate()(sample, index, n_steps, shape)

    with pytest.raises(EvaluationError, match=r"samples 40\.\.79 failed 3 times: RuntimeError: sensor offline"):
        ev.evaluate(graph, data, n_steps=T, encoder=broken, executor="serial", shard_size=40, retries=2)
    with pytest.raises(EvaluationError, match="the encoder failed on sample 0: ZeroDivisionError"):
        ev.evaluate(graph, data, n_steps=T, encoder=lambda *a: 1 / 0, executor="serial")


def test_an_interrupted_run_resumes_from_its_checkpoint(graph, data, serial, tmp_path):
    marker, ckpt = tmp_path / "go-on", tmp_path / "ckpt"
    encoder = InterruptedRate(str(marker), index=200)
    kwargs = dict(
        n_steps=T,
        encoder=encoder,
        precisions=PRECISIONS,
        reference="fp32",
        executor="serial",
        shard_size=50,
        checkpoint=ckpt,
    )
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate(graph, data, **kwargs)
    assert len(list(ckpt.glob("shard-*.npz"))) == 4  # samples 0..199 were finished
    marker.touch()
    resumed = ev.evaluate(graph, data, **kwargs)
    assert resumed.resumed_shards == 4 and resumed.shards == 8
    assert exact(resumed) == exact(serial)
    with pytest.raises(EvaluationError, match="checkpoint of a different evaluation"):
        ev.evaluate(graph, data, **{**kwargs, "n_steps": T + 1})


def test_a_checkpoint_of_other_data_or_calibration_is_refused_not_resumed(graph, data, tmp_path):
    x, y = data.x[:40], data.y[:40]
    run = dict(n_steps=4, encoder=ev.Rate(), executor="serial", shard_size=20, checkpoint=tmp_path / "ckpt")
    first = ev.evaluate(graph, (x, y), **run)
    assert ev.evaluate(graph, (x.copy(), y.copy()), **run).resumed_shards == 2  # the same data resumes
    other = data.x[40:80]  # another data set of the same size and shape
    for changed in ((other, y), (x, np.roll(y, 1))):
        with pytest.raises(EvaluationError, match=r"samples 0\.\.19 were computed on other data"):
            ev.evaluate(graph, changed, **run)
    assert exact(ev.evaluate(graph, (other, y), **{**run, "checkpoint": None})) != exact(first)  # resuming was wrong
    fixed = dict(run, precisions=["int8"], checkpoint=tmp_path / "ckpt8")
    ev.evaluate(graph, (x, y), **fixed, calibration_samples=10)
    with pytest.raises(EvaluationError, match="checkpoint of a different evaluation"):
        ev.evaluate(graph, (x, y), **fixed, calibration_samples=20)  # other fixed-point formats


def test_a_sample_with_nan_is_named(graph, data):
    x = data.x[:30].copy()
    x[13, 5] = np.nan
    x[17, 0] = np.inf
    with pytest.raises(
        EvaluationError, match=r"encoded sample 13 contains NaN or infinity \(and 1 more of samples 10\.\.19\)"
    ):
        ev.evaluate(graph, (x, data.y[:30]), n_steps=2, encoder=ev.Direct(), executor="serial", shard_size=10)


def test_rate_coding_refuses_a_sample_with_nan_instead_of_never_spiking_there(graph, data):
    x = data.x[:30].copy()
    x[21, 3] = np.nan  # clip(NaN) is NaN and u < NaN is False: that pixel would silently never spike
    with pytest.raises(EvaluationError, match="sample 21 contains NaN or infinity; rate encoding needs finite"):
        ev.evaluate(graph, (x, data.y[:30]), n_steps=2, encoder=ev.Rate(), executor="serial", shard_size=10)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_rate_seed_that_numpy_cannot_take_is_refused_when_made(seed):
    # it failed at the first sample: "the encoder failed on sample 0: ValueError: expected non-negative integer"
    with pytest.raises(EvaluationError, match=r"Rate: seed must be a non-negative integer"):
        ev.Rate(seed=seed)


def test_a_lambda_that_a_process_pool_cannot_take_is_named_before_the_pool(graph, data):
    # each shard failed to pickle, was retried 3 times and was reported as "shard of samples 0..19 failed"
    with pytest.raises(EvaluationError, match=r"cannot be sent to worker processes \(.*<lambda>.*--serial"):
        ev.evaluate(graph, (data.x[:40], data.y[:40]), n_steps=2, encoder=ev.Rate(), workers=2, shard_size=20,
                    decode=lambda outputs: outputs.sum(axis=0).argmax(axis=-1))  # fmt: skip


def test_data_files_refuse_labels_they_would_ignore_and_complex_inputs(graph, data, tmp_path):
    np.savez(tmp_path / "digits.npz", x=data.x, y=data.y)
    np.save(tmp_path / "y.npy", np.zeros_like(data.y))
    with pytest.raises(EvaluationError, match=r"digits\.npz: an \.npz data file carries its labels as its array 'y'"):
        ev.FileSource(tmp_path / "digits.npz", tmp_path / "y.npy")  # the .npy labels were dropped silently
    np.save(tmp_path / "x.npy", data.x.astype(np.complex64))
    with pytest.raises(EvaluationError, match=r"x\.npy: inputs must be a real numeric array, got dtype complex64"):
        ev.FileSource(tmp_path / "x.npy", tmp_path / "y.npy")  # the imaginary parts were dropped with a warning
    np.save(tmp_path / "x.npy", data.x)
    with pytest.raises(EvaluationError, match=r"digits\.npz: the labels file must be an \.npy array"):
        ev.FileSource(tmp_path / "x.npy", tmp_path / "digits.npz")  # the error named x.npy


def test_every_data_source_gives_the_same_result(graph, data, serial, tmp_path):
    import torch

    x, y = data.x, data.y
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sources = [
        (x, y),
        str(tmp_path / "digits.npz"),
        ev.FileSource(tmp_path / "x.npy", tmp_path / "y.npy"),
        dataset,
        torch.utils.data.DataLoader(dataset, batch_size=17),
    ]
    for source in sources:
        result = ev.evaluate(graph, source, **RUN, executor="serial", shard_size=100)
        assert exact(result) == exact(serial), type(source).__name__


def test_bad_input_gets_a_clear_error(graph, data, tmp_path):
    with pytest.raises(EvaluationError, match="pass n_steps"):
        ev.evaluate(graph, data, executor="serial")
    with pytest.raises(EvaluationError, match=r"sample 0 has shape \[63\]; rate encoding needs the Input shape \[64\]"):
        ev.evaluate(graph, (data.x[:, :63], data.y), n_steps=T, encoder="rate", executor="serial")
    with pytest.raises(EvaluationError, match="do not fit the Input shape"):
        ev.evaluate(graph, (data.x[:, :63], data.y), n_steps=T, executor="serial")
    with pytest.raises(EvaluationError, match="labels must be integers shaped"):
        ev.evaluate(graph, (data.x, data.y[:5]), n_steps=T, executor="serial")
    n_classes = graph.nodes[graph.output_nodes[0]].shape[0]
    labels = data.y.copy()
    labels[7] = n_classes  # a class no output neuron stands for
    for executor in ("serial", None):  # the worker pool reports it the same way
        with pytest.raises(
            EvaluationError, match=rf"sample 7 has label {n_classes}, but the output .* has {n_classes}"
        ):
            ev.evaluate(graph, (data.x[:40], labels[:40]), n_steps=T, executor=executor, shard_size=20)
    with pytest.raises(EvaluationError, match="precision 'int7' is not one of"):
        ev.evaluate(graph, data, n_steps=T, precisions=["int7"], executor="serial")
    with pytest.raises(EvaluationError, match="no such data file"):
        ev.evaluate(graph, str(tmp_path / "missing.npz"), n_steps=T, executor="serial")
    with pytest.raises(EvaluationError, match="the data set is empty"):
        ev.evaluate(graph, (data.x[:0], data.y[:0]), n_steps=T, executor="serial")
    with pytest.raises(EvaluationError, match="executor must be"):
        ev.evaluate(graph, data, n_steps=T, executor=4)


def test_a_sweep_tabulates_every_point_and_finds_the_pareto_front(graph, data, tmp_path):
    result = ev.sweep(
        graph,
        data,
        grid={
            "precision": ["fp32", "int8"],
            "weight_bits": [4, 8],
            "energy_preset": ["45nm_cmos", "neuromorphic_int8"],
        },
        n_steps=T,
        encoder=ev.Rate(),
        executor="serial",
        shard_size=120,
    )
    labels = [row["label"] for row in result.rows]
    assert labels == [
        "fp32 @ 45nm_cmos",
        "fp32 @ neuromorphic_int8",
        "int8/w4 @ 45nm_cmos",
        "int8/w4 @ neuromorphic_int8",
        "int8/w8 @ 45nm_cmos",
        "int8/w8 @ neuromorphic_int8",
    ]
    points = [(r["accuracy"], r["energy_per_sample_uj"]) for r in result.rows]
    for i in result.pareto:  # nothing on the front is dominated
        assert not any(a >= points[i][0] and e <= points[i][1] and (a, e) != points[i] for a, e in points)
    for i in set(range(len(points))) - set(result.pareto):
        assert any(a >= points[i][0] and e <= points[i][1] for a, e in points if (a, e) != points[i])
    # the energy of a preset is the profiler's model on the same counts
    fp32 = ev.evaluate(graph, data, n_steps=T, encoder=ev.Rate(), executor="serial", energy_preset="neuromorphic_int8")
    assert result.rows[1]["energy_per_sample_uj"] == pytest.approx(fp32["fp32"].energy_per_sample_uj, rel=1e-12)
    assert result.to_csv(tmp_path / "s.csv").read_text().count("\n") == 7
    assert result.plot(tmp_path / "s.png").stat().st_size > 1000


def test_pareto_front_by_hand():
    from talon.evaluate.sweep import pareto_front

    #        A: best acc  B: dominated by A  C: cheapest  D: ties C exactly
    points = [(0.9, 5.0), (0.8, 6.0), (0.7, 1.0), (0.7, 1.0), (0.6, 2.0)]
    assert pareto_front(points) == [0, 2, 3]
