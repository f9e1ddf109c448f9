"""The CPU backend: the numpy reference engine of docs/semantics.md, in float and fixed point."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from talon import ir
from talon._compiled import planned_work
from talon.ir.counting import CONV_LIKE_TYPES, detection_macs

from ..base import BackendBase, check_graph, iter_nodes
from ..config import PRECISIONS, CompileConfig
from ..descriptor import FORMAT, VERSION, HardwareDescriptor
from ..energy import DEFAULT_PRESET, EnergyPreset, resolve_energy
from ..errors import BackendError, UnsupportedNodeError
from ..results import BackendCapabilities, ProfileResult, QuantizationReport, SimulationResult, ValidationResult
from ..stimulus import NO_STATE, prepare_source
from .kernels.build import FLOAT_DTYPES
from .kernels.fixed_detection import DECODE_TYPES, float_tail
from .kernels.fixed_ops import NO_INTEGER_FORM, integer_support_problem
from .kernels.float_neurons import STATEFUL_NODES
from .kernels.float_ops import FLOAT_KERNELS
from .lowering.program import Program, lower_checked
from .run import program_cache
from .run.engine import Engine, calibrate
from .run.memory import plan_memory
from .run.observers import WEIGHT_NODES, ActivityObserver, ProgressObserver, SpikeObserver
from .run.output_stream import OnOutputs, OutputStream
from .run.probes import probe_values, resolve_probes
from .run.profiler import count_layers, dense_macs
from .run.reference_run import HeldReference, LockstepReference, runs_in_lockstep
from .run.run_memory import check_run_memory, held_bytes, plan_chunk
from .run.work_plan import run_share, simulate_share

_STRUCTURE = {"Input", "Output"}
FP32 = CompileConfig(precision="fp32")
_REFERENCE_KEYS = ("reference", "spiking_sizes", "stream_outputs")


def supported_primitives() -> list[str]:
    kinds = {t.__name__ for t in FLOAT_KERNELS} | {t.__name__ for t in STATEFUL_NODES} | {"Skip"}
    return sorted(k for k in ir.list_primitives() if k in kinds)


class CPUBackend(BackendBase):
    """Reference simulator, fixed-point simulator and profiler (numpy only)."""

    name = "cpu"
    max_graph_size = 1_000_000  # nodes, subgraphs inlined

    # ---- capabilities and validation -----------------------------------------------------------

    def get_capabilities(self) -> BackendCapabilities:
        prims = supported_primitives()
        decode = {t.__name__ for t in DECODE_TYPES}
        fixed = [p for p in prims if p not in NO_INTEGER_FORM and p not in decode]  # (bilinear Upsample: nearest)
        return BackendCapabilities(
            supported_primitives=prims,
            supported_precisions=list(PRECISIONS),
            supports_cyclic=True,
            max_graph_size=self.max_graph_size,
            fixed_point_primitives=fixed,
            fixed_point_float_primitives=sorted(decode),
        )

    def validate(self, graph: ir.Graph, config: CompileConfig | dict | None = None) -> ValidationResult:
        """Check node types (at the configured precision), structure and size; never raises on a bad graph."""
        return self._check(graph, CompileConfig.coerce(config))[0]

    def _check(self, graph: ir.Graph, config: CompileConfig) -> tuple[ValidationResult, Program | None]:
        check_graph(graph)
        program = None
        supported = set(supported_primitives()) | _STRUCTURE
        unsupported, errors, warnings = [], [], []
        nodes = list(iter_nodes(graph))
        for path, node in nodes:
            kind = type(node).__name__
            if kind not in supported:
                unsupported.append(f"{path} ({kind}): no CPU kernel")
            elif config.is_fixed_point and (problem := integer_support_problem(node)):
                unsupported.append(f"{path} ({kind}): {problem} (precision {config.precision})")
        if len(nodes) > self.max_graph_size:
            errors.append(f"the graph has {len(nodes):,} nodes, more than the CPU backend's {self.max_graph_size:,}")
        errors += ir.non_finite_problems(graph)
        program, structure = lower_checked(graph)
        errors += structure
        if program is not None and config.is_fixed_point:
            unsupported += [f"{problem} (precision {config.precision})" for problem in float_tail(program)[1]]
        if program is not None:
            for op in program.ops:
                if not op.inputs and not op.external and not isinstance(op.node, ir.Input):
                    warnings.append(f"node {op.path!r} has no incoming edge: it receives zero input")
        return ValidationResult(not unsupported and not errors, unsupported, warnings, errors), program

    def _require_valid(self, graph: ir.Graph, config: CompileConfig) -> Program:
        ir.check_finite(check_graph(graph), "the CPU backend")
        result, program = self._check(graph, config)
        if result.unsupported_nodes:
            raise UnsupportedNodeError("the CPU backend cannot run these nodes: " + "; ".join(result.unsupported_nodes))
        if result.errors:
            raise BackendError("; ".join(result.errors))
        return program

    # ---- compile -----------------------------------------------------------------------------

    def compile(
        self,
        graph: ir.Graph,
        config: CompileConfig | dict | None = None,
        *,
        precision: str | None = None,
        calibration_inputs=None,
        n_steps: int | None = None,
        hw_spec=None,
    ) -> HardwareDescriptor:
        """Lower ``graph`` to a :class:`HardwareDescriptor` (schedule, buffers, per-node precision).

        Fixed-point precisions calibrate their rescaling on an fp32 run of ``calibration_inputs``
        (the default stimulus when None; see :func:`talon.backend.default_stimulus`).
        With ``hw_spec`` (a ``talon.graph.HardwareSpec``, preset name or JSON file) an unmapped graph
        is first mapped (partition, place, route: ``talon.graph.map_graph``); a mapped graph's
        descriptor carries its ``mapping`` (cores, placement, routing tables, budgets) and every
        scheduled op its ``core`` (docs/mapping.md).
        """
        from talon.graph.pipeline import is_mapped, map_graph

        if hw_spec is not None and not is_mapped(graph):
            graph = map_graph(graph, hw_spec)
        config = CompileConfig.coerce(config, precision)
        program = self._require_valid(graph, config)
        calibration = None
        if config.is_fixed_point:
            source, steps, batch, _ = prepare_source(graph, calibration_inputs, n_steps)
            accumulator = _itemsizes(CompileConfig())[1]
            chunk = check_run_memory(program, steps, batch, 4, accumulator_itemsize=accumulator, calibration=True)
            with planned_work(run_share(program, "fp32", steps, batch)):
                calibration, _ = calibrate(program, source, chunk_steps=chunk)
        engine = Engine(program, config, calibration, graph=graph)
        data = describe(graph, program, engine, config)
        if is_mapped(graph):
            from talon.graph.pipeline import mapping_description

            data["mapping"] = mapping_description(graph, hw_spec)
            for component in data["schedule"]:
                for op in component["ops"]:
                    op["core"] = data["mapping"]["assignments"].get(op["node"])
        return HardwareDescriptor(data, program=engine)

    # ---- simulate ----------------------------------------------------------------------------

    def simulate(
        self,
        graph: ir.Graph,
        inputs=None,
        n_steps: int | None = None,
        step_by_step: bool = False,
        *,
        config: CompileConfig | dict | None = None,
        precision: str | None = None,
        progress: bool | Callable[[int, int], None] | None = None,
        chunk_steps: int | None = None,
        on_outputs: OnOutputs | None = None,
        probes: Sequence[str] | None = None,
    ) -> SimulationResult:
        """Run ``graph`` for ``n_steps`` steps (docs/semantics.md) and report outputs and spikes.

        ``inputs``: ``{input name: array}`` (or one array for a single Input) shaped ``S``,
        ``[B, *S]`` (held constant) or ``[T, B, *S]``; None uses the seeded default stimulus.
        ``n_steps`` defaults to ``T`` of the inputs, else 100. ``step_by_step=True`` records every
        node's output and state after every step (``node_states``); ``probes`` (with it) records only
        the nodes named: node paths (``"rnn.lif"`` inside subgraph ``rnn``) or subgraph paths (all
        their nodes), :mod:`.run.probes`. A reduced ``precision`` (``fp16``, ``int16``, ``int8``,
        ``int4``) also runs fp32 on the same inputs and reports the difference (``quantization``;
        :mod:`.run.reference_run`: held, or in lockstep chunk by chunk). ``progress(done, total)`` is
        called after every operation of every chunk of every run (a reduced precision runs fp32
        first), e.g. to drive a progress bar; ``progress=True`` shows one on stderr (on a terminal,
        as ``talon simulate`` does). ``chunk_steps``: the most steps whose layer outputs exist at
        once (None: as many as fit in ``run_memory.CHUNK_BYTES``); any value gives the same results,
        bit for bit.
        ``on_outputs(start, stop, {output name: float32 [stop - start, B, ...]})``: receives the
        graph outputs chunk by chunk instead of keeping them (``outputs`` is then empty; see
        :mod:`.run.output_stream`); not with ``step_by_step``. The validated program and float engine
        of a graph are reused by the next call on the unchanged graph (:mod:`.run.program_cache`).
        """
        config = CompileConfig.coerce(config, precision)
        with _progress(progress, "simulating") as ticks:
            return self._simulate(graph, inputs, n_steps, step_by_step, config, progress=ticks,
                                  chunk_steps=chunk_steps, on_outputs=on_outputs, probes=probes)[0]  # fmt: skip

    def _simulate(
        self, graph, inputs, n_steps, step_by_step, config, extra_observers=(), progress=None, chunk_steps=None,
        on_outputs=None, probes=None,
    ):  # fmt: skip
        check_graph(graph)
        _check_step_by_step(step_by_step, probes)
        if on_outputs is not None and (step_by_step or not callable(on_outputs)):
            raise BackendError(
                "on_outputs must be a callable on_outputs(start, stop, outputs), and cannot be combined with "
                "step_by_step (which keeps every value)"
            )
        built = program_cache.lookup(graph, keep=not config.is_fixed_point)
        program = built.program(config, self._require_valid)
        probed = resolve_probes(program, probes)
        source, steps, batch, used_default = prepare_source(graph, inputs, n_steps)
        itemsize, accumulator = _itemsizes(config)
        reduced, fixed = config.precision != "fp32", config.is_fixed_point
        memory = dict(
            record=_recorded(program, step_by_step, probed), fixed_point=fixed, chunk_steps=chunk_steps,
            accumulator_itemsize=max(accumulator, 8 * reduced), reference=reduced,
            spiking_sizes=_spiking_sizes(program), stream_outputs=on_outputs is not None,
        )  # fmt: skip
        fp32, lockstep = None, False
        if reduced:  # the fp32 reference (reference_run.py); a fixed-point call does not add it to the cache
            fp32 = built.engine(program, FP32) if not fixed else built.existing(FP32) or Engine(program, FP32)
            plan = plan_chunk(program, steps, batch, itemsize, accumulator_itemsize=memory["accumulator_itemsize"],
                              chunk_steps=chunk_steps)  # fmt: skip
            held = held_bytes(program, steps, batch, itemsize, **{k: memory[k] for k in _REFERENCE_KEYS})
            lockstep = runs_in_lockstep(fixed, steps, plan, held["fp32 reference"], fp32)
        chunk = check_run_memory(program, steps, batch, itemsize, lockstep=lockstep, calibration=fixed,
                                 precision=config.precision, probed=probes is not None, **memory)  # fmt: skip
        runs = 1 + reduced + (lockstep and fixed)
        ticks = ()
        if progress is not None:
            ticks = (ProgressObserver(progress, runs * len(program.ops) * -(-steps // chunk)),)
        calibration = None
        reference = None
        with planned_work(simulate_share(program, config, steps, batch)):  # a long run starts numba at once
            if reduced:
                ref_spikes = None if lockstep else SpikeObserver(keep_trains=True)
                ref_observers = () if lockstep else (ref_spikes,)
                if fixed:
                    calibration, ref_trace = calibrate(program, source, observers=(*ref_observers, *ticks),
                                                       chunk_steps=chunk, engine=fp32,
                                                       keep_outputs=not lockstep)  # fmt: skip
                elif not lockstep:
                    ref_trace = fp32.run(source, observers=(ref_spikes, *ticks), chunk_steps=chunk)
                if lockstep:
                    reference = LockstepReference(fp32, source, chunk, ticks, keep_outputs=on_outputs is None)
                else:
                    reference = HeldReference(ref_trace, ref_spikes)
                fp32 = None  # freed (unless cached or in lockstep) before the integer kernels are built
            # a fixed-point engine is built on this call's calibration
            engine = Engine(program, config, calibration) if fixed else built.engine(program, config)
            observers = (*extra_observers, *ticks)
            return _run(engine, graph, source, steps, batch, used_default, step_by_step, observers, reference, chunk,
                        on_outputs, probed)  # fmt: skip

    def run_compiled(
        self,
        descriptor: HardwareDescriptor,
        inputs=None,
        n_steps: int | None = None,
        step_by_step: bool = False,
        *,
        chunk_steps: int | None = None,
        probes: Sequence[str] | None = None,
    ) -> SimulationResult:
        """Run the program of a :class:`HardwareDescriptor` made by :meth:`compile` on ``inputs``
        (taken as :meth:`simulate` takes them, ``chunk_steps`` and ``probes`` too) and report like
        :meth:`simulate`.

        A fixed-point program keeps the formats calibrated when it was compiled (on its
        ``calibration_inputs``): calibration is paid once and the integer datapath is reused on
        any number of inputs. No fp32 reference runs, so ``quantization`` is None. Inputs beyond the
        calibrated range saturate at the Input's bound (docs/backend.md §4.3).
        """
        engine = getattr(descriptor, "program", None)
        if not isinstance(descriptor, HardwareDescriptor) or not isinstance(engine, Engine) or engine.graph is None:
            raise BackendError(
                "run_compiled takes the HardwareDescriptor returned by the CPU backend's compile (a descriptor "
                f"read back from JSON, or another backend's, holds no program); got {type(descriptor).__name__}"
            )
        _check_step_by_step(step_by_step, probes)
        probed = resolve_probes(engine.program, probes)
        source, steps, batch, used_default = prepare_source(engine.graph, inputs, n_steps)
        itemsize, accumulator = _itemsizes(engine.config)
        chunk = check_run_memory(
            engine.program, steps, batch, itemsize, accumulator_itemsize=accumulator, chunk_steps=chunk_steps,
            record=_recorded(engine.program, step_by_step, probed), fixed_point=engine.config.is_fixed_point,
            precision=engine.config.precision, probed=probes is not None,
        )  # fmt: skip
        input_kernels = [k for k in engine.kernels if hasattr(k, "outside")]
        for kernel in input_kernels:
            kernel.outside = (0, 0)
        with planned_work(run_share(engine.program, engine.config.precision, steps, batch)):
            result = _run(engine, engine.graph, source, steps, batch, used_default, step_by_step, (), None, chunk,
                          probed=probed)[0]  # fmt: skip
        _warn_outside_calibration(engine, steps * batch)
        return result

    # ---- profile -----------------------------------------------------------------------------

    def profile(
        self,
        graph: ir.Graph,
        inputs=None,
        n_steps: int | None = None,
        energy_preset: str | EnergyPreset = DEFAULT_PRESET,
        energy_per_mac_pj: float | None = None,
        energy_per_spike_pj: float | None = None,
        energy_per_sram_read_pj: float | None = None,
        energy_per_sram_write_pj: float | None = None,
        *,
        config: CompileConfig | dict | None = None,
        precision: str | None = None,
        progress: bool | Callable[[int, int], None] | None = None,
        chunk_steps: int | None = None,
    ) -> ProfileResult:
        """Simulate ``graph`` and report measured latency, operation counts from the measured
        activity, memory and estimated energy (model and presets: docs/backend.md).

        ``energy_per_*_pj`` override the preset's per-operation energies (a read override also sets
        the write energy unless that is given too). ``progress``, ``chunk_steps``: as :meth:`simulate`'s
        (the counts are accumulated chunk by chunk: the same numbers for any chunk size).
        """
        if energy_per_sram_read_pj is not None and energy_per_sram_write_pj is None:
            energy_per_sram_write_pj = energy_per_sram_read_pj
        energy = resolve_energy(
            energy_preset, energy_per_mac_pj, energy_per_spike_pj, energy_per_sram_read_pj, energy_per_sram_write_pj
        )
        config = CompileConfig.coerce(config, precision)
        activity = ActivityObserver()
        with _progress(progress, "profiling") as ticks:
            result, engine, trace, steps, batch, spikes = self._simulate(
                graph, inputs, n_steps, False, config, (activity,), progress=ticks, chunk_steps=chunk_steps
            )
        layers = count_layers(
            engine.program, engine.kernels, config, activity, spikes, trace.seconds, steps, batch, energy
        )
        plan = plan_memory(engine.program, engine.kernels, config)
        mac = sum(layer.mac_energy_uj for layer in layers.values())
        spk = sum(layer.spike_energy_uj for layer in layers.values())
        sram = sum(layer.sram_energy_uj for layer in layers.values())
        dense_equivalent = sum(
            _dense_macs_or_zero(op.node) * steps * batch for op in engine.program.ops
        )  # fmt: skip
        fired = {}
        for path in spiking_paths(engine):
            n = math.prod(engine.program.op(path).node.output_shape)
            hit = spikes.fired.get(path)
            fired[path] = 0.0 if hit is None or n == 0 else float(np.count_nonzero(hit)) / n
        noc, per_core = _mapped_profile(graph, result, layers)
        noc_uj = (noc or {}).get("noc_energy_uj") or 0.0
        return ProfileResult(
            total_latency_us=1e6 * trace.total_seconds,
            mac_ops=sum(layer.macs for layer in layers.values()),
            synaptic_ops=sum(layer.synaptic_ops for layer in layers.values()),
            spike_count=result.total_spikes,
            dense_equivalent_macs=int(dense_equivalent),
            energy_estimate_uj=mac + spk + sram + noc_uj,
            mac_energy_uj=mac,
            spike_energy_uj=spk,
            sram_energy_uj=sram,
            per_layer_energy_uj={path: layer.energy_uj for path, layer in layers.items() if layer.energy_uj},
            peak_memory_bytes=plan.peak_bytes(batch),
            weight_memory_bytes=plan.weight_bytes,
            parameter_memory_bytes=plan.parameter_bytes,
            state_memory_bytes=plan.state_bytes * batch,
            activation_memory_bytes=plan.peak_activation_bytes * batch,
            neuron_utilization=fired,
            energy_preset=energy.name,
            energy_per_op_pj={
                "mac_pj": energy.mac_pj,
                "spike_pj": energy.spike_pj,
                "sram_read_pj": energy.sram_read_pj,
                "sram_write_pj": energy.sram_write_pj,
            },
            n_steps=steps,
            batch_size=batch,
            precision=config.precision,
            layers=layers,
            simulation=result,
            noc=noc,
            per_core_latency_us=per_core,
        )


def _progress(progress, what: str):
    """``progress`` as ``simulate`` and ``profile`` take it, as a context giving the callback to
    call (None for none): None or False, none; True, a bar on stderr (:func:`talon._terminal.layer_progress`,
    shown on a terminal only); a callable ``progress(done, total)``, itself."""
    if progress is None or (isinstance(progress, (bool, np.bool_)) and not progress):
        return contextlib.nullcontext(None)
    if isinstance(progress, (bool, np.bool_)):
        from talon._terminal import layer_progress

        return layer_progress(what)
    if not callable(progress):
        raise BackendError(
            f"progress must be True (a progress bar on stderr), False / None (none) or a callable "
            f"progress(done, total) called after every layer; got {progress!r} ({type(progress).__name__})"
        )
    return contextlib.nullcontext(progress)


def _check_step_by_step(step_by_step, probes=None) -> None:
    if not isinstance(step_by_step, (bool, np.bool_)):
        hint = f"; {NO_STATE}" if isinstance(step_by_step, dict) else ""
        raise BackendError(f"step_by_step must be True or False, got {step_by_step!r}{hint}")
    if probes is not None and not step_by_step:
        raise BackendError(
            "probes name the nodes a step-by-step run records: pass step_by_step=True with them "
            "(without step_by_step only the graph outputs are kept)"
        )


def _run(
    engine, graph, source, steps, batch, used_default, step_by_step, extra_observers, reference, chunk, on_outputs=None,
    probed=None,
):  # fmt: skip
    """Run ``engine`` on the prepared input ``source`` in chunks of ``chunk`` steps and report
    (``reference``: the fp32 reference of a reduced precision, :mod:`.run.reference_run`, compared in
    ``quantization``; ``on_outputs``: receives the graph outputs chunk by chunk, :mod:`.run.output_stream`;
    ``probed``: the operations a step-by-step run records, None for all)."""
    program = engine.program
    config = engine.config
    spikes = SpikeObserver(compare_with=None if reference is None else reference.spikes)
    stream = None
    if on_outputs is not None:
        stream = OutputStream(program, on_outputs, None if reference is None else reference.outputs_between)
    keep, record = None, False
    if step_by_step:
        keep = probe_values(program, probed) | set(program.outputs.values())
        record = True if probed is None else {op.path for op in probed}
    start = time.perf_counter()
    trace = engine.run(
        source if reference is None else reference.inputs(source), keep=keep, record_states=record,
        observers=(spikes, *extra_observers), chunk_steps=chunk, sink=stream,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if reference is not None:  # a reference run in lockstep ran inside this run's clock
        wall -= reference.seconds
        trace.total_seconds -= reference.seconds
        ref_trace = reference.finish()
    if stream is None:
        outputs = {name: np.asarray(trace.values[vid], np.float32) for name, vid in program.outputs.items()}
        valid = len(outputs) == len(graph.output_nodes) and all(np.all(np.isfinite(y)) for y in outputs.values())
    else:
        outputs, valid = {}, len(program.outputs) == len(graph.output_nodes) and stream.valid
    report = None
    if reference is not None:
        report = quantization_report(config.precision, outputs, program, spikes, ref_trace, reference.spikes,
                                     errors=None if stream is None else stream.errors())  # fmt: skip
    result = SimulationResult(
        timesteps_run=steps,
        batch_size=batch,
        precision=config.precision,
        outputs=outputs,
        outputs_valid=bool(valid),
        spike_counts={path: spikes.counts.get(path, 0) for path in spiking_paths(engine)},
        node_states=node_states(engine, trace, probed) if step_by_step else None,
        quantization=report,
        wall_time_s=wall,
        used_default_stimulus=used_default,
        node_precision={
            op.path: getattr(engine.kernels[op.index], "precision", config.precision) for op in program.ops
        },
    )
    return result, engine, trace, steps, batch, spikes


def _recorded(program: Program, step_by_step: bool, probed) -> list | None:
    """The operations a run records for every step (``probed``, or all of them), None without step_by_step."""
    if not step_by_step:
        return None
    return program.ops if probed is None else probed


def _itemsizes(config: CompileConfig) -> tuple[int, int]:
    """Bytes per element of a value the executor holds (the float dtype's; 4 in fixed point: int64, or
    float32 integers where the bound allows, the smaller so the memory check stays a lower bound) and
    of a weight layer's float64 accumulator (fp32 with exact accumulation; else none: 0)."""
    if config.precision not in FLOAT_DTYPES:
        return 4, 0
    accumulator = 8 if config.precision == "fp32" and config.exact_accumulation else 0
    return np.dtype(FLOAT_DTYPES[config.precision]).itemsize, accumulator


