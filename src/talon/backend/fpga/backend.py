"""The FPGA backend: HLS projects (hls4ml layout, Vitis / Vivado HLS) whose C simulation
computes the CPU backend's fixed-point integers exactly.

Stages (one module each): ``lowering`` (the CPU backend's lowering, calibration and integer
kernels), ``codegen`` (C++ calls of the package's ``firmware/nnet_talon_*.h`` and hls4ml's
``nnet::dense``), ``project`` (files on disk), ``csim`` (g++), ``vendor`` (synthesis and the
bitstream), ``estimate`` (resources and latency per layer).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talon import ir

from ..base import BackendBase, check_graph
from ..config import CompileConfig
from ..cpu.backend import describe
from ..cpu.lowering.program import lower_checked
from ..descriptor import HardwareDescriptor
from ..errors import BackendError
from ..results import BackendCapabilities, ProfileResult, SimulationResult, ValidationResult
from ..stimulus import prepare_inputs
from . import csim, vendor
from .codegen import STRATEGIES, GeneratedProject, generate
from .estimate import estimate
from .lowering import FPGA_PRECISIONS, SUPPORTED, FixedPlan, plan_fixed, unsupported_nodes
from .project import project_files, write_project

DEFAULT_PART = "xczu9eg-ffvb1156-2-i"  # Zynq UltraScale+ on the ZCU102
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The project name becomes the top function, its header and include guard (hls4ml's layout), so it
# must not be a C++ keyword nor a name the generated code or its headers declare at file scope.
_CPP_KEYWORDS = frozenset(
    re.findall(
        r"\w+",
        """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t
        class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
        decltype default delete do double dynamic_cast else enum explicit export extern false float for friend
        goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private
        protected public register reinterpret_cast requires return short signed sizeof static static_assert
        static_cast struct switch template this thread_local throw true try typedef typeid typename union
        unsigned using virtual void volatile wchar_t while xor xor_eq""",
    )
)
_GENERATED_NAMES = frozenset(
    {"main", "fail", "write_probe", "talon_load_parameters", "nnet", "talon", "hls", "std"}
    | {"DEFINES", "PARAMETERS", "WEIGHTS"}  # include guards NAME_H_
)
# per-node arrays, types and configurations of codegen.py: v3_t, w1, config4, g2_e0, m4_e0_s, TH5 ...
_GENERATED_PATTERN = re.compile(
    r"^(?:a|b|d|db|dl|ds|g|m|p|pr|q|r|s|si|st|sv|th|v|w|x|A|B|C|G|TH|VR|config|probe)\d+(?:_\w*)?$"
)


@dataclass(frozen=True)
class BitstreamConfig:
    """The steps of :meth:`FPGABackend.build_bitstream`: ``csim`` (g++, always available),
    ``synth`` / ``cosim`` / ``export`` (Vitis HLS or Vivado HLS), ``vsynth`` / ``bitfile`` (Vivado)."""

    csim: bool = True
    synth: bool = False
    cosim: bool = False
    export: bool = False
    vsynth: bool = False
    bitfile: bool = False


@dataclass(frozen=True)
class HLSSettings:
    output_dir: str
    project_name: str
    part: str
    clock_period: float
    reuse_factor: int
    strategy: str


class FPGABackend(BackendBase):
    """HLS code generation and bit-exact C simulation of TALON IR graphs (``get_backend("fpga")``)."""

    name = "fpga"
    default_part = DEFAULT_PART
    max_graph_size = 100_000

    def get_capabilities(self) -> BackendCapabilities:
        prims = sorted(p for p in SUPPORTED if p not in ("Input", "Output"))
        return BackendCapabilities(
            supported_primitives=prims,
            supported_precisions=list(FPGA_PRECISIONS),
            supports_cyclic=True,
            max_graph_size=self.max_graph_size,
            fixed_point_primitives=prims,
        )

    def validate(self, graph: ir.Graph, config: CompileConfig | dict | None = None) -> ValidationResult:
        """Node types, precision and structure; never raises for a bad graph."""
        check_graph(graph)
        unsupported = unsupported_nodes(graph)
        errors, warnings = [], []
        try:
            precision = _config(config, None).precision
        except BackendError as exc:
            errors.append(str(exc))
        else:
            if precision not in FPGA_PRECISIONS:
                errors.append(f"precision {precision!r}: the FPGA backend compiles {', '.join(FPGA_PRECISIONS)}")
        errors += ir.non_finite_problems(graph)
        program, structure = lower_checked(graph)
        errors += structure
        if program is not None and len(program.ops) > self.max_graph_size:
            errors.append(f"{len(program.ops):,} nodes exceed the FPGA backend's {self.max_graph_size:,}")
        return ValidationResult(not unsupported and not errors, unsupported, warnings, errors)

    # ---- compile -------------------------------------------------------------------------------

    def compile(
        self,
        graph: ir.Graph,
        config: CompileConfig | dict | None = None,
        *,
        output_dir: str | Path = "hls4ml_project",
        project_name: str = "snn_demo",
        part: str | None = None,
        clock_period: float = 5,
        default_precision: str | None = None,
        default_reuse_factor: int = 1,
        strategy: str = "Latency",
        calibration_inputs=None,
        n_steps: int | None = None,
        write_to_disk: bool = True,
    ) -> HardwareDescriptor:
        """Generate the HLS project of ``graph`` in ``output_dir`` and return its descriptor.

        ``default_precision`` (or ``config``'s precision) is one of ``int16``, ``int8``, ``int4``:
        the CPU backend's integer datapath, calibrated on ``calibration_inputs`` (the default
        stimulus when None). ``strategy`` is hls4ml's ``"Latency"`` (weights in registers, one
        adder tree) or ``"Resource"`` (weights in a BRAM ROM read over ``default_reuse_factor``
        rounds at II=1): a different dense kernel and convolution pragmas, the same integers
        (docs/fpga.md §3). The descriptor is the CPU backend's schedule plus ``"hls"`` (project,
        part, ports) and ``"estimate"`` (resources and latency per layer, docs/fpga.md §5).
        """
        plan, gen, settings = self._generate(
            graph, config, output_dir, project_name, part, clock_period, default_precision,
            default_reuse_factor, strategy, calibration_inputs, n_steps,
        )  # fmt: skip
        data = self._descriptor(plan, gen, settings)
        if write_to_disk:
            files = project_files(gen, settings.part, settings.clock_period)
            target = write_project(settings.output_dir, files, data, gen.binaries)
            # the calibration inputs become the testbench's default input (vendor csim / cosim)
            arrays, *_ = prepare_inputs(graph, calibration_inputs, n_steps)
            csim.write_inputs(target / "tb_data" / "inputs.bin", gen, arrays)
        return HardwareDescriptor(data, program=(plan, gen))

    def build_bitstream(
        self,
        graph: ir.Graph,
        config: CompileConfig | dict | None = None,
        *,
        bitstream_config: BitstreamConfig | None = None,
        write_to_disk: bool = True,
        inputs=None,
        **compile_kwargs: Any,
    ) -> dict[str, Any]:
        """Compile, then run the requested steps; returns ``{"files": {relative path: text},
        "output_dir", "descriptor", "csim": SimulationResult | None, "logs": [...]}``.

        ``csim`` builds the project with g++ and runs it on ``inputs`` (default: the calibration
        inputs, whose own default is the default stimulus). The project is calibrated on
        ``calibration_inputs`` (default: ``inputs``), so with both given the C simulation is
        ``get_backend("cpu").compile(graph, calibration_inputs=...)`` run on ``inputs``. The
        vendor steps raise naming the missing tool.
        """
        bc = bitstream_config or BitstreamConfig()
        if not isinstance(bc, BitstreamConfig):
            raise BackendError(f"bitstream_config must be a BitstreamConfig, got {type(bc).__name__}")
        tools = vendor.check_tools(bc.synth, bc.cosim, bc.export, bc.vsynth, bc.bitfile)
        if not write_to_disk and (tools or bc.csim):
            raise BackendError("csim and the vendor steps run in the project directory: pass write_to_disk=True")
        if inputs is not None and compile_kwargs.get("calibration_inputs") is None:
            compile_kwargs["calibration_inputs"] = inputs
        desc = self.compile(graph, config, write_to_disk=write_to_disk, **compile_kwargs)
        plan, gen = desc.program
        settings = desc.data["hls"]
        files = project_files(gen, settings["part"], settings["clock_period"])
        result: dict[str, Any] = {
            "files": files, "output_dir": settings["output_dir"], "descriptor": desc, "csim": None, "logs": [],
        }  # fmt: skip
        project_dir = Path(settings["output_dir"])
        if bc.csim:
            run_on = inputs if inputs is not None else compile_kwargs.get("calibration_inputs")
            arrays, steps, batch, used_default = prepare_inputs(graph, run_on, compile_kwargs.get("n_steps"))
            result["csim"] = self._run_csim(plan, gen, files, arrays, steps, batch, used_default, False, project_dir)
        if "hls" in tools:
            result["logs"].append(str(vendor.run_hls(tools["hls"], project_dir, bc.synth, bc.cosim, bc.export)))
        if "vivado" in tools:
            result["logs"].append(str(vendor.run_vivado(tools["vivado"], project_dir, bc.bitfile)))
        return result

    # ---- simulate ------------------------------------------------------------------------------

    def simulate(
        self,
        graph: ir.Graph,
        inputs=None,
        n_steps: int | None = None,
        step_by_step: bool = False,
        *,
        config: CompileConfig | dict | None = None,
        precision: str | None = None,
        project_name: str = "talon_csim",
        strategy: str = "Latency",
        reuse_factor: int = 1,
    ) -> SimulationResult:
        """C simulation of the generated HLS project (g++), returning the CPU backend's result type.

        The integers are those of ``get_backend("cpu").simulate(graph, inputs, n_steps,
        precision=...)``: the same post-training calibration on these inputs, the same kernels.
        ``precision`` defaults to ``int16``. ``step_by_step=True`` also returns every node's output
        and every neuron's state per step (``node_states[path]["output"]``, ``"v"``, ``"i"`` and the
        integers ``"output_int"``, ``"v_int"``, ``"i_int"``), read through extra probe ports.
        ``strategy`` and ``reuse_factor`` select the generated kernels as in :meth:`compile`
        (the integers do not depend on them).
        """
        check_graph(graph)
        if not isinstance(step_by_step, (bool, np.bool_)):
            raise BackendError(f"step_by_step must be True or False, got {step_by_step!r}")
        cfg = _config(config, precision)
        strategy = check_strategy(strategy)
        reuse_factor = check_reuse_factor(reuse_factor, "reuse_factor")
        name = _project_name(project_name)
        arrays, steps, batch, used_default = prepare_inputs(graph, inputs, n_steps)
        plan = plan_fixed(graph, cfg, arrays)
        gen = generate(plan, name, reuse_factor=reuse_factor, strategy=strategy, probe_all=bool(step_by_step),
                       synthesis_weights=False)  # fmt: skip
        files = project_files(gen, DEFAULT_PART, 5)
        return self._run_csim(plan, gen, files, arrays, steps, batch, used_default, bool(step_by_step), None)

    def profile(self, graph: ir.Graph, inputs=None, n_steps: int | None = None, **kwargs: Any) -> ProfileResult:
        raise BackendError(
            "the FPGA backend does not profile by running: its resource and latency estimate is "
            "get_backend('fpga').compile(graph, ...)['estimate'] (docs/fpga.md §5); energy profiles come from "
            "get_backend('cpu').profile(graph, energy_preset='zynq_us_plus')"
        )

    # ---- internals -----------------------------------------------------------------------------

    def _generate(
        self, graph, config, output_dir, project_name, part, clock_period, default_precision, reuse, strategy,
        calibration_inputs, n_steps,
    ) -> tuple[FixedPlan, GeneratedProject, HLSSettings]:  # fmt: skip
        check_graph(graph)
        part = self.default_part if part is None else part  # "" is refused, not the default
        settings = _settings(output_dir, project_name, part, clock_period, reuse, strategy)
        cfg = _config(config, default_precision)
        plan = plan_fixed(graph, cfg, calibration_inputs, n_steps)
        gen = generate(plan, settings.project_name, reuse_factor=settings.reuse_factor, strategy=settings.strategy)
        return plan, gen, settings

    def _descriptor(self, plan: FixedPlan, gen: GeneratedProject, settings: HLSSettings) -> dict:
        data = describe(plan.graph, plan.program, plan.engine, plan.config)
        data["backend"] = "fpga"
        data["hls"] = {
            **asdict(settings),
            "output_dir": str(settings.output_dir),
            "top_function": settings.project_name,
            "calibration": {"steps": plan.calibration_steps, "batch": plan.calibration_batch},
            "inputs": [
                {"name": p.name, "shape": list(p.shape), "scale": p.scale, "clip": p.top, "type": p.ctype}
                for p in gen.inputs
            ],
            "probes": [{"name": p.name, "array": p.source, "shape": list(p.shape)} for p in gen.probes],
        }
        data["estimate"] = estimate(gen.layers, settings.reuse_factor, settings.clock_period, settings.strategy)
        return data

    def _run_csim(self, plan, gen, files, arrays, steps, batch, used_default, step_by_step, work) -> SimulationResult:
        exe = csim.build(files, gen.project_name)
        start = time.perf_counter()
        probes = csim.run(exe, gen, arrays, work)
        wall = time.perf_counter() - start
        program, kernels = plan.program, plan.kernels
        outputs = {}
        for name, vid in program.outputs.items():
            op = program.ops[program.values[vid].producer]
            xs = [probes[ref.value].reshape(steps * batch, *program.values[ref.value].shape) for ref in op.inputs]
            y = kernels[op.index].merge(xs)
            outputs[name] = np.asarray(y, np.float32).reshape(steps, batch, *program.values[vid].shape)
        spike_counts = {}
        for path in plan.spiking_paths():
            vid = program.op(path).outputs[0]
            spike_counts[path] = int(probes[vid].sum())
        node_states = None
        if step_by_step:
            node_states = {}
            for op in program.ops:
                if op.graph_output:
                    continue
                entry = {}
                for port, vid in enumerate(op.outputs):
                    key = "output" if len(op.outputs) == 1 else f"output_{port}"
                    fmt = kernels[op.index].out_formats[port]
                    entry[f"{key}_int"] = probes[vid]
                    entry[key] = (probes[vid] * fmt.scale).astype(np.float32)
                kernel = kernels[op.index]
                for var, scale in getattr(kernel, "state_scales", {}).items():
                    ints = probes[("state", op.path, var)]
                    entry[f"{var}_int"] = ints
                    entry[var] = (ints * scale).astype(np.float32)
                node_states[op.path] = entry
        valid = len(outputs) == len(plan.graph.output_nodes) and all(np.all(np.isfinite(y)) for y in outputs.values())
        return SimulationResult(
            timesteps_run=steps,
            batch_size=batch,
            precision=plan.config.precision,
            outputs=outputs,
            outputs_valid=bool(valid),
            spike_counts=spike_counts,
            node_states=node_states,
            wall_time_s=wall,
            used_default_stimulus=used_default,
        )


class HLS4MLBackend(FPGABackend):
    """The FPGA backend under the name the TALON documentation uses."""


class ZynqUSPlusBackend(FPGABackend):
    """Zynq UltraScale+ XCZU9EG (ZCU102) as the default part."""

    default_part = "xczu9eg-ffvb1156-2-i"


class Zynq7020Backend(FPGABackend):
    """Zynq-7020 (PYNQ-Z2 / ZedBoard class) as the default part."""

    default_part = "xc7z020clg400-1"


def _config(config, precision) -> CompileConfig:
    if isinstance(precision, str) and precision.strip().lower().startswith("ap_fixed"):
        raise BackendError(
            f"precision {precision!r}: talon's datapath has calibrated per-channel scales, which one ap_fixed<W,I> "
            "type cannot express; pass 'int16', 'int8' or 'int4' (the ap_int types each value gets are in "
            "docs/fpga.md §3)"
        )
    if config is None and precision is None:
        precision = "int16"
    cfg = CompileConfig.coerce(config, precision)
    if cfg.precision not in FPGA_PRECISIONS:
        raise BackendError(
            f"precision {cfg.precision!r}: the FPGA backend generates integer datapaths only "
            f"({', '.join(FPGA_PRECISIONS)}); floating point has no bit-exact HLS counterpart of the CPU backend"
        )
    return cfg


def _project_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BackendError(f"project_name must be a C identifier (letters, digits, '_'), got {name!r}")
    if name in _CPP_KEYWORDS:
        raise BackendError(f"project_name {name!r} is a C++ keyword; the top function is named after the project")
    if (
        name in _GENERATED_NAMES
        or _GENERATED_PATTERN.match(name)
        or name.lower().startswith(("ap_", "nnet_"))  # the ap_types and nnet headers and their guards
        or "__" in name
        or re.match(r"^_[A-Z]", name)
    ):
        raise BackendError(
            f"project_name {name!r} is a name the generated C++ (or the ap_types / C++ implementation) already "
            "uses; the top function is named after the project: choose another name, e.g. 'snn_top'"
        )
    return name


def _settings(output_dir, project_name, part, clock_period, reuse, strategy) -> HLSSettings:
    if not isinstance(part, str) or not part.strip():
        raise BackendError(f"part must be an FPGA part name such as {DEFAULT_PART!r}, got {part!r}")
    if (
        isinstance(clock_period, bool)
        or not isinstance(clock_period, (int, float))
        or not (clock_period > 0 and math.isfinite(clock_period))
    ):
        raise BackendError(f"clock_period is in nanoseconds and must be positive, got {clock_period!r}")
    reuse = check_reuse_factor(reuse, "default_reuse_factor")
    strategy = check_strategy(strategy)
    if output_dir is None or str(output_dir) == "":
        raise BackendError("output_dir must name a directory for the HLS project")
    return HLSSettings(str(output_dir), _project_name(project_name), part, float(clock_period), reuse, strategy)


def check_strategy(strategy) -> str:
    """hls4ml's strategy name, any case -> ``"latency"`` or ``"resource"``; else a clear error."""
    if not isinstance(strategy, str) or strategy.strip().lower() not in STRATEGIES:
        raise BackendError(
            f"strategy must be 'Latency' or 'Resource' (hls4ml's strategies; 'resource_unrolled' and "
            f"'distributed_arithmetic' are not generated by talon), got {strategy!r}"
        )
    return strategy.strip().lower()


def check_reuse_factor(reuse, option: str) -> int:
    if isinstance(reuse, bool) or not isinstance(reuse, (int, np.integer)) or reuse < 1:
        raise BackendError(f"{option} must be an integer >= 1, got {reuse!r}")
    return int(reuse)
