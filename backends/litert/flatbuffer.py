"""Writing a `.tflite` flatbuffer with the LiteRT schema's Python object API, without TensorFlow.

`ai-edge-litert` ships the schema compiled for Python (`schema_py_generated`: ModelT, SubGraphT, TensorT, ...).
`TFLiteGraph` keeps the tables a converter fills (tensors, constant buffers, operator codes, operators) and
packs them into one model with the `TFL3` file identifier. Buffer 0 is the empty buffer every tensor without
data points to, as the format requires.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from optimizer.backends.base import import_runtime

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3

_TENSOR_TYPES = {
    np.dtype(np.float32): "FLOAT32", np.dtype(np.float16): "FLOAT16", np.dtype(np.int32): "INT32",
    np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64", np.dtype(np.bool_): "BOOL",
    np.dtype(np.int16): "INT16", np.dtype(np.int8): "INT8", np.dtype(np.float64): "FLOAT64",
}


def schema() -> ModuleType:
    """The LiteRT flatbuffer schema (object API), or a RuntimeNotAvailableError naming the extra."""
    import_runtime("ai_edge_litert", "tflite")
    return import_runtime("ai_edge_litert.schema_py_generated", "tflite")


def numpy_dtype(type_code: int) -> np.dtype:
    """The numpy dtype of a TFLite TensorType code."""
    return _numpy_dtypes(schema())[type_code]


@functools.cache
def _numpy_dtypes(fb: ModuleType) -> dict[int, np.dtype]:
    return {getattr(fb.TensorType, name): dtype for dtype, name in _TENSOR_TYPES.items()}


@functools.cache
def _builtin_names(fb: ModuleType) -> dict[int, str]:
    return {code: name for name, code in vars(fb.BuiltinOperator).items() if not name.startswith("_")}


def tensor_type(dtype: np.dtype) -> int:
    name = _TENSOR_TYPES.get(np.dtype(dtype))
    if name is None:
        raise ValueError(f"no TFLite tensor type for {np.dtype(dtype)}")
    return getattr(schema().TensorType, name)


class TFLiteGraph:
    """One subgraph being written: add tensors and operators, then `serialize()`."""

    def __init__(self, name: str = "main") -> None:
        self.fb = schema()
        self.name = name
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [self.fb.BufferT()]
        self.operators: list[Any] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self._opcodes: dict[tuple[int, int], int] = {}
        self._codes: list[Any] = []
        self._constants: dict[tuple[bytes, str, tuple[int, ...]], int] = {}

    def add_tensor(self, name: str, shape: Sequence[int], dtype: np.dtype, *,
                   shape_signature: Sequence[int] | None = None, quantization: Any = None) -> int:
        """An activation tensor; `shape_signature` marks dynamic dims with -1."""
        tensor = self.fb.TensorT()
        tensor.name = name
        tensor.shape = [int(d) for d in shape]
        if shape_signature is not None and any(d < 0 for d in shape_signature):
            tensor.shapeSignature = [int(d) for d in shape_signature]
        tensor.type = tensor_type(dtype)
        tensor.buffer = 0
        tensor.quantization = quantization
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def add_constant(self, name: str, array: np.ndarray, *, quantization: Any = None) -> int:
        """A constant tensor with its data; identical constants (same bytes, dtype, shape) share one tensor."""
        array = np.ascontiguousarray(array)
        key = (array.tobytes(), array.dtype.str, array.shape)
        if quantization is None and key in self._constants:
            return self._constants[key]
        buffer = self.fb.BufferT()
        buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
        self.buffers.append(buffer)
        index = self.add_tensor(name, array.shape, array.dtype, quantization=quantization)
        self.tensors[index].buffer = len(self.buffers) - 1
        if quantization is None:
            self._constants[key] = index
        return index

    def add_operator(self, builtin: str, inputs: Sequence[int], outputs: Sequence[int], options: Any = None,
                     *, version: int = 1) -> None:
        """An operator by its BuiltinOperator name (CONV_2D, ...), with its *OptionsT table when it has one.

        An optional input that is absent is given as -1, as the format expects."""
        self.operators.append(self.make_operator(builtin, inputs, outputs, options, version=version))

    def make_operator(self, builtin: str, inputs: Sequence[int], outputs: Sequence[int], options: Any = None,
                      *, version: int = 1) -> Any:
        """An operator as add_operator writes it, not yet placed in the operator list (a pass that rewrites
        the graph puts it where it belongs)."""
        code = getattr(self.fb.BuiltinOperator, builtin)
        operator = self.fb.OperatorT()
        operator.opcodeIndex = self._opcode(code, version)
        operator.inputs = [int(i) for i in inputs]
        operator.outputs = [int(o) for o in outputs]
        if options is not None:
            operator.builtinOptionsType = getattr(self.fb.BuiltinOptions, type(options).__name__.removesuffix("T"))
            operator.builtinOptions = options
        return operator

    def options(self, name: str, **fields: Any) -> Any:
        """A builtin options table, e.g. options("Conv2DOptions", strideH=2, ...)."""
        table = getattr(self.fb, f"{name}T")()
        for key, value in fields.items():
            if not hasattr(table, key):
                raise AttributeError(f"{name} has no field '{key}'")
            setattr(table, key, value)
        return table

    # Reading and rewriting what was written (precision passes) ----------------------------------------------

    def builtin(self, operator: Any) -> str:
        """The BuiltinOperator name of an operator (CONV_2D, ...)."""
        return _builtin_names(self.fb)[self._codes[operator.opcodeIndex].builtinCode]

    def version(self, operator: Any) -> int:
        return self._codes[operator.opcodeIndex].version

    def set_version(self, operator: Any, version: int) -> None:
        """Point the operator at the code of its builtin with `version`: a quantized kernel is a later version of
        the float one, and the resolver picks kernels by (builtin, version)."""
        operator.opcodeIndex = self._opcode(self._codes[operator.opcodeIndex].builtinCode, version)

    def is_constant(self, index: int) -> bool:
        return index >= 0 and self.tensors[index].buffer != 0

    def constant_data(self, index: int) -> np.ndarray:
        """The data of a constant tensor, as written."""
        tensor = self.tensors[index]
        dtype = numpy_dtype(tensor.type)
        raw = self.buffers[tensor.buffer].data
        return np.frombuffer(np.asarray(raw, dtype=np.uint8).tobytes(), dtype=dtype).reshape(tensor.shape)

    def make_computed(self, index: int) -> None:
        """Turn a constant tensor into one an operator computes (its data is dropped at the next compaction)."""
        self._forget_constant(index)
        self.tensors[index].buffer = 0

    def quantization(self, scale: Sequence[float] | float, zero_point: Sequence[int] | int,
                     axis: int = 0) -> Any:
        """QuantizationParametersT: real = scale * (q - zero_point), per tensor, or per slice along `axis`."""
        params = self.fb.QuantizationParametersT()
        params.scale = [float(s) for s in np.atleast_1d(scale)]
        params.zeroPoint = [int(z) for z in np.atleast_1d(zero_point)]
        params.quantizedDimension = int(axis)
        return params

    def remove_unused_tensors(self) -> int:
        """Drop tensors no operator, input or output refers to, buffers no tensor refers to and operator codes
        no operator uses, renumbering the rest; returns how many tensors went. Precision passes leave behind the
        float weights they replaced and the float versions of the ops they quantized."""
        used = set(self.inputs) | set(self.outputs)
        for operator in self.operators:
            used.update(i for i in operator.inputs if i >= 0)
            used.update(operator.outputs)
            used.update(operator.intermediates or [])
        kept = [i for i in range(len(self.tensors)) if i in used]
        renumber = {old: new for new, old in enumerate(kept)}
        renumber[-1] = -1
        removed = len(self.tensors) - len(kept)
        self.tensors = [self.tensors[i] for i in kept]
        for operator in self.operators:
            operator.inputs = [renumber[i] for i in operator.inputs]
            operator.outputs = [renumber[i] for i in operator.outputs]
            if operator.intermediates:
                operator.intermediates = [renumber[i] for i in operator.intermediates]
        self.inputs = [renumber[i] for i in self.inputs]
        self.outputs = [renumber[i] for i in self.outputs]
        self._constants = {key: renumber[i] for key, i in self._constants.items() if i in renumber}
        buffers = sorted({0} | {tensor.buffer for tensor in self.tensors})
        new_buffer = {old: new for new, old in enumerate(buffers)}
        self.buffers = [self.buffers[i] for i in buffers]
        for tensor in self.tensors:
            tensor.buffer = new_buffer[tensor.buffer]
        codes = sorted({operator.opcodeIndex for operator in self.operators})
        new_code = {old: new for new, old in enumerate(codes)}
        self._codes = [self._codes[i] for i in codes]
        self._opcodes = {key: new_code[i] for key, i in self._opcodes.items() if i in new_code}
        for operator in self.operators:
            operator.opcodeIndex = new_code[operator.opcodeIndex]
        return removed

    def _forget_constant(self, index: int) -> None:
        self._constants = {key: i for key, i in self._constants.items() if i != index}

    def _opcode(self, code: int, version: int) -> int:
        key = (code, version)
        if key not in self._opcodes:
            entry = self.fb.OperatorCodeT()
            entry.builtinCode = code
            # Codes above 127 do not fit the deprecated int8 field, which then holds PLACEHOLDER_FOR_GREATER_OP_CODES.
            entry.deprecatedBuiltinCode = min(code, self.fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            entry.version = version
            self._opcodes[key] = len(self._codes)
            self._codes.append(entry)
        return self._opcodes[key]

    def remove_unused_operators(self) -> int:
        """Drop operators none of whose outputs is used (a transpose that a later one was composed past);
        returns how many. Their tensors stay: unused tensors cost a table entry, not a kernel."""
        removed = 0
        while True:
            used = set(self.outputs) | {i for op in self.operators for i in op.inputs}
            kept = [op for op in self.operators if any(o in used for o in op.outputs)]
            if len(kept) == len(self.operators):
                return removed
            removed += len(self.operators) - len(kept)
            self.operators = kept

    def serialize(self) -> bytes:
        import flatbuffers

        subgraph = self.fb.SubGraphT()
        subgraph.name = self.name
        subgraph.tensors = self.tensors
        subgraph.inputs = list(self.inputs)
        subgraph.outputs = list(self.outputs)
        subgraph.operators = self.operators
        model = self.fb.ModelT()
        model.version = SCHEMA_VERSION
        model.description = "hwopt"
        model.operatorCodes = self._codes
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())
