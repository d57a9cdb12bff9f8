"""Convert a float32 model to float16 compute, or store its weights in bfloat16.

Half precision halves the weights and, on GPUs and NPUs, roughly doubles the arithmetic rate; what it costs is
range (float16 stops at +-65504) and 11 bits of mantissa. Where that hurts is known: statistics accumulated
over many values and functions with a large dynamic range. The rule that decides each node of the main graph:

- Heavy ops (MatMul, Gemm, Conv, ConvTranspose, Attention) always run in float16: they are what the
  conversion is for.
- Ops in `keep_float32_op_types` never do. The default keeps normalizations (their mean and variance),
  Softmax/LogSoftmax, Exp/Log/Pow/Sqrt, the reductions that sum (ReduceSum, ReduceMean, ReduceL2, ...,
  but not ReduceMax/ReduceMin, which are exact), CumSum, Range (float16 counts exactly only to 2048),
  recurrences (LSTM/GRU/RNN: the state accumulates over time steps) and spectral ops.
- Every other op follows its float inputs: it stays float32 if any float input that is not a constant comes
  from float32 computation, and runs in float16 otherwise. A normalization spelled out in primitive ops, the
  residual stream between LayerNorms, arithmetic on integers cast to float (shape arithmetic) and the float32
  graph inputs so stay float32 up to the next heavy op, where one Cast goes down; the Casts sit at
  heavy-op boundaries instead of around every cheap op.
- The op's schema decides which of its tensors change: an input converts only if its type constraint
  accepts float16 and binds a float input; fixed float32 parameters (Resize's scales) and Resize's roi
  coordinates stay float32, and outputs typed by an attribute (Cast's `to`, ConstantOfShape's `value`) keep
  their type. Ops without an ONNX schema (custom domains, model functions), nodes whose element types are
  unknown after shape inference, and sequence-typed values stay float32.
- Control flow stays float32 on purpose: an If/Loop/Scan node and everything in its bodies, weights
  included, are left as they are, and an outer value read inside a body is cast back to float32 once,
  before the node. (A model that does all its work inside an If, like Silero VAD, is left unchanged.)

Element types come from the model, or from ONNX shape inference when some are missing.

Casts are placed once: one Cast per (tensor, dtype), right after the tensor's producer (at the top of the
graph for inputs and weights) and shared by every reader. No Cast ever feeds a Cast: a Cast node reads a
float16 tensor as it is (widening is exact), Shape and Size read either type, and a tensor the model itself
made with a Cast to float32 is cast from that Cast's input, or, when every reader wants float16, the model's
Cast is re-aimed at float16. Apart from those Casts the model already had, integer and boolean tensors are
never cast. With `keep_io_types` the graph's inputs and outputs stay float32 (Casts after the inputs and
before the outputs, the output names unchanged); without it they become float16.

Weights (initializers and Constant nodes) are converted when every reader runs in float16; a weight that a
float32 node also reads stays float32 and gets one Cast down. Finite values beyond the format's range are
clipped to its largest value (+-65504 in float16; counted in `clipped_values`; the -3.4e38 that exporters use
as an attention mask becomes -65504), and nonzero values that would round to zero become the smallest
subnormal, so an epsilon stays nonzero (`underflowed_values`). Tensors are converted one by one, in chunks;
weights memory-mapped from external data are converted lazily when the model is saved, so memory stays
bounded whatever the model's size.

What runs on ONNX Runtime's CPU EP (1.32, measured):

- float16: every op runs; ORT wraps the ops it has no float16 CPU kernel for in Casts to float32 itself. On a
  CPU that makes float16 a size win that runs somewhat slower than float32; the speed is for GPUs and NPUs.
- bfloat16: ORT's CPU EP has no bfloat16 arithmetic at all (MatMul, Gemm, Add, Mul, Relu, Softmax, Erf,
  Reduce*... fail with NOT_IMPLEMENTED, and Conv has no bfloat16 in its schema); only Cast, Clip and data
  movement run. So `dtype="bfloat16"` is a storage format: the weights that float16 conversion would
  convert (those holding at least 256 values) are stored as bfloat16, each followed by one Cast to float32,
  and compute stays float32 - `Float16Config.compute_dtype` says "float32", `storage_dtype` "bfloat16". The
  file halves and it runs everywhere; a runtime that computes in bfloat16 can fold those Casts into its
  weights.

Each node's precision, or why it stayed float32, is kept in `ConvertToFloat16.precisions` for the per-layer
report.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx.defs  # operator schemas only: which inputs of an op may change type
import onnx_ir as ir

from optimizer.errors import UsageError
from optimizer.ir import all_names, default_opset_version, infer_shapes, unique_name
from optimizer.passes.base import OptimizerPass, PassConfig
from optimizer.quantization.selection import is_excluded, label_of

FLOAT32 = ir.DataType.FLOAT
REDUCED_DTYPES = {"float16": ir.DataType.FLOAT16, "bfloat16": ir.DataType.BFLOAT16}

DEFAULT_KEEP_FLOAT32_OP_TYPES = frozenset({
    # normalizations: their mean and variance
    "BatchNormalization", "GroupNormalization", "InstanceNormalization", "LayerNormalization",
    "LpNormalization", "MeanVarianceNormalization", "RMSNormalization",
    # exponentials and what sits next to them
    "Softmax", "LogSoftmax", "Exp", "Log", "Pow", "Sqrt",
    # reductions that sum many values
    "ReduceSum", "ReduceMean", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceProd", "CumSum",
    # counting and coordinates
    "Range",
    # state accumulated over time steps, and spectra
    "LSTM", "GRU", "RNN", "DFT", "STFT",
})
HEAVY_OP_TYPES = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Attention"})
"""Ops that run in reduced precision even when their input is float32: a Cast goes down before them."""

# Ops that read only the shape of their float input: they take either dtype and have no precision.
_SHAPE_READERS = frozenset({"Shape", "Size"})
# Inputs that stay float32 even when their op converts: coordinates, not data.
_FLOAT32_INPUTS = frozenset({("Resize", 1)})  # roi
# Storage mode: a weight smaller than this stays float32; the Cast would cost more than the bytes saved.
_MIN_STORAGE_ELEMENTS = 256
# Tensors are converted in chunks of this many values, so temporaries stay small whatever a tensor's size.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Float16Config(PassConfig):
    dtype: str = "float16"
    """"float16": compute and weights in float16. "bfloat16": weights stored in bfloat16 and cast to float32
    before use, compute float32 (ONNX Runtime's CPU EP has no bfloat16 kernels; see the module docstring)."""
    keep_io_types: bool = True
    """Graph inputs and outputs stay float32, with Casts inside the model; False makes them `dtype`."""
    keep_float32_op_types: frozenset[str] = DEFAULT_KEEP_FLOAT32_OP_TYPES
    """Op types (default domain) that always compute in float32."""
    exclude_nodes: tuple[str, ...] = ()
    """Nodes kept in float32, by name (an unnamed node by its first output's, as `precisions` labels it) or
    op type; fnmatch globs ("/head/*", "*attention*")."""

    def __post_init__(self) -> None:
        if self.dtype not in REDUCED_DTYPES:
            raise UsageError(
                f"float16 conversion dtype must be one of {', '.join(REDUCED_DTYPES)}, not {self.dtype!r}"
            )
        for name in ("keep_float32_op_types", "exclude_nodes"):
            if isinstance(getattr(self, name), str):
                raise UsageError(f"float16 conversion {name} is a collection of names, not one string")
        object.__setattr__(self, "keep_float32_op_types", frozenset(self.keep_float32_op_types))
        object.__setattr__(self, "exclude_nodes", tuple(self.exclude_nodes))

    @property
    def storage_dtype(self) -> str:
        """The element type of the converted weights."""
        return self.dtype

    @property
    def compute_dtype(self) -> str:
        """The element type the converted ops compute in: bfloat16 weights are cast to float32 first."""
        return "float16" if self.dtype == "float16" else "float32"


class ConvertToFloat16(OptimizerPass):
    name = "convert-float16"
    summary = "float16 compute or bfloat16 weights, numerically sensitive ops kept in float32"
    config_type = Float16Config
    config: Float16Config

    def __init__(self, config: Float16Config | None = None) -> None:
        super().__init__(config)
        self.precisions: dict[str, str] = {}
        """Node name (or its first output's, if unnamed) -> "float16", "bfloat16 weights, float32 compute" or
        "float32 (<why it stayed float32>)"."""
        self.converted_tensors = 0
        self.clipped_values = 0
        """Finite weight values beyond the reduced format's range, clipped to its largest value."""
        self.underflowed_values = 0
        """Nonzero weight values that would have rounded to zero, set to the smallest subnormal instead."""
        self.casts_inserted = 0

    @property
    def compute_dtype(self) -> str:
        return self.config.compute_dtype

    @property
    def storage_dtype(self) -> str:
        return self.config.storage_dtype

    def rewrite(self, model: ir.Model) -> int:
        if self.config.dtype == "bfloat16" and default_opset_version(model) < 13:
            raise UsageError(
                f"bfloat16 needs opset 13 or newer (Cast to bfloat16); the model has opset "
                f"{default_opset_version(model)}: upgrade the opset first"
            )
        if any(value.type is None for node in model.graph for value in node.outputs):
            infer_shapes(model)
        conversion = _Conversion(model, self.config)
        conversion.decide()
        changes = conversion.apply()
        self.precisions.update(conversion.precisions)
        self.converted_tensors += conversion.converted_tensors
        self.clipped_values += conversion.clipped_values
        self.underflowed_values += conversion.underflowed_values
        self.casts_inserted += conversion.casts_inserted
        return changes


@dataclass(frozen=True)
class _Reduced:
    """A node that runs in reduced precision: the inputs it reads and the outputs it writes that way."""

    inputs: frozenset[int]
    outputs: frozenset[int]


class _Conversion:
    """One run of the pass over the main graph: decide every node first, then change the graph."""

    def __init__(self, model: ir.Model, config: Float16Config) -> None:
        self.model = model
        self.graph = model.graph
        self.config = config
        self.reduced_dtype = REDUCED_DTYPES[config.dtype]
        self.compute = config.compute_dtype != "float32"
        # Storage mode stores the weights that float16 conversion would convert: nothing computes in
        # bfloat16, so which ops have bfloat16 in their schema does not matter.
        self.schema_dtype = self.reduced_dtype if self.compute else ir.DataType.FLOAT16
        self.reduced: dict[ir.Node, _Reduced] = {}
        # Computed float32 values (graph inputs, node outputs) -> whether they are in a reduced-precision
        # region. Constants are absent: they take whatever their readers need.
        self.in_reduced_region: dict[ir.Value, bool] = {}
        self.stored_reduced: set[ir.Value] = set()  # weights whose data becomes the reduced dtype
        self.precisions: dict[str, str] = {}
        self.converted_tensors = self.clipped_values = self.underflowed_values = self.casts_inserted = 0
        self._casts: dict[tuple[ir.Value, ir.DataType], ir.Value] = {}
        self._taken_names = all_names(model)

    # -- deciding -------------------------------------------------------------------------------------

    def decide(self) -> None:
        for value in self.graph.inputs:
            if _is_float32(value):
                self.in_reduced_region[value] = not self.config.keep_io_types and not value.is_initializer()
        for node in self.graph:
            if _is_constant_node(node) or (node.domain == "" and node.op_type in _SHAPE_READERS):
                continue
            for body in _subgraphs(node):
                for inner in ir.traversal.RecursiveGraphIterator(body):
                    if _touches_float32(inner):
                        self.precisions[label_of(inner)] = "float32 (inside a control-flow body)"
            if not _touches_float32(node):
                continue
            plan = self._plan(node)
            if isinstance(plan, str):
                self.precisions[label_of(node)] = f"float32 ({plan})"
            else:
                self.reduced[node] = plan
                self.precisions[label_of(node)] = self.config.dtype
            for index, output in enumerate(node.outputs):
                if _is_float32(output):
                    self.in_reduced_region[output] = not isinstance(plan, str) and index in plan.outputs
        for value in self._weights():
            readers = value.uses()
            if (
                not value.is_graph_output()
                and any(self._reads_reduced(use.node, use.idx) for use in readers)
                and all(
                    self._reads_reduced(use.node, use.idx) or _reads_any_float(use.node) for use in readers
                )
                and (self.compute or _element_count(value) >= _MIN_STORAGE_ELEMENTS)
            ):
                self.stored_reduced.add(value)
        if not self.compute:
            self._describe_storage()

    def _plan(self, node: ir.Node) -> _Reduced | str:
        """How `node` runs in reduced precision, or why it stays float32."""
        values = [value for value in (*node.inputs, *node.outputs) if value is not None]
        if any(value.type is None for value in values):
            return "element type unknown"
        if any(not isinstance(value.type, ir.TensorType) for value in values):
            return "reads or writes a sequence or optional"
        if _subgraphs(node):
            return f"control flow: the {node.op_type} bodies stay float32"
        if self._excluded(node):
            return "excluded"
        if node.domain == "" and node.op_type in self.config.keep_float32_op_types:
            return "numerically sensitive"
        opset = node.version or self.model.opset_imports.get(node.domain)
        signature = _signature(node.domain, node.op_type, opset) if opset is not None else None
        if signature is None:
            return f"no ONNX schema for {node.domain or 'ai.onnx'}::{node.op_type}"
        inputs, outputs = _reducible_params(signature, node, self.schema_dtype)
        if not inputs:
            if any(_is_float32(value) for value in node.inputs):
                return f"{node.op_type} at opset {opset} takes no {self.schema_dtype.name.lower()}"
            return "its float32 output is typed by an attribute"
        if node.op_type not in HEAVY_OP_TYPES and any(
            self.in_reduced_region.get(node.inputs[index]) is False for index in inputs
        ):
            return "follows a float32 input"
        return _Reduced(inputs, outputs)

    def _excluded(self, node: ir.Node) -> bool:
        patterns = self.config.exclude_nodes
        if is_excluded(node, patterns):
            return True
        # An unnamed node goes by its output's name, as in `precisions`.
        return not node.name and any(fnmatch.fnmatchcase(label_of(node), pattern) for pattern in patterns)

    def _reads_reduced(self, node: ir.Node, index: int) -> bool:
        plan = self.reduced.get(node)
        return plan is not None and index in plan.inputs

    def _weights(self) -> list[ir.Value]:
        """Float32 constants of the main graph: initializers that are not inputs, Constant node outputs."""
        weights = [
            value for value in self.graph.initializers.values()
            if _is_float32(value) and not value.is_graph_input() and value.const_value is not None
        ]
        weights += [
            node.outputs[0] for node in self.graph
            if _is_constant_node(node) and _is_float32(node.outputs[0])
        ]
        return weights

    def _describe_storage(self) -> None:
        """In storage mode nothing computes in bfloat16: say which nodes read bfloat16 weights instead."""
        with_weights = {use.node for value in self.stored_reduced for use in value.uses()}
        for node in self.reduced:
            if node in with_weights:
                self.precisions[label_of(node)] = "bfloat16 weights, float32 compute"
            else:
                self.precisions[label_of(node)] = "float32 (bfloat16 is storage only)"

    # -- changing the graph ---------------------------------------------------------------------------

    def apply(self) -> int:
        """Retype, convert and cast; the number of nodes now computing in float16 plus tensors converted."""
        # Every float32 value of the main graph and its element type after the conversion, taken before
        # anything changes.
        produced: dict[ir.Value, ir.DataType] = {}
        for value, reduced in self.in_reduced_region.items():
            producer = value.producer()
            if producer is None:  # a graph input
                produced[value] = self.reduced_dtype if reduced else FLOAT32
            else:
                produced[value] = self.reduced_dtype if reduced and self.compute else FLOAT32
        for value in self._weights():
            produced[value] = self.reduced_dtype if value in self.stored_reduced else FLOAT32
        io_dtype = FLOAT32 if self.config.keep_io_types else self.reduced_dtype
        changes = self._retarget_casts(produced, io_dtype)

        for value, dtype in produced.items():
            if dtype == FLOAT32:
                continue
            if value in self.stored_reduced:
                self._convert_weight(value)
                changes += 1
            elif value.is_graph_input():
                value.dtype = dtype
                changes += 1
            else:
                value.dtype = dtype
        if self.compute:
            changes += len(self.reduced)

        for value, dtype in produced.items():
            for use in value.uses():
                wanted = self._wanted(use.node, use.idx)
                if wanted is not None and wanted != dtype:
                    use.node.replace_input_with(use.idx, self._cast(value, wanted))
        for index, value in enumerate(self.graph.outputs):
            if produced.get(value, io_dtype) != io_dtype:
                self._cast_graph_output(index, value, io_dtype)
        return changes

    def _wanted(self, node: ir.Node, index: int) -> ir.DataType | None:
        """The element type `node` reads its float input `index` in; None: whatever it is given."""
        if node.graph is self.graph and _reads_any_float(node):
            return None
        if self.compute and self._reads_reduced(node, index):
            return self.reduced_dtype
        return FLOAT32

    def _retarget_casts(self, produced: dict[ir.Value, ir.DataType], io_dtype: ir.DataType) -> int:
        """The model's own Casts to float32 whose every reader wants the reduced type cast to it directly,
        rather than getting a second Cast after them; how many changed."""
        retargeted = 0
        for value, dtype in produced.items():
            producer = value.producer()
            if dtype != FLOAT32 or producer is None or not _is_cast(producer):
                continue
            wanted = {self._wanted(use.node, use.idx) for use in value.uses()} - {None}
            if value.is_graph_output():
                wanted.add(io_dtype)
            if wanted == {self.reduced_dtype}:
                producer.attributes["to"] = ir.AttrInt64("to", self.reduced_dtype)
                produced[value] = self.reduced_dtype
                self.precisions[label_of(producer)] = self.config.dtype
                retargeted += 1
        return retargeted

    def _convert_weight(self, value: ir.Value) -> None:
        producer = value.producer()
        if producer is None:
            tensor = value.const_value
            converted = self._converted(tensor, value.name)
            value.const_value = converted
        else:  # a Constant node
            tensor = _constant_tensor(producer)
            converted = self._converted(tensor, tensor.name)
            for name in list(producer.attributes):
                del producer.attributes[name]
            producer.attributes["value"] = ir.AttrTensor("value", converted)
        value.dtype = self.reduced_dtype
        self.converted_tensors += 1

    def _converted(self, tensor: ir.TensorProtocol, name: str | None) -> ir.TensorProtocol:
        """`tensor` in the reduced dtype; memory-mapped external data is converted only when it is saved."""
        dtype = self.reduced_dtype
        if isinstance(tensor, ir.ExternalTensor):
            for _, clipped, underflowed in _reduced_chunks(tensor.numpy(), dtype):
                self.clipped_values += clipped
                self.underflowed_values += underflowed
            return ir.LazyTensor(
                lambda: ir.tensor(_to_reduced(tensor.numpy(), dtype)[0], name=name),
                dtype=dtype, shape=ir.Shape(tensor.shape), name=name,
            )
        array, clipped, underflowed = _to_reduced(tensor.numpy(), dtype)
        self.clipped_values += clipped
        self.underflowed_values += underflowed
        return ir.tensor(array, name=name)

    def _cast(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        """`value` as `dtype`, through one Cast shared by every reader."""
        key = (value, dtype)
        if key in self._casts:
            return self._casts[key]
        source = value
        producer = value.producer()
        if producer is not None and _is_cast(producer) and producer.inputs[0] is not None:
            source = producer.inputs[0]  # cast the original: no Cast reads a Cast
        name = self._unique_name(f"{value.name}_{_SUFFIXES[dtype]}")
        cast = ir.node("Cast", [source], {"to": dtype}, name=name)
        cast.outputs[0].name = name
        cast.outputs[0].dtype = dtype
        cast.outputs[0].shape = ir.Shape(value.shape) if value.shape is not None else None
        if producer is not None:
            producer.graph.insert_after(producer, cast)
        elif len(self.graph) > 0:
            self.graph.insert_before(self.graph.node(0), cast)
        else:
            self.graph.append(cast)
        self.casts_inserted += 1
        self._casts[key] = cast.outputs[0]
        return cast.outputs[0]

    def _cast_graph_output(self, index: int, value: ir.Value, dtype: ir.DataType) -> None:
        """Cast the graph's output `index` to `dtype`, keeping its name for the model's users."""
        name = value.name
        cast = self._cast(value, dtype)
        value.name = self._unique_name(f"{name}_{_SUFFIXES[value.dtype]}")
        cast.name = name
        self.graph.outputs[index] = cast

    def _unique_name(self, base: str) -> str:
        return unique_name(self._taken_names, base)


_SUFFIXES = {ir.DataType.FLOAT: "fp32", ir.DataType.FLOAT16: "fp16", ir.DataType.BFLOAT16: "bf16"}


@functools.cache
def _signature(domain: str, op_type: str, opset: int) -> ir.schemas.OpSignature | None:
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None
    return ir.schemas.OpSignature.from_op_schema(schema)


def _reducible_params(
    signature: ir.schemas.OpSignature, node: ir.Node, dtype: ir.DataType
) -> tuple[frozenset[int], frozenset[int]]:
    """The float32 inputs and outputs of `node` that change to `dtype` when it converts: those bound to a
    type constraint that allows both float32 and `dtype` and binds at least one float32 input."""

    def constraint(params: list[ir.schemas.Parameter], index: int) -> ir.schemas.TypeConstraintParam | None:
        if index < len(params):
            return params[index].type_constraint
        return params[-1].type_constraint if params and params[-1].variadic else None

    float_inputs = {
        index: constraint(signature.inputs, index)
        for index, value in enumerate(node.inputs)
        if _is_float32(value) and (node.op_type, index) not in _FLOAT32_INPUTS
    }
    reducible = {
        found.name for found in float_inputs.values()
        if found is not None and {ir.TensorType(FLOAT32), ir.TensorType(dtype)} <= found.allowed_types
    }
    inputs = frozenset(
        index for index, found in float_inputs.items() if found is not None and found.name in reducible
    )
    outputs = frozenset(
        index for index, value in enumerate(node.outputs)
        if _is_float32(value)
        and (found := constraint(signature.outputs, index)) is not None
        and found.name in reducible
    )
    return inputs, outputs


def _reduced_chunks(array: np.ndarray, dtype: ir.DataType) -> Iterator[tuple[np.ndarray, int, int]]:
    """`array`, flattened, in `dtype` chunk by chunk, each with how many values were clipped and underflowed.

    Finite values beyond the range become the largest value; nonzero values that would round to zero become
    the smallest subnormal.
    """
    target = dtype.numpy()
    info = ml_dtypes.finfo(target)
    flat = np.asarray(array).reshape(-1)
    for start in range(0, flat.size, _CHUNK_ELEMENTS):
        chunk = flat[start:start + _CHUNK_ELEMENTS]
        with np.errstate(over="ignore"):
            converted = chunk.astype(target)
        overflow = np.isinf(converted) & np.isfinite(chunk)
        converted[overflow] = np.copysign(info.max, chunk[overflow]).astype(target)
        underflow = (converted == 0) & (chunk != 0)
        converted[underflow] = np.copysign(info.smallest_subnormal, chunk[underflow]).astype(target)
        yield converted, int(np.count_nonzero(overflow)), int(np.count_nonzero(underflow))


def _to_reduced(array: np.ndarray, dtype: ir.DataType) -> tuple[np.ndarray, int, int]:
    """`array` in `dtype` (see _reduced_chunks), with the counts of clipped and underflowed values."""
    result = np.empty(np.size(array), dtype=dtype.numpy())
    clipped = underflowed = 0
    start = 0
    for converted, chunk_clipped, chunk_underflowed in _reduced_chunks(array, dtype):
        result[start:start + converted.size] = converted
        start += converted.size
        clipped += chunk_clipped
        underflowed += chunk_underflowed
    return result.reshape(np.shape(array)), clipped, underflowed


def _constant_tensor(node: ir.Node) -> ir.TensorProtocol:
    """The float32 tensor a Constant node outputs, whichever attribute spells it."""
    value = node.attributes.get("value")
    if value is not None:
        return value.as_tensor()
    floats = node.attributes.get("value_float") or node.attributes.get("value_floats")
    return ir.tensor(np.asarray(floats.value, dtype=np.float32))


def _is_constant_node(node: ir.Node) -> bool:
    return (
        node.op_type == "Constant" and node.domain == ""
        and any(name in node.attributes for name in ("value", "value_float", "value_floats"))
    )


def _is_cast(node: ir.Node) -> bool:
    return node.op_type == "Cast" and node.domain == ""


def _reads_any_float(node: ir.Node) -> bool:
    """A Cast widens float16 exactly and Shape/Size read only the shape: they take either dtype as it is."""
    return node.domain == "" and (node.op_type == "Cast" or node.op_type in _SHAPE_READERS)


def _is_float32(value: ir.Value | None) -> bool:
    return value is not None and isinstance(value.type, ir.TensorType) and value.type.dtype == FLOAT32


def _touches_float32(node: ir.Node) -> bool:
    return any(_is_float32(value) for value in (*node.inputs, *node.outputs))


def _subgraphs(node: ir.Node) -> list[ir.Graph]:
    graphs: list[ir.Graph] = []
    for attribute in node.attributes.values():
        if attribute.type == ir.AttributeType.GRAPH:
            graphs.append(attribute.as_graph())
        elif attribute.type == ir.AttributeType.GRAPHS:
            graphs.extend(attribute.as_graphs())
    return graphs


def _element_count(value: ir.Value) -> int:
    producer = value.producer()
    tensor = value.const_value if producer is None else _constant_tensor(producer)
    return int(np.prod(tensor.shape.dims)) if tensor is not None else 0

