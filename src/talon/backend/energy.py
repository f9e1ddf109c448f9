"""Energy presets: the energy of one operation of each kind, in picojoules.

* ``mac_pj`` — one multiply-accumulate of a weight layer with a dense (non-spike) input, or of a
  neuron update;
* ``spike_pj`` — one spike-driven synaptic operation: a spike reaching one synapse adds the
  weight to an accumulator (an add, no multiply);
* ``sram_read_pj`` / ``sram_write_pj`` — one access of a 32-bit word in on-chip SRAM (narrower
  values cost proportionally less: a ``b``-bit access costs ``b/32`` of it).

Every constant has a source; docs/backend.md has the table and explains how the conflicting
tables of the TALON documentation were resolved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import BackendError

HOROWITZ_2014 = (
    'M. Horowitz, "Computing\'s energy problem (and what we can do about it)", ISSCC 2014, '
    "pp. 10-14, doi:10.1109/ISSCC.2014.6757323, energy table for 45 nm, 0.9 V"
)
TALON_ARCH = "TALON documentation, architecture page, 'Energy Presets' block (type1compute/docs@672d015)"


@dataclass(frozen=True)
class EnergyPreset:
    """Per-operation energies (pJ) of a target, with their provenance."""

    name: str
    mac_pj: float
    spike_pj: float
    sram_read_pj: float
    sram_write_pj: float
    description: str
    source: str

    def __getitem__(self, key: str):  # preset["mac_pj"], as the TALON tutorials index presets
        return asdict(self)[key]

    def to_dict(self) -> dict:
        return asdict(self)


def _horowitz(name: str, mac: float, add: float, what: str) -> EnergyPreset:
    return EnergyPreset(
        name,
        mac_pj=mac,
        spike_pj=add,
        sram_read_pj=5.0,
        sram_write_pj=5.0,
        description=f"45 nm CMOS, {what} datapath (Horowitz 2014)",
        source=HOROWITZ_2014,
    )


def _arch(name: str, mac: float, spike: float, sram: float, description: str) -> EnergyPreset:
    return EnergyPreset(name, mac, spike, sram, sram, description, TALON_ARCH)


ENERGY_PRESETS: dict[str, EnergyPreset] = {
    # Horowitz: fp32 mult 3.7 pJ + add 0.9 pJ; fp16 mult 1.1 + add 0.4; int8 mult 0.2 + add 0.03;
    # 8 KB SRAM, 64-bit access 10 pJ -> 5 pJ per 32-bit word.
    "45nm_cmos": _horowitz("45nm_cmos", 4.6, 0.9, "float32"),
    "45nm_cmos_fp16": _horowitz("45nm_cmos_fp16", 1.5, 0.4, "float16"),
    "45nm_cmos_int8": _horowitz("45nm_cmos_int8", 0.23, 0.03, "8-bit integer"),
    "zynq_7020": _arch("zynq_7020", 4.5, 0.5, 8.0, "Xilinx Zynq-7020 FPGA (28 nm)"),
    "zynq_us_plus": _arch("zynq_us_plus", 3.2, 0.35, 6.0, "Xilinx Zynq UltraScale+ (XCZU9EG, 16 nm FinFET)"),
    "zcu102": _arch("zcu102", 3.2, 0.35, 6.0, "Alias of zynq_us_plus (XCZU9EG on the ZCU102 board)"),
    "neuromorphic_int8": _arch("neuromorphic_int8", 0.08, 0.03, 0.5, "Representative INT8 neuromorphic accelerator"),
    "t1c_asic_target": _arch("t1c_asic_target", 0.05, 0.02, 0.3, "Type 1 Compute ASIC target"),
}

DEFAULT_PRESET = "neuromorphic_int8"


def get_energy_preset(name: str) -> EnergyPreset:
    """The preset called ``name`` (see :data:`ENERGY_PRESETS`)."""
    try:
        return ENERGY_PRESETS[name]
    except (KeyError, TypeError):
        raise BackendError(f"unknown energy preset {name!r}; available: {', '.join(ENERGY_PRESETS)}") from None


def resolve_energy(
    preset: str | EnergyPreset | None,
    mac_pj: float | None = None,
    spike_pj: float | None = None,
    sram_read_pj: float | None = None,
    sram_write_pj: float | None = None,
) -> EnergyPreset:
    """A preset with any per-op energy overridden (custom energies must be finite and >= 0)."""
    base = (
        get_energy_preset(DEFAULT_PRESET if preset is None else preset)
        if not isinstance(preset, EnergyPreset)
        else preset
    )
    overrides = {"mac_pj": mac_pj, "spike_pj": spike_pj, "sram_read_pj": sram_read_pj, "sram_write_pj": sram_write_pj}
    values = base.to_dict()
    custom = []
    for key, value in overrides.items():
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise BackendError(f"energy {key} must be a number of picojoules, got {value!r}") from None
        if not value >= 0 or value == float("inf"):
            raise BackendError(f"energy {key} must be finite and >= 0 pJ, got {value!r}")
        values[key] = value
        custom.append(key)
    if custom:
        values["name"] = f"{base.name}+custom"
        values["source"] = f"{base.source}; {', '.join(custom)} given by the caller"
    return EnergyPreset(**values)
