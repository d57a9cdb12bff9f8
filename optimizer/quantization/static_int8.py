"""Static INT8 post-training quantization in QDQ form, placed the way the target runtime fuses it.

Planning (`plan_static_int8`) decides, before any calibration, which nodes run in int8 and which tensors need
an activation range; the pass (`QuantizeStaticInt8`) then inserts QuantizeLinear/DequantizeLinear pairs with the
calibrated ranges and replaces each compute op's weight by int8 + DequantizeLinear (per output channel).

Placement rules (see schemes.py for the per-runtime choices):
- "fused" (ONNX Runtime, TFLite): QDQ around every op the runtime has an int8 kernel for, so a chain of them
  runs in integers. Non-compute int8 ops (Add, Sigmoid, Concat...) are kept only when they touch another int8
  node: an isolated one would run as DQ -> float op -> Q, slower than leaving it float. Relu/Clip are folded
  into the quantize after them (the range starts at their clip point), so no QDQ sits between an op and its
  activation. Tensors that ops like MaxPool, Reshape or Concat only move share one scale across the op, so the
  runtime copies bytes instead of requantizing.
- "inputs" (TensorRT, OpenVINO): QDQ only on the activation input of each compute op; those compilers fuse the
  rest and propagate scales themselves.
Graph outputs are never quantized, and nothing inside If/Loop/Scan bodies is (ranges are collected on the main
graph); the report lists those nodes as float with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.ir import all_nodes, is_standard_op
from optimizer.passes.base import OptimizerPass, PassConfig
from optimizer.quantization.schemes import (
    COMPUTE_OPS,
    FOLDED_ACTIVATIONS,
    ORT_X86,
    SHARED_SCALE_OPS,
    Int8Scheme,
)
from optimizer.quantization.selection import is_excluded, label_of
from optimizer.quantization.weights import (
    add_initializer,
    constant_array,
    quantize_bias_int32,
    quantize_symmetric_int8,
    symmetric_int8_scales,
)

Range = tuple[float, float]


@dataclass
class StaticInt8Plan:
    nodes: list[ir.Node]
    """Nodes that will run in int8, in graph order."""
    activations: list[str]
    """Tensors that get a QDQ pair, hence need a calibrated range."""
    shared_groups: list[list[str]]
    """Tensors that must share one scale (union of their ranges)."""
    float_reasons: dict[str, str] = field(default_factory=dict)
    """Compute nodes that stay float, with the reason."""


def _is_float(value: ir.Value | None) -> bool:
    """Float32, or of unknown type: calibration only returns ranges for float tensors, so an unknown one that
    turns out to be an integer simply gets no QDQ."""
    return value is not None and value.dtype in (ir.DataType.FLOAT, None)


def _weight_axis(node: ir.Node, weight: np.ndarray) -> int | None:
    """The output-channel axis of a compute op's weight, or None when the op cannot take this weight."""
    if node.op_type == "Conv":
        return 0 if weight.ndim >= 3 else None
    if node.op_type == "MatMul":
        return 1 if weight.ndim == 2 else None
    if node.op_type == "Gemm":
        if weight.ndim != 2 or node.attributes.get_int("transA", 0):
            return None
        return 0 if node.attributes.get_int("transB", 0) else 1
    return None


def _reduction_depth(node: ir.Node, weight: np.ndarray) -> int:
    """How many products each output sums: input channels per group x kernel size for a Conv, K otherwise."""
    if node.op_type == "Conv":
        return int(np.prod(weight.shape[1:]))
    if node.op_type == "Gemm" and node.attributes.get_int("transB", 0):
        return weight.shape[1]
    return weight.shape[0]


def _compute_float_reason(node: ir.Node, scheme: Int8Scheme) -> str | None:
    """Why a Conv/MatMul/Gemm cannot (or should not) run in int8 under `scheme`, or None when it can."""
    weight = constant_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if weight is None or weight.dtype != np.float32 or _weight_axis(node, weight) is None:
        return "weight is not a constant float32 tensor this op can quantize"
    if not _is_float(node.inputs[0]):
        return "input is not float32"
    depth = _reduction_depth(node, weight)
    if depth < scheme.min_reduction_depth:
        return f"sums over {depth} inputs per output: int8 is slower than float below {scheme.min_reduction_depth} " \
               f"on {scheme.name}"
    return None


