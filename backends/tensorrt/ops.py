"""What TensorRT's ONNX parser reads, what a Jetson's DLA runs, and the pre-flight that checks a model on both.

The op table is the "Y" rows of onnx-tensorrt's docs/operators.md for TensorRT 10.15 (the parser shipped with
TensorRT 10.15, opsets 9 to 24); ops marked "N" there, and ops the table does not list, are not parsed. A few
of the table's documented restrictions are checked per node (Resize modes, pooling dilations, Q/DQ zero
points, ...), as TVM's TensorRT offload checks its pattern table: an op name alone does not say whether the
parser takes the node.

DLA (the Deep Learning Accelerator of Jetson AGX/NX Orin) runs the op types its target profile lists
(`TargetProfile.dla.ops`), in FP16 or INT8, with static shapes and within the layer limits of TensorRT's
"DLA Supported Layers and Restrictions" (kernel, stride and window sizes, dims up to 8192). Every node it
cannot run falls back to the GPU (BuilderFlag.GPU_FALLBACK): pre-flight names each one, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import onnx_ir as ir
from optimizer.backends.base import PreflightIssue

from optimizer.ir import clear_intermediate_shapes, infer_shapes, input_specs, is_standard_op

RUNTIME = "tensorrt"
ALL_LAYERS = "(all layers)"
PARSER_SOURCE = "onnx-tensorrt docs/operators.md, TensorRT 10.15"
OPSET_RANGE = (9, 24)
"""Default-domain opsets the TensorRT 10.15 parser reads (older 10.x parsers stop earlier: 10.3 reads up to 20)."""

# The "Y" rows of onnx-tensorrt's operators.md (TensorRT 10.15).
TENSORRT_ONNX_OPS = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "Attention",
    "AveragePool", "BatchNormalization", "BlackmanWindow", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat",
    "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DeformConv",
    "DepthToSpace", "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand",
    "EyeLike", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
    "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "GRU",
    "HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If", "ImageScaler",
    "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log",
    "LogSoftmax", "Loop", "LRN", "LSTM", "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean",
    "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not",
    "OneHot", "Or", "Pad", "ParametricSoftplus", "Pow", "PRelu", "QuantizeLinear", "RandomNormal",
    "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "RMSNormalization", "RNN", "RoiAlign",
    "RotaryEmbedding", "Round", "STFT", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu",
    "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign",
    "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "TensorScatter", "ThresholdedRelu",
    "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where", "Xor",
})

# Precisions TensorRT computes, for the (hwopt) precision names that mean something else.
NATIVE_NEED = {"int8-dynamic": "int8"}
# hwopt precisions whose ONNX form TensorRT does not read, and why.
FOREIGN_PRECISIONS = {
    "int8-dynamic": "int8-dynamic is ONNX Runtime's dynamic quantization (DynamicQuantizeLinear, MatMulInteger); "
                    "TensorRT runs static INT8 Q/DQ only: use int8 with calibration data",
    "int4": "hwopt's int4 is ONNX Runtime's MatMulNBits; TensorRT reads 4-bit weights only as INT4 "
            "DequantizeLinear blocks: use fp16 or int8 for TensorRT",
}

_FLOAT_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16, ir.DataType.DOUBLE})
_RESIZE_COORDINATES = frozenset({"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                                 "align_corners"})
# Layer limits of TensorRT's "DLA Supported Layers and Restrictions" (10.x).
DLA_MAX_DIM = 8192
DLA_CONV_LIMITS = {"kernel_shape": 32, "strides": 8, "dilations": 32, "pads": 31}
DLA_POOL_LIMITS = {"kernel_shape": 8, "strides": 16, "pads": 7}
# Nodes that never become a TensorRT layer of their own: constants, and Q/DQ, which TensorRT fuses into the
# precision of the layers around them.
_NOT_LAYERS = frozenset({"Constant", "Identity", "QuantizeLinear", "DequantizeLinear"})
# ONNX ops the parser turns into the TensorRT layer of another ONNX op (Split: one ISliceLayer per output;
# Squeeze, Unsqueeze, Flatten: an IShuffleLayer, as Reshape), so DLA runs them where it runs that op.
_TENSORRT_LAYER = {"Split": "Slice", "Squeeze": "Reshape", "Unsqueeze": "Reshape", "Flatten": "Reshape"}


def preflight(model: ir.Model, target, precision: str) -> list[PreflightIssue]:
    """Every node TensorRT's parser cannot take (error), precisions the target lacks (error), and, on targets
    with a DLA, every node the DLA hands back to the GPU (fallback)."""
    issues = [*_opset_issues(model), *_precision_issues(target, precision)]
    with _inferred_shapes(model):  # element types for the per-node restrictions (Mod), shapes for DLA
        for path, node, _ in walk_nodes(model):
            problem = parser_problem(node, model)
            if problem is not None:
                issues.append(_issue(path, node, problem, "error"))
        if target.dla is not None:
            issues += dla_issues(model, target, precision)
    return issues


def parser_problem(node: ir.Node, model: ir.Model) -> str | None:
    """Why TensorRT's ONNX parser rejects `node`, or None when it takes it."""
    if _is_local_function(node, model):
        return None  # the parser inlines model-local functions; their bodies are walked as nodes
    if not is_standard_op(node):
        return (f"TensorRT's ONNX parser has no {node.domain}::{node.op_type} (a custom domain: it needs a "
                "TensorRT plugin registered under that name)")
    if node.op_type not in TENSORRT_ONNX_OPS:
        return f"TensorRT's ONNX parser has no {node.op_type} ({PARSER_SOURCE})"
    check = _RESTRICTIONS.get(node.op_type)
    return check(node) if check else None


