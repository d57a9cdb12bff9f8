"""Full-integer INT8: activations int8 with calibrated scales, weights int8 per channel, biases int32.

What TFLite's converter writes for post-training full-integer quantization, from a float TFLiteGraph and the
activation ranges of the ONNX model it came from (`calibration.activation_ranges`):
- every activation an int8 op reads or writes is INT8, asymmetric: scale and zero point from its range, which
  is widened to include 0 so that zero padding stays exact;
- weights are INT8, symmetric per output channel (zero point 0, [-127, 127], `quantizedDimension` on the
  channel axis: 0 for CONV_2D/FULLY_CONNECTED/TRANSPOSE_CONV, 3 for DEPTHWISE_CONV_2D); biases INT32 with scale
  input scale x weight scale per channel; float constants of other int8 ops (a scalar to add, a clip bound)
  are quantized per tensor;
- TFLite's kernels constrain some scales: LOGISTIC and SOFTMAX write 1/256 with zero point -128, TANH 1/128
  with 0; ops that move bytes or compare them (MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, TRANSPOSE, STRIDED_SLICE,
  SPLIT, SPLIT_V, PAD, PADV2, RESIZE_*, CONCATENATION, GATHER, MAXIMUM, MINIMUM, REDUCE_MAX) need the same scale
  in and out. Those tensors are grouped and the group gets one scale from the union of their ranges; where a
  group cannot take a tensor (a fixed 1/256 scale against a wider range), a QUANTIZE int8 -> int8 requantizes
  it instead. ADD, SUB, MUL, the convolutions and activations take any scales;
- every op used here has a version for its int8 kernel (op_version.cc), which the operator code is set to;
- a RELU/RELU6 is first fused into the convolution or arithmetic op before it (`fold_activations`).

XNNPACK runs the int8 convolutions, FULLY_CONNECTED, ADD/SUB/MUL, LOGISTIC, TANH, pools, MEAN, PAD, TRANSPOSE,
RESHAPE, CONCATENATION, STRIDED_SLICE, RESIZE_BILINEAR, QUANTIZE and DEQUANTIZE; int8 HARD_SWISH, MAXIMUM,
MINIMUM and SOFTMAX (and SPLIT_V, RESIZE_NEAREST_NEIGHBOR, as in float) run on TFLite's own int8 kernels between
its partitions. The tests run every kernel of the table on TFLite's own kernels too, which check the scales.

What stays float, with a DEQUANTIZE before it and a QUANTIZE after it where it meets int8 tensors:
- ops with no int8 kernel here: DIV, POW, SQRT, EXP, NEG, ABS, GELU, CAST, SELECT_V2, BATCH_MATMUL,
  RELU_0_TO_1, and any op not in int8_kernels.KERNELS;
- ops with a tensor that has no range (a value calibration did not see and no rule derives), or a float input
  that is neither an activation nor a constant this pass can quantize;
- with `float_tail` (the default, as the ONNX static INT8 pass does): the compute layers that feed no other
  compute layer, and everything that feeds no int8 compute layer. That is a detector's post-processing (box
  decoding, score sigmoids, the concatenation of pixel coordinates with 0..1 scores into one output): int8
  there would put its step straight into the outputs, for little time saved;
- an int8-capable op whose neighbours are all float: it would only add a QUANTIZE and a DEQUANTIZE.
Graph inputs and outputs are float32 by default (QUANTIZE after the inputs, DEQUANTIZE before the outputs);
`io_dtype="int8"` makes them int8 with their own scale, `"uint8"` uint8 (zero point + 128) converted to and
from int8 by a QUANTIZE. An integer output holds one scale: yolov8's output, pixel boxes and 0..1 scores in one
tensor, gets a step of 1.28 at 320 pixels, which the scores cannot live with; keep such outputs float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from optimizer.backends.litert.flatbuffer import TFLiteGraph, numpy_dtype, tensor_type
from optimizer.backends.litert.precision._uses import WEIGHTS, Uses
from optimizer.backends.litert.precision.int8_kernels import (
    BIAS_INPUT,
    KERNELS,
    Params,
    Range,
    data_positions,
)
from optimizer.backends.litert.precision.tensor_ranges import tensor_ranges

from optimizer.quantization.calibration.statistics import quantization_params
from optimizer.quantization.weights import (
    quantize_bias_int32,
    quantize_symmetric_int8,
    symmetric_int8_scales,
)

IoDtype = Literal["float32", "int8", "uint8"]
IO_DTYPES: tuple[IoDtype, ...] = ("float32", "int8", "uint8")


# A fixed-scale output (1/256 over 0..1) may share its scale with a tensor whose range fits in the fixed one
# this loosely; a wider tensor is requantized instead of being clipped.
_FIXED_RANGE_SLACK = 1.01


@dataclass
class FullInt8Result:
    int8: list[str] = field(default_factory=list)
    """Operators (by their first output's name) that run in int8."""
    float: dict[str, str] = field(default_factory=dict)
    """Operators that stay float, with the reason."""
    conversions: dict[str, int] = field(default_factory=dict)
    """QUANTIZE, DEQUANTIZE and requantizing ops added, by kind."""


def quantize_full_int8(graph: TFLiteGraph, ranges: Mapping[str, Range], *, io_dtype: IoDtype = "float32",
                       float_tail: bool = True) -> FullInt8Result:
    """Rewrite the float `graph` in place to full-integer INT8; `ranges` maps tensor names (the ONNX value
    names the converter gave them) to calibrated (low, high)."""
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype must be one of {', '.join(IO_DTYPES)}, not {io_dtype!r}")
    fold_activations(graph)
    rewrite = _Int8Rewrite(graph, ranges, io_dtype)
    rewrite.plan(float_tail)
    rewrite.choose_scales()
    rewrite.apply()
    graph.remove_unused_tensors()
    return rewrite.result


# A standalone activation that the op before it can apply as its fusedActivationFunction.
FUSED_ACTIVATIONS = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}
FUSING_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL"}