# A constant factor quantized with one scale may move each element by up to this much of its own value: beyond,
# the Mul stays float (SmoothQuant's per-channel factors span 2-200, which one uint8 scale turns into 14% errors).
MAX_FACTOR_ERROR = 0.02


def _constants_fit_one_scale(node: ir.Node, scheme: Int8Scheme) -> bool:
    """Whether every constant float operand of `node` survives quantization to one activation scale (as
    QuantizeStaticInt8 quantizes it) within MAX_FACTOR_ERROR of each element."""
    for value in node.inputs:
        array = constant_array(value)
        if array is None or array.dtype != np.float32 or array.size <= 1:
            continue
        quantized, scale, zero_point = quantize_to_one_scale(array, scheme)
        restored = (quantized.astype(np.float32) - float(zero_point)) * scale
        nonzero = array != 0
        relative = np.abs(restored[nonzero] - array[nonzero]) / np.abs(array[nonzero])
        if relative.size and relative.max() > MAX_FACTOR_ERROR:
            return False
    return True


def quantize_to_one_scale(array: np.ndarray, scheme: Int8Scheme) -> tuple[np.ndarray, np.float32, np.integer]:
    """A constant activation operand (an Add's bias, a Mul's factor) in the scheme's activation type, with the
    scale and zero point of its own range."""
    scale, zero_point = activation_params(float(array.min()), float(array.max()), scheme.activation_dtype,
                                          scheme.symmetric_activations)
    info = np.iinfo(scheme.activation_dtype)
    quantized = np.clip(np.rint(array / scale) + int(zero_point), info.min, info.max)
    return quantized.astype(scheme.activation_dtype), scale, zero_point


def plan_static_int8(model: ir.Model, scheme: Int8Scheme = ORT_X86, exclude: Sequence[str] = (),
                     share_concat_scales: bool = True) -> StaticInt8Plan:
    graph = model.graph
    float_reasons: dict[str, str] = {}
    chosen: set[ir.Node] = set()
    quantizable: set[ir.Node] = set()  # compute nodes the scheme runs in int8, excluded by the user or not
    for node in graph:
        if not is_standard_op(node) or node.op_type not in scheme.int8_ops:
            continue
        if node.op_type in COMPUTE_OPS:
            reason = _compute_float_reason(node, scheme)
            if reason is not None:
                float_reasons[label_of(node)] = reason
                continue
            quantizable.add(node)
        elif scheme.placement == "inputs" or not any(
                _is_float(v) and constant_array(v) is None for v in node.inputs):
            continue
        elif node.op_type == "Mul" and not _constants_fit_one_scale(node, scheme):
            continue
        if is_excluded(node, exclude):
            float_reasons[label_of(node)] = "excluded"
            continue
        chosen.add(node)
    _drop_output_tail(graph, chosen, quantizable, float_reasons)
    _keep_float_after_float_layers(graph, chosen)
    for node in all_nodes(model):
        if node.graph is not graph and node.op_type in COMPUTE_OPS:
            float_reasons[label_of(node)] = "inside a control-flow subgraph"
    if scheme.placement == "fused":
        _drop_isolated(graph, chosen)
    activations = _activation_tensors(graph, chosen, scheme)
    groups = _shared_groups(chosen, set(activations), share_concat_scales) if scheme.placement == "fused" else []
    ordered = [node for node in graph if node in chosen]
    return StaticInt8Plan(ordered, activations, groups, float_reasons)


