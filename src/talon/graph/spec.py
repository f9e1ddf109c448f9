"""The hardware a graph is mapped onto: :class:`HardwareSpec`, its presets and JSON files.

A spec describes identical cores on a 2-d mesh network-on-chip (``mesh = (rows, cols)``, core
``k`` at ``(k // cols, k % cols)`` before placement). Every limit is per core:

* ``max_neurons_per_core`` — neuron (compartment) slots;
* ``max_synapses_per_core`` — stored synaptic weights;
* ``sram_bytes_per_core`` — weights + neuron state + routing table bytes;
* ``max_fan_in`` — inputs one neuron may sum (None: unlimited);
* ``routing_entries_per_core`` — entries of the core's multicast router table (None: unlimited);
* ``max_feedback_delay`` — mesh hops a spike on a recurrent (feedback) edge may travel, so that it
  arrives before the next timestep;
* ``hop_energy_pj`` — energy of one spike crossing one mesh link, east-west and north-south
  (None: unknown; NoC energy is then not reported);
* ``precision`` — the datapath the cores store (``fp32``, ``fp16``, ``int16``, ``int8``, ``int4``):
  it fixes the bytes of a weight (int4 packed two per byte) and of a neuron state value.

Where the TALON documentation contradicts itself the choice is made once, in :data:`SETTLED`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from talon.ir.paths import check_path

from .errors import HardwareSpecError

#: (weight bits, neuron state bits) stored per precision; the fixed-point widths are the CPU
#: backend's defaults (docs/backend.md §4.1).
PRECISION_BITS = {"fp32": (32, 32), "fp16": (16, 16), "int16": (16, 32), "int8": (8, 24), "int4": (4, 16)}

#: The documented conflicts about the hardware presets and how talon settles them.
SETTLED = {
    "zcu102 vs zynq_us_plus": (
        "The backend energy table calls zcu102 an alias of zynq_us_plus, but the two HardwareSpec presets "
        "differ (8 cores x 512 KiB vs 32 cores x 96 KiB). Both are kept as documented: the ZCU102 board "
        "carries a Zynq UltraScale+ device, so the two share energy numbers, while the mapping presets "
        "describe two different core configurations of that fabric."
    ),
    "default mesh": (
        "The mesh of the documented presets is not given. talon uses the most square rows x cols grid "
        "with rows * cols == num_cores and rows <= cols (4 cores: 2 x 2)."
    ),
    "t1c_asic_target": (
        "Documented by name only. talon's values (256 cores of 1024 neurons, 128 KiB, 16x16 mesh) are "
        "its own choice, marked as such."
    ),
}


def square_mesh(num_cores: int) -> tuple[int, int]:
    """The most square ``(rows, cols)`` with ``rows * cols == num_cores`` and ``rows <= cols``."""
    rows = math.isqrt(num_cores)
    while num_cores % rows:
        rows -= 1
    return rows, num_cores // rows


@dataclass(frozen=True)
class HardwareSpec:
    """Per-core limits and the mesh of a many-core neuromorphic chip (see the module docstring)."""

    max_neurons_per_core: int = 1024
    max_synapses_per_core: int = 200_000
    sram_bytes_per_core: int = 524_288
    num_cores: int = 4
    max_feedback_delay: int = 3
    mesh: tuple[int, int] | None = None
    max_fan_in: int | None = None
    routing_entries_per_core: int | None = None
    routing_entry_bytes: int = 8
    hop_energy_pj: tuple[float, float] | None = None
    precision: str = "fp32"
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.mesh is None and isinstance(self.num_cores, int) and self.num_cores > 0:
            object.__setattr__(self, "mesh", square_mesh(self.num_cores))
        if self.mesh is not None and not isinstance(self.mesh, tuple):
            object.__setattr__(self, "mesh", tuple(self.mesh))
        if self.hop_energy_pj is not None and not isinstance(self.hop_energy_pj, tuple):
            value = self.hop_energy_pj
            pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
            object.__setattr__(self, "hop_energy_pj", pair)

    # ---- checks --------------------------------------------------------------------------------

    def validate(self) -> HardwareSpec:
        """Raise :class:`HardwareSpecError` naming the field and the accepted range; return self."""
        positive = ["max_neurons_per_core", "max_synapses_per_core", "sram_bytes_per_core", "num_cores"]
        for name in positive:
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("max_feedback_delay", self.max_feedback_delay, minimum=0)
        _check_int("routing_entry_bytes", self.routing_entry_bytes, minimum=1)
        if self.precision not in PRECISION_BITS:
            raise HardwareSpecError(
                f"HardwareSpec.precision must be one of {', '.join(PRECISION_BITS)}, got {self.precision!r}"
            )
        for name in ("max_fan_in", "routing_entries_per_core"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        mesh = self.mesh
        if not (isinstance(mesh, tuple) and len(mesh) == 2):
            raise HardwareSpecError(f"HardwareSpec.mesh must be (rows, cols), got {mesh!r}")
        for v in mesh:
            _check_int("mesh", v, minimum=1)
        if mesh[0] * mesh[1] != self.num_cores:
            raise HardwareSpecError(
                f"HardwareSpec.mesh {mesh[0]} x {mesh[1]} has {mesh[0] * mesh[1]} positions but num_cores is "
                f"{self.num_cores}; give a mesh whose rows * cols equals num_cores"
            )
        if self.hop_energy_pj is not None and (
            len(self.hop_energy_pj) != 2
            or not all(
                isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e) and e >= 0
                for e in self.hop_energy_pj
            )
        ):
            raise HardwareSpecError(
                f"HardwareSpec.hop_energy_pj must be two finite pJ values >= 0 (east-west, north-south), "
                f"got {self.hop_energy_pj!r}"
            )
        if not isinstance(self.name, str):
            raise HardwareSpecError(f"HardwareSpec.name must be a string, got {self.name!r}")
        return self

    def coordinates(self, core: int) -> tuple[int, int]:
        """The identity placement of ``core``: ``(core // cols, core % cols)``."""
        return divmod(int(core), self.mesh[1])

    # ---- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mesh"] = list(self.mesh)
        out["hop_energy_pj"] = None if self.hop_energy_pj is None else list(self.hop_energy_pj)
        return out

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The spec as JSON; with ``path`` also written there atomically (temporary file + rename)."""
        text = json.dumps({"format": "talon-hardware-spec", "version": 1, **self.to_dict()}, indent=2)
        if path is not None:
            _atomic_write(check_path(path, "HardwareSpec.to_json: the .json file to write"), text)
        return text

    save = to_json

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> HardwareSpec:
        if not isinstance(data, dict):
            raise HardwareSpecError(f"{source}: a hardware spec is a JSON object, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in ("format", "version")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HardwareSpecError(f"{source}: unknown HardwareSpec fields {unknown}; known: {sorted(known)}")
        if isinstance(data.get("mesh"), list):
            data["mesh"] = tuple(data["mesh"])
        if isinstance(data.get("hop_energy_pj"), list):
            data["hop_energy_pj"] = tuple(data["hop_energy_pj"])
        try:
            spec = cls(**data)
        except TypeError as exc:
            raise HardwareSpecError(f"{source}: {exc}") from None
        try:
            return spec.validate()
        except HardwareSpecError as exc:
            raise HardwareSpecError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> HardwareSpec:
        """Read a spec from JSON text or a ``.json`` file (validated)."""
        what = "HardwareSpec.from_json: JSON text or the .json file to read"
        text, source = os.fsdecode(check_path(text_or_path, what)), "spec"
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                text, source = path.read_text(), str(path)
            except OSError as exc:
                raise HardwareSpecError(f"cannot read hardware spec {str(path)!r}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise HardwareSpecError(f"{path}: not a JSON hardware spec (not UTF-8 text)") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HardwareSpecError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)

    load = from_json

    def with_(self, **changes: Any) -> HardwareSpec:
        """A copy with some fields changed (validated); changing ``num_cores`` resets the mesh."""
        if "num_cores" in changes and "mesh" not in changes:
            changes["mesh"] = None
        return replace(self, **changes).validate()

    # ---- documented presets (TALON) ------------------------------------------------------------

    @classmethod
    def zynq_7020(cls) -> HardwareSpec:
        """TALON's Zynq-7020 preset: 4 cores, 128 KiB each (other fields: the constructor defaults)."""
        return cls(num_cores=4, sram_bytes_per_core=131_072, name="zynq_7020").validate()

    @classmethod
    def zcu102(cls) -> HardwareSpec:
        """TALON's ZCU102 preset: 8 cores, 512 KiB each (see :data:`SETTLED`)."""
        return cls(num_cores=8, sram_bytes_per_core=524_288, name="zcu102").validate()

    @classmethod
    def zynq_us_plus(cls) -> HardwareSpec:
        """TALON's Zynq UltraScale+ preset: 32 cores of 512 neurons and 96 KiB, feedback delay 4."""
        return cls(
            num_cores=32, max_neurons_per_core=512, sram_bytes_per_core=98_304, max_feedback_delay=4,
            name="zynq_us_plus",
        ).validate()  # fmt: skip

    @classmethod
    def t1c_asic_target(cls) -> HardwareSpec:
        """The 'TALON ASIC target' preset; its numbers are undocumented, these are talon's choice."""
        return cls(
            num_cores=256, max_neurons_per_core=1024, max_synapses_per_core=131_072, sram_bytes_per_core=131_072,
            mesh=(16, 16), routing_entries_per_core=1024, precision="int8", name="t1c_asic_target",
        ).validate()  # fmt: skip

    # ---- real chips (every number's source: docs/mapping.md) -----------------------------------

    @classmethod
    def loihi(cls) -> HardwareSpec:
        """Intel Loihi (Davies et al., IEEE Micro 2018): 128 cores of 1024 compartments, 128 KiB of
        synaptic memory, 4096 fan-in axons; 3.0 / 4.0 pJ per tile hop east-west / north-south."""
        return cls(
            num_cores=128, mesh=(8, 16), max_neurons_per_core=1024, max_synapses_per_core=131_072,
            sram_bytes_per_core=131_072, max_fan_in=4096, routing_entries_per_core=4096, max_feedback_delay=16,
            hop_energy_pj=(3.0, 4.0), precision="int8", name="loihi",
        ).validate()  # fmt: skip

    @classmethod
    def spinnaker2(cls) -> HardwareSpec:
        """SpiNNaker2 (datasheet v0.03, 2021): 152 ARM Cortex-M4F PEs with 128 KiB SRAM each and a
        16,384-entry multicast router per chip (shared: 107 entries per PE)."""
        return cls(
            num_cores=152, mesh=(8, 19), max_neurons_per_core=256, max_synapses_per_core=65_536,
            sram_bytes_per_core=131_072, routing_entries_per_core=16_384 // 152, max_feedback_delay=26,
            precision="int8", name="spinnaker2",
        ).validate()  # fmt: skip


PRESETS = {
    "zynq_7020": HardwareSpec.zynq_7020,
    "zcu102": HardwareSpec.zcu102,
    "zynq_us_plus": HardwareSpec.zynq_us_plus,
    "t1c_asic_target": HardwareSpec.t1c_asic_target,
    "loihi": HardwareSpec.loihi,
    "spinnaker2": HardwareSpec.spinnaker2,
}


def get_spec(spec: HardwareSpec | str | os.PathLike) -> HardwareSpec:
    """A spec from a :class:`HardwareSpec`, a preset name or a JSON file path (validated)."""
    if isinstance(spec, HardwareSpec):
        return spec.validate()
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]()
    if isinstance(spec, (str, os.PathLike)) and (str(spec).endswith(".json") or Path(spec).is_file()):
        return HardwareSpec.from_json(spec)
    raise HardwareSpecError(
        f"unknown hardware spec {spec!r}: give a preset ({', '.join(PRESETS)}), a .json spec file or a HardwareSpec"
    )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HardwareSpecError(f"HardwareSpec.{name} must be an integer >= {minimum}, got {value!r}")


def _atomic_write(path: Path, text: str) -> None:
    from talon.ir.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text)