def fold_activations(graph: TFLiteGraph) -> int:
    """Fuse RELU/RELU6 into the convolution or arithmetic op whose only reader it is, as TFLite's converter
    does; returns how many. In int8 the op then writes the activation's range straight away (twice the levels
    for a ReLU's positive half), and XNNPACK, which takes a fused activation, has no int8 kernel for a
    standalone RELU."""
    uses = Uses(graph)
    outputs = set(graph.outputs)
    folded: set[int] = set()
    for op in graph.operators:
        activation = FUSED_ACTIVATIONS.get(graph.builtin(op))
        source = op.inputs[0] if op.inputs else -1
        producer = uses.producer.get(source)
        if activation is None or producer is None or source in outputs or len(uses.readers.get(source, [])) != 1:
            continue
        options = producer.builtinOptions
        if (graph.builtin(producer) not in FUSING_OPS or options is None
                or options.fusedActivationFunction != graph.fb.ActivationFunctionType.NONE):
            continue
        options.fusedActivationFunction = getattr(graph.fb.ActivationFunctionType, activation)
        producer.outputs = list(op.outputs)
        folded.add(id(op))
    graph.operators = [op for op in graph.operators if id(op) not in folded]
    return len(folded)


class _Int8Rewrite:
    def __init__(self, graph: TFLiteGraph, ranges: Mapping[str, Range], io_dtype: IoDtype) -> None:
        self.graph = graph
        self.uses = Uses(graph)
        self.io_dtype = io_dtype
        self.ranges = tensor_ranges(graph, self.uses, ranges)
        self.int8_ops: set[int] = set()  # id() of operators that run in int8
        self.result = FullInt8Result()
        self.parent: dict[int, int] = {}
        self.fixed: dict[int, Params] = {}  # group root -> the kernel's fixed params
        self.params: dict[int, Params] = {}  # tensor -> its int8 params
        self._converted: dict[tuple, int] = {}
        self._after: dict[int, list[Any]] = {}  # tensor -> conversion ops that run once it is computed

    # Which operators run in int8 ------------------------------------------------------------------------------

    def plan(self, float_tail: bool) -> None:
        graph = self.graph
        for operator in graph.operators:
            reason = self._why_float(operator)
            if reason is None:
                self.int8_ops.add(id(operator))
            else:
                self.result.float[self._label(operator)] = reason
        if float_tail:
            self._keep_tail_float()
        self._drop_isolated()
        self.result.int8 = [self._label(op) for op in graph.operators if id(op) in self.int8_ops]

    def _why_float(self, operator: Any) -> str | None:
        builtin = self.graph.builtin(operator)
        kernel = KERNELS.get(builtin)
        if kernel is None:
            return f"{builtin} has no int8 kernel here"
        uses = self.uses
        for index in operator.outputs:
            if not uses.is_float_activation(index):
                return "an output is not a float32 activation"
            if index not in self.ranges:
                return f"no range for '{self.graph.tensors[index].name}'"
        if not any(uses.is_float_activation(i) for i in self._data_inputs(operator)):
            return "computes from constants only"
        data = data_positions(kernel, operator)
        for position, index in enumerate(operator.inputs):
            if index < 0:
                continue
            if position in data:
                if uses.is_float_activation(index) and index not in self.ranges:
                    return f"no range for '{self.graph.tensors[index].name}'"
                if not (uses.is_float_activation(index) or uses.is_float_constant(index)):
                    return "a data input is not float32"
            elif builtin in BIAS_INPUT and position in (WEIGHTS[builtin][0], BIAS_INPUT[builtin]):
                if not uses.is_float_constant(index):
                    return "weights or bias are not float32 constants"
            elif uses.is_float_activation(index) or uses.is_float_constant(index):
                return "a float input that the int8 kernel does not take"
        return None

    def _data_inputs(self, operator: Any) -> tuple[int, ...]:
        positions = data_positions(KERNELS[self.graph.builtin(operator)], operator)
        return tuple(operator.inputs[p] for p in sorted(positions) if operator.inputs[p] >= 0)

    def _is_compute(self, operator: Any) -> bool:
        return self.graph.builtin(operator) in BIAS_INPUT

    def _keep_tail_float(self) -> None:
        operators = self.graph.operators
        compute = {id(op) for op in operators if self._is_compute(op)}
        feeding_compute = self._feeding(compute)
        for op in operators:
            if id(op) in compute and id(op) in self.int8_ops and id(op) not in feeding_compute:
                self._make_float(op, "last compute layer before the outputs")
        int8_compute = {id(op) for op in operators if id(op) in compute and id(op) in self.int8_ops}
        feeding_int8 = self._feeding(int8_compute)
        for op in operators:
            if id(op) in self.int8_ops and id(op) not in int8_compute and id(op) not in feeding_int8:
                self._make_float(op, "after the last int8 compute layer (post-processing)")

    def _feeding(self, targets: set[int]) -> set[int]:
        """Operators with one of `targets` somewhere downstream."""
        feeding: set[int] = set()
        for op in reversed(self.graph.operators):
            readers = (reader for index in op.outputs for reader in self.uses.readers.get(index, ()))
            if any(id(reader) in targets or id(reader) in feeding for reader in readers):
                feeding.add(id(op))
        return feeding

    def _drop_isolated(self) -> None:
        int8_inputs = set(self.graph.inputs) if self.io_dtype != "float32" else set()
        changed = True
        while changed:
            changed = False
            for op in self.graph.operators:
                if id(op) not in self.int8_ops or self._is_compute(op):
                    continue
                neighbours = [self.uses.producer.get(i) for i in op.inputs if i >= 0]
                neighbours += [reader for i in op.outputs for reader in self.uses.readers.get(i, ())]
                if not any(n is not None and id(n) in self.int8_ops for n in neighbours) and not (
                        int8_inputs & set(op.inputs)):
                    self._make_float(op, "no int8 neighbour: it would only add a QUANTIZE and a DEQUANTIZE")
                    changed = True

    def _make_float(self, operator: Any, reason: str) -> None:
        self.int8_ops.discard(id(operator))
        self.result.float[self._label(operator)] = reason

    def _label(self, operator: Any) -> str:
        return f"{self.graph.builtin(operator)} {self.graph.tensors[operator.outputs[0]].name}"

    # Scales ---------------------------------------------------------------------------------------------------

    def choose_scales(self) -> None:
        """One scale per group of tensors that shared-scale ops tie together, fixed where a kernel fixes it."""
        graph, uses = self.graph, self.uses
        for op in graph.operators:
            if id(op) not in self.int8_ops:
                continue
            kernel = KERNELS[graph.builtin(op)]
            if kernel.scales == "fixed":
                self.fixed[self._find(op.outputs[0])] = kernel.fixed
        for op in graph.operators:
            if id(op) not in self.int8_ops or KERNELS[graph.builtin(op)].scales != "shared":
                continue
            anchor = op.outputs[0]
            for index in [i for i in self._data_inputs(op) if uses.is_float_activation(i)] + list(op.outputs):
                if index != anchor:
                    self._union(anchor, index)
        groups: dict[int, list[int]] = {}
        for index in self._int8_tensors():
            groups.setdefault(self._find(index), []).append(index)
        for root, members in groups.items():
            if root in self.fixed:
                params = self.fixed[root]
            else:
                low = min(self.ranges[i][0] for i in members)
                high = max(self.ranges[i][1] for i in members)
                scale, zero_point = quantization_params(low, high, "int8")
                params = (float(scale), int(zero_point))
            for index in members:
                self.params[index] = params

    def _int8_tensors(self) -> list[int]:
        """Activations read or written by an int8 op, and the graph's inputs and outputs when they are int8."""
        tensors: dict[int, None] = {}
        for op in self.graph.operators:
            if id(op) in self.int8_ops:
                tensors.update((i, None) for i in self._data_inputs(op) if self.uses.is_float_activation(i))
                tensors.update((i, None) for i in op.outputs)
        if self.io_dtype != "float32":
            tensors.update((i, None) for i in [*self.graph.inputs, *self.graph.outputs]
                           if self.uses.is_float_activation(i) and i in self.ranges)
        return list(tensors)

    def _find(self, index: int) -> int:
        self.parent.setdefault(index, index)
        while self.parent[index] != index:
            self.parent[index] = self.parent[self.parent[index]]
            index = self.parent[index]
        return index

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        fixed_a, fixed_b = self.fixed.get(ra), self.fixed.get(rb)
        if fixed_a and fixed_b and fixed_a != fixed_b:
            return  # two kernels fix different scales: a requantize joins them
        fixed = fixed_a or fixed_b
        if fixed and not all(self._fits(i, fixed) for i in self._members(ra if fixed_b else rb)):
            return  # a fixed 0..1 scale would clip the other tensors: they are requantized instead
        self.parent[rb] = ra
        if fixed:
            self.fixed[ra] = fixed

    def _members(self, root: int) -> list[int]:
        return [i for i in list(self.parent) if self._find(i) == root]

    def _fits(self, index: int, params: Params) -> bool:
        scale, zero_point = params
        low, high = (-128 - zero_point) * scale, (127 - zero_point) * scale
        lo, hi = self.ranges[index]
        return lo >= low * _FIXED_RANGE_SLACK and hi <= high * _FIXED_RANGE_SLACK

    # The rewrite ----------------------------------------------------------------------------------------------

    def apply(self) -> None:
        graph = self.graph
        # Tensors an int8 op writes are int8; those a float op writes stay float and are quantized where int8
        # ops read them. Graph inputs are int8 (or uint8) when the io dtype says so.
        quantized = [index for op in graph.operators if id(op) in self.int8_ops for index in op.outputs]
        if self.io_dtype != "float32":
            quantized += [index for index in graph.inputs if index in self.params]
        for index in quantized:
            self._set_int8(index)
        if self.io_dtype == "uint8":
            for index in graph.inputs:
                if index in self.params:
                    self._to_uint8(index)
        quantized_set = set(quantized)
        for op in graph.operators:
            if id(op) in self.int8_ops:
                self._quantize_operator(op)
            else:
                for position, index in enumerate(op.inputs):
                    if index in quantized_set:
                        op.inputs[position] = self._float_version(index)
        graph.outputs = [self._output(index) for index in graph.outputs]
        ordered = list(self._after.pop(-1, []))  # conversions of graph inputs come first
        for op in graph.operators:
            ordered.append(op)
            for index in op.outputs:
                ordered += self._after.pop(index, [])
        graph.operators = ordered

    def _stored(self, index: int) -> np.dtype:
        return numpy_dtype(self.graph.tensors[index].type)

    def _set_int8(self, index: int) -> None:
        tensor = self.graph.tensors[index]
        tensor.type = tensor_type(np.int8)
        tensor.quantization = self.graph.quantization(*self.params[index])

    def _to_uint8(self, index: int) -> None:
        scale, zero_point = self.params[index]
        tensor = self.graph.tensors[index]
        tensor.type = tensor_type(np.uint8)
        tensor.quantization = self.graph.quantization(scale, zero_point + 128)

    def _quantize_operator(self, op: Any) -> None:
        graph, uses = self.graph, self.uses
        builtin = graph.builtin(op)
        kernel = KERNELS[builtin]
        data = data_positions(kernel, op)
        for position, index in enumerate(op.inputs):
            if index < 0 or position not in data:
                continue
            wanted = self.params[op.outputs[0]] if kernel.scales == "shared" else self.params.get(index)
            if uses.is_float_constant(index):
                op.inputs[position] = self._constant_int8(index, wanted if kernel.scales == "shared" else None)
            else:
                op.inputs[position] = self._int8_version(index, wanted)
        if kernel.scales == "compute":
            self._quantize_weights(op, builtin)
        graph.set_version(op, max(graph.version(op), kernel.version))

    def _quantize_weights(self, op: Any, builtin: str) -> None:
        graph = self.graph
        weight_input, axis = WEIGHTS[builtin]
        data_input = KERNELS[builtin].data[0]
        input_scale = self._params_of(op.inputs[data_input])[0]
        weights = graph.constant_data(op.inputs[weight_input])
        scales = symmetric_int8_scales(weights, axis)
        name = graph.tensors[op.inputs[weight_input]].name
        op.inputs[weight_input] = graph.add_constant(
            f"{name}_int8", quantize_symmetric_int8(weights, scales, axis),
            quantization=graph.quantization(scales, [0] * len(scales), axis=axis))
        bias_input = BIAS_INPUT[builtin]
        bias_scales = (np.float64(input_scale) * scales.astype(np.float64)).astype(np.float32)
        if bias_input < len(op.inputs) and op.inputs[bias_input] >= 0:
            bias = graph.constant_data(op.inputs[bias_input]).astype(np.float64)
            name = graph.tensors[op.inputs[bias_input]].name
        else:
            bias, name = np.zeros(len(scales)), f"{graph.tensors[op.outputs[0]].name}_bias"
        quantized = quantize_bias_int32(bias, bias_scales.astype(np.float64))
        tensor = graph.add_constant(f"{name}_int32", quantized,
                                    quantization=graph.quantization(bias_scales, [0] * len(scales)))
        if bias_input < len(op.inputs):
            op.inputs[bias_input] = tensor

    def _params_of(self, index: int) -> Params:
        params = self.graph.tensors[index].quantization
        return float(params.scale[0]), int(params.zeroPoint[0])

    def _constant_int8(self, index: int, params: Params | None) -> int:
        """A float constant operand of an int8 op: per tensor, in the group's scale for shared ops."""
        graph = self.graph
        data = graph.constant_data(index)
        if params is None:
            scale, zero_point = quantization_params(float(data.min()), float(data.max()), "int8")
            params = (float(scale), int(zero_point))
        scale, zero_point = params
        # Saturate first: a max pool's padding holds float's lowest value, which becomes -128.
        data = np.clip(data.astype(np.float64), (-128 - zero_point) * scale, (127 - zero_point) * scale)
        quantized = np.clip(np.rint(data / scale) + zero_point, -128, 127).astype(np.int8)
        return graph.add_constant(f"{graph.tensors[index].name}_int8", quantized,
                                  quantization=graph.quantization(scale, zero_point))

    def _int8_version(self, index: int, params: Params) -> int:
        """`index` as an int8 tensor with `params`: itself, or the output of a QUANTIZE (from float, from uint8,
        or int8 -> int8 to requantize), written once per tensor and scale."""
        stored = self._stored(index)
        if stored == np.int8 and self._params_of(index) == params:
            return index
        key = ("int8", index, params)
        if key not in self._converted:
            kind = {np.dtype(np.float32): "QUANTIZE", np.dtype(np.int8): "requantize",
                    np.dtype(np.uint8): "QUANTIZE uint8 -> int8"}[np.dtype(stored)]
            name = self.graph.tensors[index].name + ("_requantized" if kind == "requantize" else "_int8")
            self._converted[key] = self._convert(index, name, np.int8, params, kind)
        return self._converted[key]

    def _float_version(self, index: int) -> int:
        key = ("float", index)
        if key not in self._converted:
            self._converted[key] = self._convert(index, f"{self.graph.tensors[index].name}_float", np.float32,
                                                 None, "DEQUANTIZE")
        return self._converted[key]

    def _convert(self, index: int, name: str, dtype: type, params: Params | None, kind: str) -> int:
        graph = self.graph
        quantization = graph.quantization(*params) if params is not None else None
        if dtype is np.uint8 and params is not None:
            quantization = graph.quantization(params[0], params[1] + 128)
        out = graph.add_tensor(name, graph.tensors[index].shape, dtype, quantization=quantization)
        builtin = "DEQUANTIZE" if kind == "DEQUANTIZE" else "QUANTIZE"
        version = 2 if builtin == "DEQUANTIZE" and self._stored(index) == np.int8 else 1
        operator = graph.make_operator(builtin, [index], [out], version=version)
        source = index if index in self.uses.producer else -1  # a graph input: converted before anything runs
        self._after.setdefault(source, []).append(operator)
        self.result.conversions[kind] = self.result.conversions.get(kind, 0) + 1
        return out

    def _output(self, index: int) -> int:
        """The graph output for `index` in the io dtype; the tensor given to the caller keeps the name."""
        graph = self.graph
        stored = np.dtype(self._stored(index))
        wanted = np.dtype({"float32": np.float32, "int8": np.int8, "uint8": np.uint8}[self.io_dtype])
        if stored == wanted or (wanted != np.float32 and index not in self.params):
            return index  # already in the io dtype, or an output with no range: left as it is
        name = graph.tensors[index].name
        if wanted == np.float32:
            out = self._float_version(index)
        else:
            out = self._convert(index, f"{name}_{wanted.name}", wanted.type, self.params[index],
                                f"QUANTIZE to {wanted.name}")
        graph.tensors[index].name = f"{name}_{stored.name}"
        graph.tensors[out].name = name
        return out