def _drop_output_tail(graph: ir.Graph, chosen: set[ir.Node], quantizable: set[ir.Node],
                      float_reasons: dict[str, str]) -> None:
    """Keep float what follows the last compute layers: post-processing (box decoding, score sigmoids) and the
    final compute layers themselves. They cost little, and quantizing them puts the int8 step size straight
    into the outputs (a uint8 box coordinate over a 320-pixel image moves by 1.25 pixels).

    A layer is final when no `quantizable` compute layer is downstream: a float one there (YOLOv8's DFL
    convolution, 16 inputs per output) is post-processing too. Layers the user excluded still count as int8
    downstream, so excluding one never turns the layers before it float."""
    feeding_any_compute = _feeding(graph, quantizable)
    for node in list(chosen):
        if node in quantizable and node not in feeding_any_compute:
            chosen.discard(node)
            float_reasons[label_of(node)] = "final layer before the outputs"
    int8_compute = {node for node in chosen if node.op_type in COMPUTE_OPS}
    feeding = _feeding(graph, int8_compute)
    for node in list(chosen):
        if node not in int8_compute and node not in feeding:
            chosen.discard(node)


def _keep_float_after_float_layers(graph: ir.Graph, chosen: set[ir.Node]) -> None:
    """Ops that read only float layers' outputs (the activation after a layer kept float) stay float too, so
    the tensor is quantized once, after them: the runtime runs them on the float output it already has (ORT
    fuses SiLU into one QuickGelu there) instead of quantizing, running two int8 ops and requantizing. On
    yolov8n's float stem (the SiLU of a [1, 16, 160, 160] tensor) one A/B measured the whole INT8 model 2%
    faster, others within noise; the output cosine rose from 0.99975 to 0.99984."""
    floating = {node for node in graph if node.op_type in COMPUTE_OPS and node not in chosen}
    for node in graph:
        if node in chosen and node.op_type not in COMPUTE_OPS:
            computed = [v for v in node.inputs if _is_float(v) and constant_array(v) is None]
            if computed and all(v.producer() in floating for v in computed):
                chosen.discard(node)
                floating.add(node)


def _feeding(graph: ir.Graph, targets: set[ir.Node]) -> set[ir.Node]:
    """Nodes with one of `targets` somewhere downstream."""
    feeding: set[ir.Node] = set()
    for node in reversed(list(graph)):
        if any(use.node in targets or use.node in feeding for value in node.outputs for use in value.uses()):
            feeding.add(node)
    return feeding


def _neighbors(node: ir.Node) -> list[ir.Node]:
    producers = [v.producer() for v in node.inputs if v is not None and v.producer() is not None]
    consumers = [use.node for out in node.outputs for use in out.uses()]
    return producers + consumers


def _drop_isolated(graph: ir.Graph, chosen: set[ir.Node]) -> None:
    """Remove non-compute nodes that touch no other int8 node, or that only feed graph outputs, until stable."""
    graph_outputs = set(graph.outputs)
    changed = True
    while changed:
        changed = False
        for node in list(chosen):
            if node.op_type in COMPUTE_OPS:
                continue
            only_outputs = all(out in graph_outputs and not list(out.uses()) for out in node.outputs)
            if only_outputs or not any(other in chosen for other in _neighbors(node)):
                chosen.discard(node)
                changed = True


def _activation_tensors(graph: ir.Graph, chosen: set[ir.Node], scheme: Int8Scheme) -> list[str]:
    graph_outputs = set(graph.outputs)
    wanted: dict[str, None] = {}
    for node in graph:
        if node not in chosen:
            continue
        if scheme.placement == "inputs":
            if _is_float(node.inputs[0]):
                wanted[node.inputs[0].name] = None
            continue
        inputs = node.inputs[:1] if node.op_type in COMPUTE_OPS else node.inputs
        for value in inputs:
            if _is_float(value) and constant_array(value) is None and not _folds_into_activation(value, chosen):
                wanted[value.name] = None
        for value in node.outputs:
            if (_is_float(value) and value not in graph_outputs and list(value.uses())
                    and not _folds_into_activation(value, chosen)):
                wanted[value.name] = None
    return list(wanted)


def _folds_into_activation(value: ir.Value, chosen: set[ir.Node]) -> bool:
    """A tensor between an int8 op and the Relu/Clip that is its only reader: the QDQ goes after the Relu."""
    uses = list(value.uses())
    producer = value.producer()
    return (producer is not None and producer in chosen and len(uses) == 1
            and uses[0].node in chosen and uses[0].node.op_type in FOLDED_ACTIVATIONS)


