"""HardwareSpec: validation, presets, JSON."""

from __future__ import annotations

import json

import pytest

from talon.graph import PRESETS, SETTLED, HardwareSpec, HardwareSpecError, get_spec
from talon.graph.spec import PRECISION_BITS
from tests.subprocesses import child_env


def test_documented_defaults_and_presets():
    spec = HardwareSpec()
    assert (spec.max_neurons_per_core, spec.max_synapses_per_core, spec.sram_bytes_per_core) == (1024, 200_000, 524_288)
    assert (spec.num_cores, spec.max_feedback_delay, spec.mesh) == (4, 3, (2, 2))
    assert HardwareSpec.zynq_7020().sram_bytes_per_core == 131_072 and HardwareSpec.zynq_7020().num_cores == 4
    assert HardwareSpec.zcu102().num_cores == 8 and HardwareSpec.zcu102().sram_bytes_per_core == 524_288
    us = HardwareSpec.zynq_us_plus()
    assert (us.num_cores, us.max_neurons_per_core, us.sram_bytes_per_core, us.max_feedback_delay) == (
        32,
        512,
        98_304,
        4,
    )
    assert "zcu102 vs zynq_us_plus" in SETTLED
    for name, make in PRESETS.items():
        spec = make()
        assert spec.name == name
        assert spec.mesh[0] * spec.mesh[1] == spec.num_cores
    assert HardwareSpec.loihi().hop_energy_pj == (3.0, 4.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_cores": 0}, "num_cores must be an integer >= 1"),
        ({"max_neurons_per_core": -3}, "max_neurons_per_core"),
        ({"mesh": (3, 3)}, "mesh 3 x 3 has 9 positions but num_cores is 4"),
        ({"precision": "int3"}, "precision must be one of"),
        ({"hop_energy_pj": (1.0, float("nan"))}, "hop_energy_pj"),
        ({"max_fan_in": 0}, "max_fan_in"),
        ({"sram_bytes_per_core": 1.5}, "sram_bytes_per_core"),
    ],
)
def test_validate_names_the_field(changes, message):
    with pytest.raises(HardwareSpecError, match=message):
        HardwareSpec(**changes).validate()


def test_json_round_trip_and_bad_files(tmp_path):
    spec = HardwareSpec.loihi()
    path = tmp_path / "chip.json"
    spec.to_json(path)
    assert HardwareSpec.from_json(path) == spec
    assert get_spec(str(path)) == spec
    assert HardwareSpec.from_json(spec.to_json()) == spec
    path.write_text(json.dumps({"num_cores": 4, "sram": 3}))
    with pytest.raises(HardwareSpecError, match=r"chip.json: unknown HardwareSpec fields \['sram'\]"):
        HardwareSpec.from_json(path)
    path.write_text("{not json")
    with pytest.raises(HardwareSpecError, match="not valid JSON"):
        HardwareSpec.from_json(path)
    with pytest.raises(HardwareSpecError, match="cannot read hardware spec"):
        HardwareSpec.from_json(tmp_path / "missing.json")
    binary = tmp_path / "model.nir"  # a binary file (HDF5 signature) given where a spec belongs
    binary.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(HardwareSpecError, match=r"model.nir: not a JSON hardware spec \(not UTF-8 text"):
        get_spec(str(binary))
    with pytest.raises(HardwareSpecError, match="unknown hardware spec 'nope'"):
        get_spec("nope")


def test_precision_widths_match_the_backend_defaults():
    from talon.backend.config import FIXED_POINT_DEFAULTS

    for precision, spec in FIXED_POINT_DEFAULTS.items():
        assert PRECISION_BITS[precision] == (spec.weight_bits, spec.state_bits)


def test_talon_graph_does_not_import_torch_or_jax():
    import subprocess
    import sys

    code = (
        "import sys, talon.graph, talon.graph.partition, talon.graph.route, talon.graph.place;"
        "print(any(m in sys.modules for m in ('torch', 'jax')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_env())
    assert out.stdout.strip() == "False"