class NodeAt(NamedTuple):
    path: str
    """The node's name inside its parents: `If_0/then_branch/Conv_3` (an unnamed node: `Conv#3`)."""
    node: ir.Node
    in_body: bool
    """Inside an If/Loop/Scan body (control flow), rather than the main graph or a function it calls."""


def walk_nodes(model: ir.Model) -> Iterator[NodeAt]:
    """Every node of the main graph, its If/Loop/Scan bodies and the model-local functions it calls."""
    yield from _walk(model.graph, "", model, in_body=False, calling=frozenset())


def _walk(graph, prefix: str, model: ir.Model, *, in_body: bool, calling: frozenset) -> Iterator[NodeAt]:
    for index, node in enumerate(graph):
        path = prefix + (node.name or f"{node.op_type}#{index}")
        yield NodeAt(path, node, in_body)
        for attribute in node.attributes.values():
            if attribute.type == ir.AttributeType.GRAPH:
                yield from _walk(attribute.value, f"{path}/{attribute.name}/", model, in_body=True,
                                 calling=calling)
            elif attribute.type == ir.AttributeType.GRAPHS:
                for number, body in enumerate(attribute.value):
                    yield from _walk(body, f"{path}/{attribute.name}[{number}]/", model, in_body=True,
                                     calling=calling)
        function = model.functions.get(node.op_identifier())
        if function is not None and function.identifier() not in calling:
            yield from _walk(function, f"{path}/", model, in_body=in_body,
                             calling=calling | {function.identifier()})


def _is_local_function(node: ir.Node, model: ir.Model) -> bool:
    return node.op_identifier() in model.functions


def _issue(path: str, node: ir.Node, problem: str, action: str) -> PreflightIssue:
    op = node.op_type if is_standard_op(node) else f"{node.domain}::{node.op_type}"
    return PreflightIssue(path, op, problem, action, RUNTIME)


def _opset_issues(model: ir.Model) -> list[PreflightIssue]:
    opset = model.opset_imports.get("", model.opset_imports.get("ai.onnx"))
    low, high = OPSET_RANGE
    if opset is None or low <= opset <= high:
        return []
    return [PreflightIssue("(model)", "-", f"the model is opset {opset}; TensorRT's parser reads opsets {low} to "
                           f"{high} ({PARSER_SOURCE})", "error", RUNTIME)]


def _precision_issues(target, precision: str) -> list[PreflightIssue]:
    issues = []
    if precision in FOREIGN_PRECISIONS:
        issues.append(PreflightIssue(ALL_LAYERS, "-", FOREIGN_PRECISIONS[precision], "error", RUNTIME))
    need = NATIVE_NEED.get(precision, precision)
    if need != "fp32" and target.precisions and need not in target.precisions:
        where = f"{target.name}" + (f" (sm {target.sm})" if target.sm else "")
        issues.append(PreflightIssue(
            ALL_LAYERS, "-", f"{where} has no native {need}; TensorRT cannot build {need} layers for it "
            f"(it computes {', '.join(target.precisions)})", "error", RUNTIME))
    return issues


# Restrictions of the parser table, per op: a function of the node returning the problem or None.

def _attribute(node: ir.Node, name: str, default=None):
    attribute = node.attributes.get(name)
    return default if attribute is None else attribute.value