def _dense_macs_or_zero(node: ir.Node) -> int:
    """A weight layer's MACs per step and batch entry, all inputs counted (the ghost blocks and
    SDDetect are convolution layers: their convolutions' MACs); 0 for other nodes."""
    if isinstance(node, WEIGHT_NODES):
        return dense_macs(node)
    if isinstance(node, CONV_LIKE_TYPES):
        return detection_macs(node, tuple(node.input_shape))
    return 0


def _spiking_sizes(program: Program) -> list[int]:
    """Neurons per step of each spiking node of ``program`` (their trains are kept for a reduced
    precision's spike agreement)."""
    spiking = (ir.LIF, ir.IF, ir.CubaLIF, ir.Threshold)
    return [math.prod(op.node.output_shape) for op in program.ops if isinstance(op.node, spiking)]


def spiking_paths(engine: Engine) -> list[str]:
    return [op.path for op in engine.program.ops if engine.kernels[op.index].spiking]


class CalibrationRangeWarning(UserWarning):
    """A compiled fixed-point program saturated or rounded inputs its calibration did not cover."""


def _warn_outside_calibration(engine: Engine, samples: int) -> None:
    """Say which inputs of a compiled program fell outside the formats calibrated at compile time
    (counted by the input kernels while they quantized them); ``samples``: steps x batch of the run."""
    for op in engine.program.ops:
        saturated, rounded = getattr(engine.kernels[op.index], "outside", (0, 0))
        if op.external and (saturated or rounded):
            size = samples * math.prod(op.node.output_shape)
            warnings.warn(
                f"input {op.path!r}: {saturated} of {size} values saturate at the calibrated bound "
                f"and {rounded} fall between the calibrated steps (rounded); the program was calibrated on other "
                "data — compile with calibration_inputs that cover these inputs, or use simulate() to calibrate "
                "on them",
                CalibrationRangeWarning,
                stacklevel=3,
            )


