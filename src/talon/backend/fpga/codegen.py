"""Stage 2: an HLS project from a :class:`~.lowering.FixedPlan`.

Every lowered operation becomes one call of a C++ function from the package's headers
(``firmware/nnet_talon_*.h``, and hls4ml's ``nnet::dense`` for Affine / Linear); this module only
prints the integers of the CPU backend's kernels into ``parameters.h``, the layer configurations
into ``defines.h`` and the call sequence of one timestep into the top function. The top function
runs **one timestep** per call: neuron membranes, synaptic currents, delay lines and the values
read by recurrent (delayed) edges are static arrays kept across calls and cleared when ``reset``
is set (the first step of every sample).

Ports: one ``ap_int`` array per top-level Input (already quantized; the testbench quantizes with
``nnet_talon_io.h``), one ``probe`` array per observed value (the spikes of every spiking node and
the values feeding each top-level Output; with ``probe_all`` every value and every neuron state
after the step), and ``reset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from talon import ir

from ..cpu.kernels import fixed_neurons, fixed_ops
from ..errors import UnsupportedNodeError
from .hls_types import bits_for_bound, dense_sums, int_type, saturating_type, value_type
from .lowering import FixedPlan, flat_param


@dataclass
class Probe:
    """An observed array: ``[steps, N]`` int64 per sample in the results file. ``key`` is the value
    id of a value, or ``("state", node path, "v" | "i")`` for a neuron state after the step."""

    key: int | tuple[str, str, str]
    name: str
    shape: tuple[int, ...]
    source: str  # the C array
    ctype: str

    @property
    def value(self) -> int | None:
        return self.key if isinstance(self.key, int) else None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class InputPort:
    name: str
    value: int
    shape: tuple[int, ...]
    scale: float
    top: int
    ctype: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class GeneratedProject:
    """The text of every generated file (relative path -> content) and the port layout."""

    project_name: str
    files: dict[str, str]
    binaries: dict[str, bytes]
    inputs: list[InputPort]
    probes: list[Probe]
    layers: list[dict] = field(default_factory=list)  # per-op facts for the estimate and descriptor


def _cnum(x) -> str:
    return str(int(x))


def _cdouble(x: float) -> str:
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return repr(float(x))


FILE_INTS = ((8, "int8", "signed char"), (16, "int16", "short"), (32, "int32", "int"), (64, "int64", "long long"))


class _Writer:
    def __init__(self, plan: FixedPlan, project: str, reuse_factor: int, strategy: str, probe_all: bool) -> None:
        self.plan = plan
        self.project = project
        self.reuse = reuse_factor
        self.strategy = strategy
        self.probe_all = probe_all
        self.params: list[str] = []
        self.weights: list[tuple[str, np.ndarray, bool]] = []  # declaration, values, is double
        self.loads: list[str] = []
        self.binaries: dict[str, bytes] = {}
        self.defines: list[str] = []
        self.statics: list[str] = []
        self.resets: list[str] = []
        self.body: list[str] = []
        self.vtypes: dict[int, str] = {}
        self.state_arrays: list[Probe] = []
        self.layers: list[dict] = []
        self.program = plan.program
        self.kernels = plan.kernels

    def layer_reuse(self, multiplies: int) -> int:
        """A layer's reuse factor: the requested one, at most its number of multiplies (more
        rounds than multiplies would only idle; hls4ml clamps the same way)."""
        return max(1, min(self.reuse, multiplies))

    # ---- parameters ----------------------------------------------------------------------------

    def array(
        self, name: str, values, ctype: str = "talon::wide_t", const: bool = True, bits: int | None = None
    ) -> int:
        """A parameter array: initialised in ``weights.h`` for synthesis, loaded from
        ``weights/<name>.bin`` in C simulation, so the compiled simulation depends on the
        network's structure only, not on its numbers. The file holds float64 for ``double``, else
        the narrowest of int8 / int16 / int32 / int64 that holds every ``bits``-bit value of the
        C type (a property of the type, so the loader's code does not depend on the numbers)."""
        values = np.asarray(values).reshape(-1)
        if ctype == "double":
            self.binaries[f"weights/{name}.bin"] = np.asarray(values, np.float64).tobytes()
            load = f"talon::load_doubles<{ctype}, {values.size}>"
        else:
            bits = bits if bits is not None else {"talon::wide_t": 64, "int": 32}[ctype]
            storage, cstorage = next((np.dtype(t), c) for limit, t, c in FILE_INTS if bits <= limit)
            self.binaries[f"weights/{name}.bin"] = np.asarray(values, np.int64).astype(storage).tobytes()
            load = f"talon::load_integers<{ctype}, {values.size}, {cstorage}>"
        qual = "static const " if const else "static "
        self.weights.append((f"{qual}{ctype} {name}[{values.size}]", values, ctype == "double"))
        self.params.append(f"static {ctype} {name}[{values.size}];")
        self.loads.append(f'ok = {load}(dir, "{name}", {name}) && ok;')
        return int(values.size)

    def multiplier(self, name: str, mult, shape) -> tuple[int, int]:
        n_m = self.array(f"{name}_m", flat_param(mult.m, shape))
        n_s = self.array(f"{name}_s", flat_param(mult.shift, shape), "int")
        return n_m, n_s

    # ---- values --------------------------------------------------------------------------------

    def vshape(self, vid: int) -> tuple[int, ...]:
        return self.program.values[vid].shape

    def vsize(self, vid: int) -> int:
        return math.prod(self.vshape(vid))

    def declare_value(self, vid: int, fmt) -> None:
        ctype = value_type(fmt)
        self.vtypes[vid] = ctype
        self.defines.append(f"typedef {ctype} v{vid}_t;  // {self.program.values[vid].name}, |q| <= {fmt.bound}")

    def src(self, ref) -> str:
        return f"p{ref.value}" if ref.delayed else f"v{ref.value}"

    def emit(self, line: str) -> None:
        self.body.append("    " + line)

    def store(self, wide_name: str, vid: int) -> None:
        n = self.vsize(vid)
        self.emit(f"v{vid}_t v{vid}[{n}];")
        self.emit(f"talon::store<talon::wide_t, v{vid}_t, {n}>({wide_name}, v{vid});")

    # ---- fan-in --------------------------------------------------------------------------------

    def merge(self, op, kernel, tag: str) -> str:
        """Code computing ``m<tag>`` (wide integers), the kernel's merged input; returns its name."""
        name = f"m{tag}"
        n = math.prod(op.in_shape) if op.in_shape is not None else self.vsize(op.inputs[0].value)
        self.emit(f"talon::wide_t {name}[{n}];")
        self.emit(f"talon::zero<{n}>({name});")
        refs = op.inputs
        if not refs:
            return name
        weighted = isinstance(kernel, fixed_ops.QWeighted)
        mults = kernel.act_multipliers if weighted else getattr(kernel, "multipliers", None)
        if len(refs) == 1 and (not weighted or mults is None):
            mults = None
        for k, ref in enumerate(refs):
            t = f"v{ref.value}_t"
            if mults is None or mults[k] is None:
                self.emit(f"talon::add<{t}, {n}>({self.src(ref)}, {name});")
            else:
                nm, ns = self.multiplier(f"{name}_e{k}", mults[k], op.in_shape)
                self.emit(
                    f"talon::add_scaled<{t}, {n}, {nm}, {ns}>({self.src(ref)}, {name}_e{k}_m, {name}_e{k}_s, {name});"
                )
        if weighted:
            if mults is not None:
                self.emit(f"talon::clip_all<{n}>({name}, {_cnum(kernel.act_clip)});")
        elif len(refs) > 1 and kernel.saturating:
            self.emit(f"talon::saturate_all<{n}, {kernel.merge_bits}>({name});")
        return name

    # ---- operations ----------------------------------------------------------------------------

    def op(self, op) -> None:
        kernel = self.kernels[op.index]
        tag = str(op.index)
        self.emit(f"// {op.path} ({op.kind})")
        if op.graph_output:
            return
        if op.external:
            self.declare_value(op.outputs[0], kernel.out_formats[0])
            return
        for vid, fmt in zip(op.outputs, kernel.out_formats, strict=True):
            self.declare_value(vid, fmt)
        if isinstance(kernel, fixed_neurons.FixedNeuron):
            return self.neuron(op, kernel, tag)
        if isinstance(kernel, fixed_neurons.FixedDelay):
            return self.delay(op, kernel, tag)
        handler = {
            fixed_ops.QDense: self.dense,
            fixed_ops.QConv: self.conv,
            fixed_ops.QPool: self.pool,
            fixed_ops.QConcat: self.concat,
            fixed_ops.QChannelSplit: self.split,
            fixed_ops.QScale: self.scale,
            fixed_ops.QBatchNorm: self.batchnorm,
            fixed_ops.QReLU: self.relu,
            fixed_ops.QThreshold: self.threshold,
            fixed_ops.QFlatten: self.identity,
            fixed_ops.QIdentity: self.identity,
        }.get(type(kernel))
        if handler is None:
            raise UnsupportedNodeError(f"node {op.path!r} ({op.kind}): no HLS implementation in the FPGA backend")
        handler(op, kernel, tag)

    def identity(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        self.store(m, op.outputs[0])
        self.layers.append({"node": op.path, "kind": "route", "elements": self.vsize(op.outputs[0])})

    def unmerged_input(self, op, kernel, ctype: str) -> str | None:
        """The array a weight layer can read as it is: one incoming edge, not rescaled, whose
        values already have the layer's input type (the merge would copy them unchanged)."""
        if len(op.inputs) != 1 or kernel.act_multipliers is not None:
            return None
        ref = op.inputs[0]
        return self.src(ref) if self.vtypes.get(ref.value) == ctype else None

    def dense(self, op, kernel, tag):
        n_in = int(kernel.weight_t.shape[0])
        n_out = int(kernel.weight_t.shape[1])
        rows = math.prod(op.in_shape) // n_in
        act_bits = bits_for_bound(kernel.input_format.bound)
        cfg = f"config{tag}"
        sum_t, part_t, block = dense_sums(kernel, n_in)
        resource = self.strategy == "resource"
        reuse = self.layer_reuse(n_in * n_out)
        wt, bt, rt, dt = f"w{tag}_t", f"b{tag}_t", f"r{tag}_t", f"d{tag}_t"
        out = op.outputs[0]
        # the result is the CPU's sat(acc): a saturating type only where saturation can happen
        # (else the sum is proven to fit the output's own type and is written there directly)
        res_type = saturating_type(kernel.acc_bits) if kernel.saturating_acc else f"v{out}_t"
        self.defines += [
            f"typedef {int_type(kernel.w_bits)} {wt};",
            f"typedef {int_type(kernel.acc_bits)} {bt};",
            f"typedef {res_type} {rt};",
            f"typedef {int_type(act_bits)} {dt};",
            f"struct {cfg} : nnet::dense_config {{",
            f"    static const unsigned n_in = {n_in};",
            f"    static const unsigned n_out = {n_out};",
            f"    static const unsigned reuse_factor = {reuse};",
            f"    static const unsigned strategy = nnet::{self.strategy};",
            f"    static const unsigned multiplier_limit = {math.ceil(n_in * n_out / reuse)};",
            f"    static const unsigned block_factor = {math.ceil(n_in * n_out / reuse)};",
            "    typedef ap_int<64> accum_t;",
            f"    typedef {sum_t} sum_t;  // bias + any partial sum",
            f"    typedef {part_t} part_t;  // any sum of `block` products",
            f"    static const unsigned block = {block};",
            f"    typedef {bt} bias_t;",
            f"    typedef {wt} weight_t;",
            "    template <class x_T, class y_T> using product = nnet::product::mult<x_T, y_T>;",
            "    template <class d_T, class r_T, class C_T> using kernel = "
            f"talon::{'DenseResourceExact' if resource else 'DenseExact'}<d_T, r_T, C_T>;",
            "};",
        ]
        # hls4ml's layouts: [n_in][n_out] for Latency, transposed [n_out][n_in] for Resource
        weights = kernel.weight_t.T if resource else kernel.weight_t
        self.array(f"w{tag}", weights.reshape(-1), wt, const=False, bits=kernel.w_bits)
        self.array(f"b{tag}", kernel.bias_q.reshape(-1), bt, const=False, bits=kernel.acc_bits)
        data = self.unmerged_input(op, kernel, int_type(act_bits))
        if data is None:
            m = self.merge(op, kernel, tag)
            data = f"d{tag}"
            self.emit(f"{dt} {data}[{rows * n_in}];")
            self.emit(f"talon::store<talon::wide_t, {dt}, {rows * n_in}>({m}, {data});")
        self.emit(f"v{out}_t v{out}[{rows * n_out}];")
        self.emit(f"for (int row = 0; row < {rows}; row++) {{")
        if kernel.saturating_acc:
            self.emit(f"    {rt} r{tag}[{n_out}];")
            self.emit(f"    nnet::dense<{dt}, {rt}, {cfg}>({data} + row * {n_in}, r{tag}, w{tag}, b{tag});")
            self.emit(f"    talon::store<{rt}, v{out}_t, {n_out}>(r{tag}, v{out} + row * {n_out});")
        else:
            result = f"v{out} + row * {n_out}"
            self.emit(f"    nnet::dense<{dt}, {rt}, {cfg}>({data} + row * {n_in}, {result}, w{tag}, b{tag});")
        self.emit("}")
        spike_input = kernel.input_format.bound <= 1 and not kernel.input_rescaled
        self.layers.append({
            "node": op.path, "kind": "dense", "macs": rows * n_in * n_out, "weights": n_in * n_out,
            "weight_bits": kernel.w_bits, "bias": n_out, "acc_bits": kernel.acc_bits, "input_bits": act_bits,
            "spike_input": bool(spike_input), "fan_in": n_in, "outputs": rows * n_out, "rows": rows,
            "reuse_factor": reuse,
        })  # fmt: skip

    def conv(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        node = op.node
        stride, padding, dilation, groups = kernel.geometry
        wq = kernel.wq
        if kernel.one_d:
            c_in, w = op.in_shape
            h = 1
            c_out, wo = node.output_shape
            ho = 1
            kh, kw = 1, wq.shape[2]
            sh, sw, ph, pw, dh, dw = 1, stride, 0, padding, 1, dilation
        else:
            c_in, h, w = op.in_shape
            c_out, ho, wo = node.output_shape
            kh, kw = wq.shape[2:]
            (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        cfg = f"config{tag}"
        taps = (c_in // groups) * kh * kw
        reuse = self.layer_reuse(taps)
        self.defines += [
            f"typedef {int_type(kernel.w_bits)} w{tag}_t;",
            f"typedef {int_type(kernel.acc_bits)} b{tag}_t;",
            f"struct {cfg} : talon::conv_config {{",
            f"    static const int c_in = {c_in}, h = {h}, w = {w};",
            f"    static const int c_out = {c_out}, ho = {ho}, wo = {wo};",
            f"    static const int kh = {kh}, kw = {kw}, sh = {sh}, sw = {sw};",
            f"    static const int ph = {ph}, pw = {pw}, dh = {dh}, dw = {dw};",
            f"    static const int groups = {groups};",
            f"    static const int acc_bits = {kernel.acc_bits};",
            f"    static const int reuse_factor = {reuse};",
            f"    static const int block_factor = {math.ceil(taps / reuse)};",
            "};",
        ]
        self.array(f"w{tag}", wq.reshape(-1), f"w{tag}_t", bits=kernel.w_bits)
        self.array(f"b{tag}", kernel.bias_q.reshape(-1), f"b{tag}_t", bits=kernel.acc_bits)
        n_out = c_out * ho * wo
        self.emit(f"talon::wide_t a{tag}[{n_out}];")
        conv = "conv2d_resource" if self.strategy == "resource" else "conv2d"
        self.emit(f"talon::{conv}<{cfg}, w{tag}_t, b{tag}_t>({m}, a{tag}, w{tag}, b{tag});")
        self.store(f"a{tag}", op.outputs[0])
        macs = n_out * (c_in // groups) * kh * kw
        self.layers.append({
            "node": op.path, "kind": "conv", "macs": macs, "weights": int(wq.size), "weight_bits": kernel.w_bits,
            "bias": c_out, "acc_bits": kernel.acc_bits, "input_bits": bits_for_bound(kernel.input_format.bound),
            "spike_input": bool(kernel.input_format.bound <= 1 and not kernel.input_rescaled),
            "fan_in": taps, "outputs": n_out, "reuse_factor": reuse,
        })  # fmt: skip

    def pool(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        node = op.node
        c, h, w = op.in_shape
        _, ho, wo = node.output_shape
        n_in = c * h * w
        if kernel.pool_rescale is not None:
            nm, ns = self.multiplier(f"pr{tag}", kernel.pool_rescale, op.in_shape)
            self.emit(f"talon::wide_t s{tag}[{n_in}];")
            self.emit(f"talon::zero<{n_in}>(s{tag});")
            self.emit(f"talon::add_scaled<talon::wide_t, {n_in}, {nm}, {ns}>({m}, pr{tag}_m, pr{tag}_s, s{tag});")
            m = f"s{tag}"
        (kh, kw), (sh, sw), (ph, pw), (dh, dw), _ = kernel.args
        is_max = kernel.kind == "MaxPool2d"
        cfg = f"config{tag}"
        self.defines += [
            f"struct {cfg} : talon::pool_config {{",
            f"    static const int c = {c}, h = {h}, w = {w}, ho = {ho}, wo = {wo};",
            f"    static const int kh = {kh}, kw = {kw}, sh = {sh}, sw = {sw};",
            f"    static const int ph = {ph}, pw = {pw}, dh = {dh}, dw = {dw};",
            f"    static const int op = talon::{'pool_max' if is_max else 'pool_sum'};",
            f"    static const int acc_bits = {kernel.spec.accumulator_bits};",
            "};",
        ]
        n_out = c * ho * wo
        self.emit(f"talon::wide_t a{tag}[{n_out}];")
        self.emit(f"talon::pool2d<{cfg}>({m}, a{tag});")
        self.store(f"a{tag}", op.outputs[0])
        self.layers.append({"node": op.path, "kind": "pool", "outputs": n_out, "window": kh * kw})

    def concat(self, op, kernel, tag):
        out = op.outputs[0]
        out_shape = self.vshape(out)
        axis = kernel.axis
        outer = math.prod(out_shape[:axis])
        total = math.prod(out_shape[axis:])
        n = math.prod(out_shape)
        self.emit(f"talon::wide_t a{tag}[{n}];")
        offset = 0
        for ref in op.inputs:
            chunk = math.prod(self.vshape(ref.value)[axis:])
            t = f"v{ref.value}_t"
            self.emit(f"talon::concat_part<{t}, {outer}, {chunk}, {total}, {offset}>({self.src(ref)}, a{tag});")
            offset += chunk
        self.store(f"a{tag}", out)
        self.layers.append({"node": op.path, "kind": "route", "elements": n})

    def split(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        in_shape = op.in_shape
        axis = kernel.axis
        outer = math.prod(in_shape[:axis])
        total = math.prod(in_shape[axis:])
        offset = 0
        for k, vid in enumerate(op.outputs):
            chunk = math.prod(self.vshape(vid)[axis:])
            n = self.vsize(vid)
            self.emit(f"talon::wide_t a{tag}_{k}[{n}];")
            self.emit(f"talon::split_part<{outer}, {chunk}, {total}, {offset}>({m}, a{tag}_{k});")
            self.store(f"a{tag}_{k}", vid)
            offset += chunk
        self.layers.append({"node": op.path, "kind": "route", "elements": math.prod(in_shape)})

    def scale(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        n = math.prod(op.in_shape)
        ns = self.array(f"sg{tag}", flat_param(kernel.sign, op.in_shape))
        self.emit(f"talon::wide_t a{tag}[{n}];")
        self.emit(f"talon::scale_sign<{n}, {ns}>({m}, sg{tag}, a{tag});")
        self.store(f"a{tag}", op.outputs[0])
        self.layers.append({"node": op.path, "kind": "elementwise", "elements": n})

    def batchnorm(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        n = math.prod(op.in_shape)
        ns = self.array(f"sg{tag}", flat_param(kernel.sign, op.in_shape))
        nb = self.array(f"bn{tag}", flat_param(kernel.bias, op.in_shape))
        self.emit(f"talon::wide_t a{tag}[{n}];")
        acc = kernel.spec.accumulator_bits
        self.emit(f"talon::batchnorm<{n}, {ns}, {nb}, {acc}>({m}, sg{tag}, bn{tag}, a{tag});")
        self.store(f"a{tag}", op.outputs[0])
        self.layers.append({"node": op.path, "kind": "elementwise", "elements": n, "multipliers": n})

    def relu(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        n = math.prod(op.in_shape)
        self.emit(f"talon::wide_t a{tag}[{n}];")
        if kernel.slope is None:
            self.emit(f"talon::relu<{n}>({m}, a{tag});")
        else:
            nm, ns = self.multiplier(f"sl{tag}", kernel.slope, op.in_shape)
            self.emit(f"talon::leaky_relu<{n}, {nm}, {ns}>({m}, sl{tag}_m, sl{tag}_s, a{tag});")
        self.store(f"a{tag}", op.outputs[0])
        self.layers.append({"node": op.path, "kind": "elementwise", "elements": n})

    def threshold(self, op, kernel, tag):
        m = self.merge(op, kernel, tag)
        n = math.prod(op.in_shape)
        nt = self.array(f"th{tag}", flat_param(kernel.theta, op.in_shape), "double")
        self.emit(f"talon::wide_t a{tag}[{n}];")
        self.emit(f"talon::threshold<{n}, {nt}, {'true' if kernel.ge else 'false'}>({m}, th{tag}, a{tag});")
        self.store(f"a{tag}", op.outputs[0])
        self.layers.append({"node": op.path, "kind": "elementwise", "elements": n})

    def neuron(self, op, kernel, tag):
        shape = kernel.shape
        n = math.prod(shape)
        node = op.node
        drive = f"dr{tag}"
        self.emit(f"talon::wide_t {drive}[{n}];")
        self.emit(f"talon::zero<{n}>({drive});")
        for k, ref in enumerate(op.inputs):
            ng = self.array(f"g{tag}_e{k}", flat_param(kernel.edge_gains[k], shape))
            t = f"v{ref.value}_t"
            self.emit(f"talon::drive_add<{t}, {n}, {ng}>({self.src(ref)}, g{tag}_e{k}, {drive});")
        zero = np.zeros(1, np.int64)
        counts = {
            "n_b": self.array(f"B{tag}", flat_param(kernel.B, shape)),
            "n_c": self.array(f"C{tag}", flat_param(kernel.C, shape)),
            "n_a": self.array(f"A{tag}", flat_param(kernel.A, shape) if kernel.cuba else zero),
            "n_g": self.array(f"G{tag}", flat_param(kernel.G, shape) if kernel.cuba else zero),
            "n_theta": self.array(f"TH{tag}", flat_param(kernel.theta, shape) if kernel.spiking else zero),
            "n_reset": self.array(f"VR{tag}", flat_param(kernel.v_reset, shape) if kernel.spiking else zero),
        }
        mode = {"value": "reset_value", "subtract": "reset_subtract", "none": "reset_none"}
        timing = {
            "immediate": "timing_immediate", "delayed": "timing_delayed",
            "delayed_pre_decay": "timing_delayed_pre_decay", "snntorch_immediate": "timing_snntorch_immediate",
        }  # fmt: skip
        cfg = f"config{tag}"
        lines = [
            f"struct {cfg} : talon::neuron_config {{",
            f"    static const int n = {n};",
            f"    static const int state_bits = {kernel.bits};",
            f"    static const int frac = {kernel.frac};",
            f"    static const bool cuba = {'true' if kernel.cuba else 'false'};",
            f"    static const bool spiking = {'true' if kernel.spiking else 'false'};",
        ]
        if kernel.spiking:
            lines += [
                f"    static const bool ge = {'true' if kernel.ge else 'false'};",
                f"    static const bool post = {'true' if kernel.post else 'false'};",
                f"    static const int mode = talon::{mode[kernel.mode]};",
                f"    static const int timing = talon::{timing[kernel.timing]};",
            ]
        lines.append("    static const int " + ", ".join(f"{k} = {v}" for k, v in counts.items()) + ";")
        mults = (4 if kernel.cuba else 2) if not isinstance(node, (ir.IF, ir.Integrator)) else 1
        reuse = self.layer_reuse(n * mults)
        lines.append(f"    static const int reuse_factor = {reuse};")
        lines.append(f"    static const int multiplier_limit = {math.ceil(n * mults / reuse)};")
        lines.append("};")
        self.defines += lines
        self.defines.append(f"typedef {int_type(kernel.bits)} st{tag}_t;")
        self.statics.append(f"static st{tag}_t sv{tag}[{n}];")
        v_init = getattr(kernel, "v_init", None) if kernel.spiking else None
        if v_init is None:
            self.resets.append(f"talon::clear<st{tag}_t, {n}>(sv{tag});")
        else:  # the membrane starts at v_init (docs/semantics.md), in integers sat(rint(v_init / s_v))
            nvi = self.array(f"VI{tag}", flat_param(v_init, shape))
            self.resets.append(f"for (int k = 0; k < {n}; k++) sv{tag}[k] = VI{tag}[talon::at<{nvi}>(k)];")
        if kernel.cuba:
            self.statics.append(f"static st{tag}_t si{tag}[{n}];")
            self.resets.append(f"talon::clear<st{tag}_t, {n}>(si{tag});")
        isyn = f"si{tag}" if kernel.cuba else f"sv{tag}"
        for var in ("v", "i") if kernel.cuba else ("v",):
            array = f"s{var}{tag}"
            self.state_arrays.append(Probe(("state", op.path, var), f"{op.path}.{var}", shape, array, f"st{tag}_t"))
        out = op.outputs[0]
        self.emit(f"v{out}_t v{out}[{n}];")
        params = ", ".join(f"{p}{tag}" for p in ("B", "C", "A", "G", "TH", "VR"))
        self.emit(f"talon::neuron_step<{cfg}>({drive}, sv{tag}, {isyn}, v{out}, {params});")
        self.layers.append({
            "node": op.path, "kind": "neuron", "neurons": n, "state_bits": kernel.bits,
            "state_vars": 2 if kernel.cuba else 1, "multipliers": n * mults, "edges": len(op.inputs),
            "reuse_factor": reuse,
        })  # fmt: skip

    def delay(self, op, kernel, tag):
        m = self.merge(op, kernel._merger, tag)
        n = math.prod(kernel.shape)
        out = op.outputs[0]
        nd = self.array(f"dl{tag}", flat_param(kernel.delay, kernel.shape), "int")
        cfg = f"config{tag}"
        self.defines += [
            f"struct {cfg} : talon::delay_config {{",
            f"    static const int n = {n}, length = {kernel.length}, n_delay = {nd};",
            "};",
        ]
        self.statics.append(f"static v{out}_t db{tag}[{kernel.length * n}];")
        self.statics.append(f"static int ds{tag};")
        self.resets.append(f"talon::clear<v{out}_t, {kernel.length * n}>(db{tag});")
        self.resets.append(f"ds{tag} = 0;")
        self.emit(f"talon::wide_t a{tag}[{n}];")
        self.emit(f"talon::delay_step<{cfg}, v{out}_t>({m}, a{tag}, db{tag}, ds{tag}, dl{tag});")
        self.store(f"a{tag}", out)
        self.layers.append({"node": op.path, "kind": "delay", "elements": n, "length": kernel.length})


STRATEGIES = ("latency", "resource")  # hls4ml's nnet::strategy values talon generates


SIMULATION_ONLY_WEIGHTS = (
    "// not written: this project was generated for C simulation only, which loads the values from\n"
    "// weights/*.bin; get_backend('fpga').compile(...) writes them here for synthesis"
)


def _initialised(arrays) -> list[str]:
    """The C initialisers of ``weights.h`` (for synthesis)."""
    lines = []
    for decl, values, is_double in arrays:
        if is_double:
            body = ", ".join(_cdouble(v) for v in values)
        else:
            body = ", ".join(map(str, np.asarray(values, np.int64).tolist()))  # exact: int64 -> Python int
        lines.append(f"{decl} = {{{body}}};")
    return lines


def generate(
    plan: FixedPlan,
    project_name: str,
    *,
    reuse_factor: int = 1,
    strategy: str = "latency",
    probe_all: bool = False,
    synthesis_weights: bool = True,
) -> GeneratedProject:
    """The C++ sources of the HLS project for ``plan`` (not yet on disk). ``strategy`` is
    ``"latency"`` or ``"resource"`` (hls4ml's: which dense kernel, where weights are stored) and
    ``reuse_factor`` the multiply rounds per weight-layer evaluation. ``synthesis_weights=False``
    leaves the values out of ``weights.h`` (only synthesis reads them; the C simulation loads
    ``binaries``): printing a large layer's weights as text is most of the generation time."""
    from .templates import render

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(reuse_factor, bool) or not isinstance(reuse_factor, int) or reuse_factor < 1:
        raise ValueError(f"reuse_factor must be an integer >= 1, got {reuse_factor!r}")

    w = _Writer(plan, project_name, reuse_factor, strategy, probe_all)
    program = plan.program
    order = [i for component in program.components for i in component.ops]
    for i in order:
        w.op(program.ops[i])
    # ports
    inputs = []
    for name, vid in program.inputs.items():
        kernel = plan.kernels[program.values[vid].producer]
        inputs.append(
            InputPort(name, vid, program.values[vid].shape, float(kernel.scale), int(kernel.top), f"v{vid}_t")
        )
    probe_ids: list[int] = []
    if probe_all:
        for op in program.ops:
            if not op.graph_output:
                probe_ids += op.outputs
    else:
        for path in plan.spiking_paths():
            probe_ids += program.op(path).outputs
        for op in program.ops:
            if op.graph_output:
                probe_ids += [ref.value for ref in op.inputs]
    probe_ids = list(dict.fromkeys(probe_ids))
    probes = [
        Probe(vid, program.values[vid].name, program.values[vid].shape, f"v{vid}", f"v{vid}_t") for vid in probe_ids
    ]
    if probe_all:
        probes += w.state_arrays
    delayed = sorted({ref.value for op in program.ops for ref in op.inputs if ref.delayed})
    for vid in delayed:
        n = w.vsize(vid)
        w.statics.append(f"static v{vid}_t p{vid}[{n}];")
        w.resets.append(f"talon::clear<v{vid}_t, {n}>(p{vid});")
    tail = [f"    talon::store<v{vid}_t, v{vid}_t, {w.vsize(vid)}>(v{vid}, p{vid});" for vid in delayed]
    tail += [f"    talon::store<{p.ctype}, {p.ctype}, {p.size}>({p.source}, probe{k});" for k, p in enumerate(probes)]
    ports = [f"v{p.value}_t v{p.value}[{p.size}]" for p in inputs]
    ports += [f"{p.ctype} probe{k}[{p.size}]" for k, p in enumerate(probes)]
    ports.append("bool reset")
    ctx = {
        "project": project_name,
        "ports": ",\n    ".join(ports),
        "defines": "\n".join(w.defines),
        "parameters": "\n".join(w.params),
        "weights": "\n".join(_initialised(w.weights)) if synthesis_weights else SIMULATION_ONLY_WEIGHTS,
        "loads": "\n    ".join(w.loads) or "(void)dir;",
        "statics": "\n".join(w.statics),
        "resets": "\n        ".join(w.resets) or "// no state",
        "body": "\n".join(w.body + tail),
        "n_inputs": len(inputs),
        "n_probes": len(probes),
        "input_buffers": "\n    ".join(
            f"static double x{k}[{p.size}];\n    static v{p.value}_t q{k}[{p.size}];" for k, p in enumerate(inputs)
        ),
        "probe_buffers": "\n    ".join(f"static {p.ctype} probe{k}[{p.size}];" for k, p in enumerate(probes)),
        "read_inputs": "\n            ".join(
            f'if (!talon::read_values<{p.size}>(fin, value_bytes, x{k})) return fail("short input file");\n'
            f"            talon::quantize_input<v{p.value}_t, {p.size}>(x{k}, q{k}, {_cdouble(p.scale)}, {p.top}LL);"
            for k, p in enumerate(inputs)
        ),
        "call_args": ", ".join([f"q{k}" for k in range(len(inputs))] + [f"probe{k}" for k in range(len(probes))]),
        "write_probes": "\n            ".join(
            f"write_probe<{p.ctype}, {p.size}>(probe{k}, fout);" for k, p in enumerate(probes)
        ),
    }
    files = {
        f"firmware/{project_name}.h": render("top.h", ctx),
        f"firmware/{project_name}.cpp": render("top.cpp", ctx),
        "firmware/defines.h": render("defines.h", ctx),
        "firmware/parameters.h": render("parameters.h", ctx),
        "firmware/weights.h": render("weights.h", ctx),
        f"{project_name}_test.cpp": render("testbench.cpp", ctx),
    }
    return GeneratedProject(project_name, files, w.binaries, inputs, probes, w.layers)
