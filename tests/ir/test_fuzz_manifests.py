"""Structure-aware fuzz of ``ir.read`` and the CLI: hypothesis edits the manifest or the HDF5 layout of
real ``.t1c`` files, re-seals them (a valid checksum: an attack, not damage) and reads them.

Every outcome must be a graph, or a :class:`~talon.ir.T1CFormatError` whose message starts with the
file's path; ``talon inspect`` / ``talon lint`` on the same file exit 0 or 1, or 2 with one ``error:``
line naming the file. ``tests/fuzz_readers.py`` (``make fuzz``) runs such mutations for longer.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon import examples, ir
from talon.cli import main
from talon.ir import T1CFormatError

from .t1c_craft import edited, load_manifest, store_manifest

# values a hostile manifest may hold where the writer put something else
ODD_VALUES = [None, True, 0, -1, 2**31, 2**63, 10**30, 1e308, float("nan"), float("inf"), "", "\x00", "LIF", "Graph",
              "input", [], [0], [-1], [2**40, 2**40], {}, {"$array": 0}, {"$array": -1}, {"$array": 10**6},
              {"$scalar": 0}, {"$tuple": 3}, {"$dict": [[1]]}, {"$foo": 1}, -0.0]  # fmt: skip


def _seed_graphs() -> dict[str, ir.Graph]:
    inner = examples.chain((4,), ("s", ir.Scale(np.full(4, 0.5, np.float32))), ("lif", ir.CubaLIF(5.0, 3.0, 1.0)))
    return {
        "mlp": examples.mlp_graph(0, sizes=(16, 8, 4)),
        "nested": examples.chain((4,), ("sub", inner), ("d", ir.Delay(np.arange(4))), ("li", ir.LI(tau=4.0, r=1.0))),
    }


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    files = {}
    for name, graph in _seed_graphs().items():
        for version in (2, 3):
            files[f"{name}-v{version}"] = path = folder / f"{name}-v{version}.t1c"
            ir.write(path, graph, format_version=version)
    return files


def _paths(value, prefix=()):
    """Every position in a JSON document (lists: their first 40 items)."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value[:40]) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


replacement = st.one_of(
    st.sampled_from(ODD_VALUES), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=4), st.just("delete")
)


def _mutate_manifest(f: h5py.File, data) -> None:
    manifest = load_manifest(f)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        positions = list(_paths(manifest))[1:]
        where = data.draw(st.sampled_from(positions), label="position")
        parent = manifest
        for key in where[:-1]:
            parent = parent[key]
        value = data.draw(replacement, label="value")
        if value == "delete":
            del parent[where[-1]]
        else:
            parent[where[-1]] = value
    store_manifest(f, json.dumps(manifest))


def _mutate_layout(f: h5py.File, data) -> None:
    names: list[str] = []
    f.visit(names.append)
    kind = data.draw(st.sampled_from(["delete", "rename", "attribute", "retype", "reshape", "value"]), label="kind")
    if kind == "attribute":
        value = data.draw(st.sampled_from([np.int64(99), np.int64(-5), np.float64(3.0), np.bytes_("x"), np.arange(2)]))
        f.attrs[data.draw(st.sampled_from(sorted(f.attrs)))] = value
        return
    arrays = [n for n in names if n.startswith(("arrays/", "packed/"))]
    name = data.draw(st.sampled_from(arrays if kind in ("retype", "reshape", "value") and arrays else names))
    if kind == "delete":
        del f[name]
    elif kind == "rename":
        f.move(name, name + "_renamed")
    elif isinstance(f[name], h5py.Dataset):
        values = f[name][()]
        del f[name]
        if kind == "retype":
            f[name] = values.astype(data.draw(st.sampled_from([np.float16, np.int8, np.float64, np.uint64])))
        elif kind == "reshape":
            shorter = data.draw(st.booleans())
            f[name] = values.reshape(-1)[: max(0, values.size - 1)] if shorter else np.stack([values] * 2)
        else:
            odd = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e38]))
            f[name] = np.full(values.shape, odd).astype(values.dtype) if values.dtype.kind == "f" else values * 0 - 1


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_crafted_file_reads_or_is_refused_naming_the_file(seed_files, tmp_path, data):
    seed = data.draw(st.sampled_from(sorted(seed_files)), label="seed")
    path = tmp_path / "crafted.t1c"
    shutil.copyfile(seed_files[seed], path)
    with edited(path) as f:
        (_mutate_manifest if data.draw(st.booleans(), label="manifest") else _mutate_layout)(f, data)
    try:
        ir.read(path)
    except T1CFormatError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        stderr = CliRunner().invoke(main, ["inspect", str(path)]).stderr
        assert stderr.startswith(f"error: {path}") and stderr.count("\n") == 1, stderr
    else:
        result = CliRunner().invoke(main, ["lint", str(path)])
        assert result.exit_code in (0, 1), result.output


def test_an_hdf5_lookup_error_names_the_file(tmp_path):
    """A packed-array key HDF5 cannot look up: the error of talon.ir.hdf5_guard named only the array."""
    from .t1c_craft import edit_manifest

    path = tmp_path / "model.t1c"
    ir.write(path, examples.mlp_graph(0, sizes=(4, 3, 2)))
    edit_manifest(path, lambda m: m["arrays"][0].update(packed="\x00"))
    with pytest.raises(T1CFormatError, match=rf"^{path}: array 0: entry '\\x00' cannot be read"):
        ir.read(path)