def node_states(engine: Engine, trace, probed=None) -> dict[str, dict[str, np.ndarray]]:
    """Every node's (``probed``: those operations') output(s) and state variables after every step
    (real values; fixed point also raw). A fixed-point value held as float32 integers is released
    from ``trace`` once its int64 copy is made, so that no more than the reported arrays stay
    (``run_memory.held_bytes``)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    fixed = engine.config.is_fixed_point
    for op in engine.program.ops if probed is None else probed:
        kernel = engine.kernels[op.index]
        entry: dict[str, np.ndarray] = {}
        for port, vid in enumerate(op.outputs):
            key = "output" if len(op.outputs) == 1 else f"output_{port}"
            value = trace.values[vid]
            if fixed and kernel.out_formats[port] is not None:
                value = np.asarray(trace.values.pop(vid), np.int64)  # held as float32 where exact: reported as int64
                entry[f"{key}_int"] = value
                value = (value * kernel.out_formats[port].scale).astype(np.float32)
            entry[key] = value
        for var, value in trace.states.get(op.path, {}).items():
            if fixed:
                entry[f"{var}_int"] = value
                value = (value * kernel.state_scales[var]).astype(np.float32)
            entry[var] = value
        out[op.path] = entry
    return out


def quantization_report(precision, outputs, program, spikes, ref_trace, ref_spikes, errors=None) -> QuantizationReport:
    """The error report of a reduced precision; ``errors``: the output errors accumulated by an
    :class:`~.run.output_stream.OutputStream` (else computed here from ``outputs``)."""
    per_node, total_equal, total_size = {}, 0, 0
    for path, size in spikes.compared.items():  # compared chunk by chunk during the run
        equal = spikes.equal[path]
        per_node[path] = equal / size if size else 1.0
        total_equal += equal
        total_size += size
    max_abs, rmse, rel = errors if errors is not None else ({}, {}, {})
    for name, vid in program.outputs.items() if errors is None else ():
        y = outputs[name].astype(np.float64)
        r = np.asarray(ref_trace.values[vid], np.float64)
        diff = y - r
        max_abs[name] = float(np.abs(diff).max()) if diff.size else 0.0
        rmse[name] = float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0
        norm = float(np.linalg.norm(r))
        err = float(np.linalg.norm(diff))
        rel[name] = 0.0 if err == 0 else (err / norm if norm else float("inf"))
    return QuantizationReport(
        precision=precision,
        spike_agreement=total_equal / total_size if total_size else 1.0,
        per_node_spike_agreement=per_node,
        spike_counts_fp32={p: ref_spikes.counts.get(p, 0) for p in per_node},
        output_max_abs_error=max_abs,
        output_rmse=rmse,
        output_relative_error=rel,
    )


def describe(graph: ir.Graph, program: Program, engine: Engine, config: CompileConfig) -> dict[str, Any]:
    """The JSON document of a :class:`HardwareDescriptor` (schema in docs/backend.md)."""
    plan = plan_memory(program, engine.kernels, config)
    float_dtype = {"fp32": "float32", "fp16": "float16"}.get(config.precision)
    schedule = []
    for k, component in enumerate(program.components):
        ops = []
        for i in component.ops:
            op = program.ops[i]
            kernel = engine.kernels[i]
            if float_dtype:
                acc = "float64" if (config.exact_accumulation and float_dtype == "float32") else "float32"
                precision = {"dtype": float_dtype, "accumulation": acc}
            else:
                precision = {"dtype": "int64 container", **_jsonable(kernel.describe())}
            ops.append(
                {
                    "node": op.path,
                    "type": op.kind,
                    "inputs": [{"value": r.value, "delayed": r.delayed} for r in op.inputs],
                    "outputs": list(op.outputs),
                    "external_input": op.external,
                    "graph_output": op.graph_output,
                    "precision": precision,
                }
            )
        schedule.append({"component": k, "mode": "step" if component.cyclic else "sequence", "ops": ops})
    return {
        "format": FORMAT,
        "version": VERSION,
        "backend": "cpu",
        "graph": {
            "nodes": len(program.ops),
            "edges": sum(len(op.inputs) for op in program.ops),
            "inputs": {name: list(program.values[vid].shape) for name, vid in program.inputs.items()},
            "outputs": {name: list(program.values[vid].shape) for name, vid in program.outputs.items()},
        },
        "config": config.to_dict(),
        "values": [
            {"id": v.id, "name": v.name, "shape": list(v.shape), "producer": program.ops[v.producer].path}
            for v in program.values
        ],
        "schedule": schedule,
        "buffers": plan.buffers,
        "memory": plan.to_dict(),
    }


def _mapped_profile(graph: ir.Graph, result: SimulationResult, layers) -> tuple[dict | None, dict | None]:
    """NoC spike-hops and energy of the measured spikes, and the measured CPU time per core, of a
    mapped graph (None, None for an unmapped one)."""
    from talon.graph.pipeline import is_mapped, noc_activity

    if not is_mapped(graph):
        return None, None
    noc = noc_activity(graph, result)
    per_core: dict[int, float] = {}
    for path, layer in layers.items():
        core = getattr(graph.nodes.get(path), "core_id", None)
        if core is not None:
            per_core[int(core)] = per_core.get(int(core), 0.0) + float(layer.latency_us)
    return noc, dict(sorted(per_core.items()))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