def _resize(node: ir.Node) -> str | None:
    mode = _attribute(node, "mode", "nearest")
    coordinates = _attribute(node, "coordinate_transformation_mode", "half_pixel")
    if mode not in ("nearest", "linear"):
        return f"TensorRT's Resize has no mode '{mode}' (nearest and linear only)"
    if coordinates not in _RESIZE_COORDINATES:
        return f"TensorRT's Resize has no coordinate_transformation_mode '{coordinates}'"
    if _attribute(node, "antialias", 0):
        return "TensorRT's Resize does not antialias"
    if _attribute(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        return "TensorRT's Resize supports keep_aspect_ratio_policy 'stretch' only"
    return None


def _pooling(node: ir.Node) -> str | None:
    if any(d != 1 for d in _attribute(node, "dilations", ()) or ()):
        return f"TensorRT's {node.op_type} needs dilations of 1"
    if node.op_type == "MaxPool" and len(node.outputs) > 1 and node.outputs[1].uses():
        return "TensorRT's MaxPool has no Indices output"
    return None


def _top_k(node: ir.Node) -> str | None:
    return None if _attribute(node, "sorted", 1) else "TensorRT's TopK needs sorted=1"


def _scatter_nd(node: ir.Node) -> str | None:
    reduction = _attribute(node, "reduction", "none")
    return None if reduction == "none" else f"TensorRT's ScatterND has no reduction '{reduction}'"


def _lstm(node: ir.Node) -> str | None:
    if _attribute(node, "layout", 0):
        return "TensorRT's LSTM needs layout=0"
    if _attribute(node, "input_forget", 0):
        return "TensorRT's LSTM needs input_forget=0"
    return None


def _mod(node: ir.Node) -> str | None:
    # Found by TensorRT-RTX's parser (the table says only "Y"): integer modulo only, unless fmod=1.
    if not _attribute(node, "fmod", 0) and value_dtype(node.inputs[0]) in _FLOAT_TYPES:
        return "TensorRT's Mod with fmod=0 takes integers only; a float Mod needs fmod=1 (C fmod)"
    return None


def _layer_normalization(node: ir.Node) -> str | None:
    if any(output.uses() or output.is_graph_output() for output in node.outputs[1:]):
        return "TensorRT's LayerNormalization has only its first output (Y); Mean/InvStdDev are used"
    return None


def _quantize(node: ir.Node) -> str | None:
    """TensorRT quantizes symmetrically to signed types: zero point 0, never uint8."""
    zero_point = node.inputs[2] if len(node.inputs) > 2 else None
    if zero_point is None:
        return None
    tensor = ir.convenience.get_const_tensor(zero_point)
    if value_dtype(zero_point) == ir.DataType.UINT8:
        return ("uint8 Q/DQ (an asymmetric scheme, e.g. ONNX Runtime's or OpenVINO's); TensorRT quantizes to "
                "int8 with zero point 0: quantize for runtime 'tensorrt'")
    if tensor is not None and tensor.numpy().any():
        return "TensorRT's Q/DQ needs zero point 0 (symmetric quantization); this one is not"
    return None


def value_dtype(value: ir.Value) -> ir.DataType | None:
    """A value's element type, from its constant when the graph does not declare it."""
    if value.dtype is not None:
        return value.dtype
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.dtype


_RESTRICTIONS: dict[str, Callable[[ir.Node], str | None]] = {
    "Resize": _resize,
    "MaxPool": _pooling, "AveragePool": _pooling, "LpPool": _pooling,
    "TopK": _top_k,
    "Mod": _mod,
    "ScatterND": _scatter_nd,
    "LSTM": _lstm,
    "LayerNormalization": _layer_normalization,
    "QuantizeLinear": _quantize, "DequantizeLinear": _quantize,
}


# DLA

def dla_issues(model: ir.Model, target, precision: str) -> list[PreflightIssue]:
    """Nodes the target's DLA cannot run: each falls back to the GPU. When nothing can run on the DLA (a
    precision it lacks, dynamic inputs), one issue says so for all layers."""
    dla = target.dla
    need = NATIVE_NEED.get(precision, precision)
    if need not in dla.precisions:
        return [PreflightIssue(ALL_LAYERS, "-", f"{target.name}'s DLA computes {'/'.join(dla.precisions)} only; "
                               f"at {precision} every layer runs on the GPU", "fallback", RUNTIME)]
    dynamic = [str(spec) for spec in input_specs(model)
               if spec.shape is None or not all(isinstance(d, int) for d in spec.shape)]
    if dynamic:
        return [PreflightIssue(ALL_LAYERS, "-", f"DLA needs static shapes and {'; '.join(dynamic)} "
                               "is dynamic: every layer runs on the GPU (fix the shapes with --shape)",
                               "fallback", RUNTIME)]
    ops = frozenset(dla.ops)
    with _inferred_shapes(model):
        return [_issue(path, node, reason, "fallback")
                for path, node, reason in _dla_fallbacks(model, ops)]


def _dla_fallbacks(model: ir.Model, ops: frozenset[str]) -> Iterator[tuple[str, ir.Node, str]]:
    for path, node, in_body in walk_nodes(model):
        if _is_local_function(node, model) or is_standard_op(node) and (
                node.op_type in _NOT_LAYERS or _is_constant_of_constant_shape(node)):
            continue
        reason = dla_problem(node, ops, in_body=in_body)
        if reason is not None:
            yield path, node, reason


def _is_constant_of_constant_shape(node: ir.Node) -> bool:
    """A ConstantOfShape of a known shape: TensorRT makes it a constant (weights), not a layer that runs."""
    return node.op_type == "ConstantOfShape" and ir.convenience.get_const_tensor(node.inputs[0]) is not None


def dla_problem(node: ir.Node, ops: frozenset[str], *, in_body: bool = False) -> str | None:
    """Why the DLA cannot run `node` (so it falls back to the GPU), or None."""
    if in_body:
        return "inside an If/Loop/Scan body: DLA runs no control flow"
    if not is_standard_op(node) or (node.op_type not in ops and _TENSORRT_LAYER.get(node.op_type) not in ops):
        return f"DLA has no {node.op_type} layer"
    for value in node.outputs:
        if value.shape is None:
            continue
        if not all(isinstance(d, int) for d in value.shape):
            return f"output '{value.name}' has a data-dependent shape {value.shape}; DLA needs static shapes"
        if any(d > DLA_MAX_DIM for d in list(value.shape)[1:]):
            return f"output '{value.name}' {value.shape} has a dim over DLA's {DLA_MAX_DIM}"
    if node.op_type in ("MatMul", "Gemm") and ir.convenience.get_const_tensor(node.inputs[1]) is None:
        return f"DLA runs {node.op_type} only as a fully connected layer, with constant weights"
    if node.op_type == "Concat" and not _is_channel_axis(_attribute(node, "axis"), node.outputs[0].shape):
        return "DLA concatenates on the channel axis only"
    if node.op_type in ("Conv", "ConvTranspose"):
        return _dla_window_problem(node, DLA_CONV_LIMITS, "convolution")
    if node.op_type in ("MaxPool", "AveragePool"):
        return _dla_window_problem(node, DLA_POOL_LIMITS, "pooling")
    return None


def _is_channel_axis(axis: int | None, shape: ir.Shape | None) -> bool:
    if axis is None:
        return False
    return axis == 1 if shape is None else axis % len(shape) == 1


def _dla_window_problem(node: ir.Node, limits: dict[str, int], kind: str) -> str | None:
    weight_shape = node.inputs[1].shape if kind == "convolution" and len(node.inputs) > 1 else None
    kernel = _attribute(node, "kernel_shape")
    if kernel is None and weight_shape is not None and all(isinstance(d, int) for d in weight_shape):
        kernel = list(weight_shape)[2:]
    if kernel is not None and len(kernel) != 2:
        return f"DLA runs 2D {kind} only (this one is {len(kernel)}D)"
    values = {"kernel_shape": kernel or ()}
    for name in ("strides", "dilations", "pads"):
        values[name] = _attribute(node, name, ()) or ()
    for name, limit in limits.items():
        too_big = [d for d in values[name] if d > limit]
        if too_big:
            return f"DLA {kind} {name} must be at most {limit}, not {max(too_big)}"
    return None


class _inferred_shapes:
    """Infer intermediate shapes for the DLA checks, and forget them again if the model came without them (the
    pipeline clears them before saving: see optimizer.ir.clear_intermediate_shapes)."""

    def __init__(self, model: ir.Model) -> None:
        self.model = model
        self.had_shapes = any(value.shape is not None for node in model.graph for value in node.outputs
                              if not value.is_graph_output())

    def __enter__(self) -> None:
        infer_shapes(self.model)

    def __exit__(self, *exc) -> None:
        if not self.had_shapes:
            clear_intermediate_shapes(self.model)