def _is_folded_activation_output(value: ir.Value) -> bool:
    producer = value.producer()
    return producer is not None and producer.op_type in FOLDED_ACTIVATIONS


def _shared_groups(chosen: set[ir.Node], quantized: set[str], share_concat: bool) -> list[list[str]]:
    parent = {name: name for name in quantized}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for node in chosen:
        if node.op_type not in SHARED_SCALE_OPS or (node.op_type == "Concat" and not share_concat):
            continue
        data_inputs = node.inputs if node.op_type == "Concat" else node.inputs[:1]
        # A Relu/Clip output keeps its own range starting at the clip point: that is what lets the runtime drop
        # the activation into the quantize (ORT's ReluQuantFusion needs the zero point at the type's minimum).
        names = [v.name for v in list(data_inputs) + list(node.outputs)
                 if v is not None and v.name in quantized and not _is_folded_activation_output(v)]
        for other in names[1:]:
            parent[find(other)] = find(names[0])
    groups: dict[str, list[str]] = {}
    for name in quantized:
        groups.setdefault(find(name), []).append(name)
    return [members for members in groups.values() if len(members) > 1]


def activation_params(lo: float, hi: float, dtype: type[np.integer], symmetric: bool) -> tuple[np.float32, np.integer]:
    """Scale and zero point for a range; the range always includes 0 so that padding and ReLU zeros are exact."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    info = np.iinfo(dtype)
    if symmetric:
        peak = max(abs(lo), abs(hi))
        scale = peak / 127.0 if peak > 0 else 1.0
        return np.float32(scale), dtype(0)
    scale = (hi - lo) / float(info.max - info.min) if hi > lo else 1.0
    zero_point = int(np.clip(round(info.min - lo / scale), info.min, info.max))
    return np.float32(scale), dtype(zero_point)


@dataclass(frozen=True)
class StaticInt8Config(PassConfig):
    ranges: Mapping[str, Range] = field(default_factory=dict)
    """Calibrated [lo, hi] per activation tensor (from calibration); tensors without a range stay float."""
    scheme: Int8Scheme = ORT_X86
    exclude: tuple[str, ...] = ()
    share_concat_scales: bool = True


class QuantizeStaticInt8(OptimizerPass):
    name = "static-int8"
    summary = "insert QDQ with calibrated ranges and int8 per-channel weights, placed for the target runtime"
    config_type = StaticInt8Config

    def __init__(self, config: StaticInt8Config | None = None) -> None:
        super().__init__(config)
        self.precisions: dict[str, str] = {}

    def rewrite(self, model: ir.Model) -> int:
        config = self.config
        plan = plan_static_int8(model, config.scheme, config.exclude, config.share_concat_scales)
        ranges = _merged_ranges(plan, config.ranges)
        graph = model.graph
        quantized_values: dict[str, ir.Value] = {}  # tensor name -> its dequantized replacement
        scales: dict[str, np.float32] = {}
        values = {v.name: v for node in graph for v in list(node.outputs)} | {v.name: v for v in graph.inputs}
        # Read before the QDQ insertion renames what the compute ops consume.
        compute_inputs = {node: node.inputs[0].name for node in plan.nodes
                          if node.op_type in COMPUTE_OPS and node.inputs[0] is not None}
        for name in plan.activations:
            if name not in ranges or name not in values:
                continue
            scale, zero_point = activation_params(*ranges[name], config.scheme.activation_dtype,
                                                  config.scheme.symmetric_activations)
            quantized_values[name] = self._insert_qdq(graph, values[name], scale, zero_point)
            scales[name] = scale
        int8_compute: set[ir.Node] = set()
        for node in plan.nodes:
            if node.op_type in COMPUTE_OPS:
                source = compute_inputs.get(node)
                if source not in scales:
                    self.precisions[label_of(node)] = "float32 (input has no calibrated range)"
                    continue
                self._quantize_weights(graph, node, scales[source])
                self.precisions[label_of(node)] = "int8 (per-channel weights)"
                int8_compute.add(node)
            elif config.scheme.placement == "fused" and node.op_type in ("Add", "Mul"):
                self._quantize_constant_operands(graph, node)
        dequantized = {quantized_values[name]: values[name] for name in quantized_values}
        _keep_float_layers_out_of_ort_weight_quantization(graph, int8_compute, dequantized)
        for name, reason in plan.float_reasons.items():
            self.precisions.setdefault(name, f"float32 ({reason})")
        return len(quantized_values)

    def _insert_qdq(self, graph: ir.Graph, value: ir.Value, scale: np.float32, zero_point: np.integer) -> ir.Value:
        scale_value = add_initializer(graph, f"{value.name}_scale", np.asarray(scale, np.float32))
        zero_value = add_initializer(graph, f"{value.name}_zero_point", np.asarray(zero_point))
        quantize = ir.node("QuantizeLinear", [value, scale_value, zero_value], name=f"{value.name}_QuantizeLinear")
        dequantize = ir.node("DequantizeLinear", [quantize.outputs[0], scale_value, zero_value],
                             name=f"{value.name}_DequantizeLinear")
        quantize.outputs[0].name = f"{value.name}_quantized"
        dequantize.outputs[0].name = f"{value.name}_dequantized"
        dequantize.outputs[0].dtype = ir.DataType.FLOAT
        dequantize.outputs[0].shape = value.shape
        producer = value.producer()
        if producer is None:
            graph.insert_before(next(iter(graph)), [quantize, dequantize])
        else:
            graph.insert_after(producer, [quantize, dequantize])
        for use in list(value.uses()):
            if use.node is not quantize:
                use.node.replace_input_with(use.idx, dequantize.outputs[0])
        return dequantize.outputs[0]

    def _quantize_weights(self, graph: ir.Graph, node: ir.Node, input_scale: np.float32) -> None:
        weight = constant_array(node.inputs[1])
        axis = _weight_axis(node, weight)
        per_channel = self.config.scheme.per_channel_weights
        scales = symmetric_int8_scales(weight, axis if per_channel else None)
        quantized = quantize_symmetric_int8(weight, scales, axis if per_channel else None)
        base = label_of(node)
        node.replace_input_with(1, self._dequantized_constant(
            graph, f"{base}_weight", quantized, scales, np.zeros_like(scales, dtype=np.int8), axis, per_channel))
        bias_index = 2
        bias = constant_array(node.inputs[bias_index]) if len(node.inputs) > bias_index else None
        # ORT's QLinearConv/QGemm fusion wants the bias in int32 at input x weight scale; the "inputs" placement
        # runtimes take a float bias.
        if bias is not None and self.config.scheme.placement == "fused" and bias.ndim == 1:
            bias_scales = (np.float32(input_scale) * scales).astype(np.float32)
            if not per_channel or bias_scales.size == 1:
                bias_scales = np.full(bias.shape, bias_scales.reshape(-1)[0], np.float32)
            if bias_scales.size == bias.size:
                node.replace_input_with(bias_index, self._dequantized_constant(
                    graph, f"{base}_bias", quantize_bias_int32(bias, bias_scales), bias_scales,
                    np.zeros(bias.shape, np.int32), 0, True))

    def _quantize_constant_operands(self, graph: ir.Graph, node: ir.Node) -> None:
        scheme = self.config.scheme
        for index, value in enumerate(node.inputs):
            array = constant_array(value)
            if array is None or array.dtype != np.float32:
                continue
            quantized, scale, zero_point = quantize_to_one_scale(array, scheme)
            node.replace_input_with(index, self._dequantized_constant(
                graph, f"{label_of(node)}_operand{index}", quantized,
                np.asarray(scale, np.float32), np.asarray(zero_point), None, False))

    @staticmethod
    def _dequantized_constant(graph: ir.Graph, name: str, quantized: np.ndarray, scales: np.ndarray,
                              zero_points: np.ndarray, axis: int | None, per_channel: bool) -> ir.Value:
        data = add_initializer(graph, f"{name}_quantized", quantized)
        if not per_channel or scales.size == 1:
            scales, zero_points, axis = scales.reshape(()), zero_points.reshape(-1)[:1].reshape(()), None
        scale_value = add_initializer(graph, f"{name}_scale", scales.astype(np.float32))
        zero_value = add_initializer(graph, f"{name}_zero_point", zero_points)
        attributes = {"axis": axis} if axis is not None else {}
        dequantize = ir.node("DequantizeLinear", [data, scale_value, zero_value], attributes,
                             name=f"{name}_DequantizeLinear")
        dequantize.outputs[0].name = f"{name}_dequantized"
        dequantize.outputs[0].dtype = ir.DataType.FLOAT
        dequantize.outputs[0].shape = ir.Shape(quantized.shape)
        graph.insert_before(next(iter(graph)), dequantize)
        return dequantize.outputs[0]


# The ops whose float weights ONNX Runtime quantizes itself (per tensor, its WeightBiasQuantization transformer,
# at the basic optimization level) when they read a DequantizeLinear and lead, through Relu/Clip only, to a
# QuantizeLinear; and the ops its QDQPropagationTransformer moves DequantizeLinear and QuantizeLinear across.
ORT_WEIGHT_QUANTIZED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm"})
ORT_QDQ_PROPAGATING_OPS = frozenset({"MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice"})


def _keep_float_layers_out_of_ort_weight_quantization(
    graph: ir.Graph, int8_compute: set[ir.Node], dequantized: Mapping[ir.Value, ir.Value]
) -> None:
    """Make a Conv/Gemm that stays float read float tensors, so that ONNX Runtime does not quantize it.

    Between a DequantizeLinear and a QuantizeLinear, a float Conv/Gemm looks to ONNX Runtime like a QDQ unit
    whose weights were left out: it quantizes them per tensor to fuse the node, so an excluded layer (or one
    the accuracy budget keeps float) would run in int8 anyway, with coarser weights than ours. Its input, and
    the ops before it that ONNX Runtime moves a DequantizeLinear across, read the float tensors instead.
    `dequantized` maps each inserted DequantizeLinear output to the float tensor it replaced."""
    for node in list(graph):
        if (node.op_type not in ORT_WEIGHT_QUANTIZED_OPS or node in int8_compute or not is_standard_op(node)
                or len(node.inputs) < 2 or constant_array(node.inputs[1]) is None or not _leads_to_quantize(node)):
            continue
        reader = node
        while reader.inputs and reader.inputs[0] is not None:
            value = reader.inputs[0]
            if value in dequantized:
                reader.replace_input_with(0, dequantized[value])
                _remove_unused_qdq(graph, value)
                value = dequantized[value]
            producer = value.producer()
            if producer is None or producer.op_type not in ORT_QDQ_PROPAGATING_OPS:
                break
            reader = producer


def _leads_to_quantize(node: ir.Node) -> bool:
    """Whether `node`'s output flows without branching through Relu/Clip, then ops ONNX Runtime moves a
    QuantizeLinear back across, into a QuantizeLinear."""
    current, passable = node, FOLDED_ACTIVATIONS
    while len(current.outputs) == 1 and not current.outputs[0].is_graph_output():
        uses = list(current.outputs[0].uses())
        if len(uses) != 1:
            return False
        current = uses[0].node
        if current.op_type == "QuantizeLinear":
            return True
        if current.op_type in ORT_QDQ_PROPAGATING_OPS:
            passable = ORT_QDQ_PROPAGATING_OPS
        elif current.op_type not in passable:
            return False
    return False


def _remove_unused_qdq(graph: ir.Graph, dequantized: ir.Value) -> None:
    if list(dequantized.uses()) or dequantized.is_graph_output():
        return
    dequantize = dequantized.producer()
    quantize = dequantize.inputs[0].producer()
    graph.remove(dequantize, safe=True)
    if not list(quantize.outputs[0].uses()):
        graph.remove(quantize, safe=True)


def _merged_ranges(plan: StaticInt8Plan, ranges: Mapping[str, Range]) -> dict[str, Range]:
    merged = dict(ranges)
    for group in plan.shared_groups:
        known = [ranges[name] for name in group if name in ranges]
        if not known:
            continue
        union = (min(lo for lo, _ in known), max(hi for _, hi in known))
        for name in group:
            merged[name] = union
    return merged
