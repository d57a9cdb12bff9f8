"""ONNX IR -> one TFLite subgraph, with image tensors kept channels-last.

ONNX image models are NCHW; TFLite's convolution, pooling and resize kernels are NHWC. Transposing around every
layer would cost more than the layers, so each ONNX value is placed in the TFLite graph in the layout its
producer wants: convolutions and pooling produce NHWC, and ops that do not care about layout (activations,
elementwise arithmetic with constants, concatenation and splitting along a remapped axis) pass NHWC through,
with constants permuted at conversion time. A transpose is written only where an NHWC value meets an op that
needs ONNX's own layout (a Reshape that flattens channels, the graph's outputs) or an NCHW value meets a
convolution, and each such transpose is written once per value.

The converters for each op are in ops/, one module per family, registered in CONVERTERS. Conversion works on a
copy of the model whose shape computations are folded to constants first (fold.py): TFLite shapes are static.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.flatbuffer import TFLiteGraph
from optimizer.backends.litert.fold import constant_value, fold_static_values

Layout = Literal["onnx", "nhwc"]
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


class ConversionError(Exception):
    """A node this converter cannot express in TFLite; carries the node so pre-flight can name it."""

    def __init__(self, node: ir.Node, problem: str) -> None:
        super().__init__(f"{node.name or '(unnamed)'} ({node.op_type}): {problem}")
        self.node = node
        self.problem = problem


@dataclass(frozen=True)
class Placed:
    """Where an ONNX value lives in the TFLite graph, and in which layout."""

    tensor: int
    layout: Layout


Converter = Callable[["GraphConverter", ir.Node], None]


class GraphConverter:
    """Converts the nodes of one graph in order; converters read inputs and write outputs through it."""

    def __init__(self, model: ir.Model, *, io_layout: Layout = "onnx") -> None:
        self.model = model
        self.graph = TFLiteGraph(model.graph.name or "main")
        self.io_layout = io_layout
        self.values: dict[str, Placed] = {}
        self._other_layout: dict[str, int] = {}
        self._transposed: dict[str, tuple[int, tuple[int, ...]]] = {}
        self.fused: set[int] = set()
        """ids of the nodes a converter already expressed as part of a pattern (x * 0.5 * (1 + erf(x / sqrt 2))
        -> GELU); convert_graph skips them."""

    @property
    def opset(self) -> int:
        imports = self.model.opset_imports
        return imports.get("", imports.get("ai.onnx", 1))

    # Reading inputs ---------------------------------------------------------------------------------------

    def constant(self, value: ir.Value | None) -> np.ndarray | None:
        """The value's data when it is a constant (an initializer or a Constant's output), else None."""
        if value is None:
            return None
        data = constant_value(value)
        if data is not None:
            return data
        producer = value.producer()
        if producer is None or producer.domain not in ("", "ai.onnx"):
            return None
        if producer.op_type == "ConstantOfShape":
            # Left unfolded by constant folding when large; with a constant shape it is a constant all the same.
            shape = self.constant(producer.inputs[0])
            attribute = producer.attributes.get("value")
            fill = attribute.as_tensor().numpy().reshape(()) if attribute is not None else np.float32(0)
            return None if shape is None else np.full(tuple(int(d) for d in shape), fill, dtype=fill.dtype)
        return None

    def placed(self, value: ir.Value) -> Placed:
        if value.name not in self.values:
            data = self.constant(value)
            if data is None:
                raise KeyError(f"value '{value.name}' is used before it is produced")
            self.values[value.name] = Placed(self.graph.add_constant(value.name, data), "onnx")
        return self.values[value.name]

    def in_layout(self, value: ir.Value, layout: Layout) -> int:
        """The tensor of `value` in `layout`: rank-4 values are transposed (once) when they are in the other."""
        placed = self.placed(value)
        if placed.layout == layout or self.rank(value) != 4:
            return placed.tensor
        if value.name not in self._other_layout:
            data = self.constant(value)
            if data is not None:
                permuted = data.transpose(TO_NHWC if layout == "nhwc" else TO_NCHW)
                self._other_layout[value.name] = self.graph.add_constant(f"{value.name}_{layout}", permuted)
            else:
                perm = TO_NHWC if layout == "nhwc" else TO_NCHW
                source = placed.tensor
                if value.name in self._transposed:
                    # The value is itself a transpose of `source`: one transpose of the source does both.
                    source, first = self._transposed[value.name]
                    perm = tuple(first[i] for i in perm)
                shape = self.shape(value)
                out = self.graph.add_tensor(f"{value.name}_{layout}", self.shape_in(shape, layout), self.dtype(value))
                self.graph.add_operator("TRANSPOSE", [source, self.int32(perm)], [out])
                self._other_layout[value.name] = out
        return self._other_layout[value.name]

    def nhwc(self, value: ir.Value) -> int:
        return self.in_layout(value, "nhwc")

    def onnx_layout(self, value: ir.Value) -> int:
        return self.in_layout(value, "onnx")

    def layout_of(self, value: ir.Value) -> Layout:
        return self.placed(value).layout

    # Writing outputs --------------------------------------------------------------------------------------

    def output(self, value: ir.Value, layout: Layout = "onnx") -> int:
        """A tensor for the node output `value` in `layout` (a rank-4 NHWC tensor gets the permuted shape)."""
        shape = self.shape(value)
        layout = layout if len(shape) == 4 else "onnx"
        index = self.graph.add_tensor(value.name, self.shape_in(shape, layout), self.dtype(value))
        self.values[value.name] = Placed(index, layout)
        return index

    def transposed(self, value: ir.Value, source: int, perm: tuple[int, ...]) -> None:
        """Record that `value` is TRANSPOSE(source, perm), so a later change of layout composes with it."""
        self._transposed[value.name] = (source, tuple(perm))

    def alias(self, value: ir.Value, placed: Placed) -> None:
        """`value` is the same tensor as an existing one (Identity, a no-op Reshape)."""
        self.values[value.name] = placed

    def fuse(self, *nodes: ir.Node) -> None:
        """`nodes` are expressed by the ops just written for an earlier node of the pattern: skip them."""
        self.fused.update(id(node) for node in nodes)

    def op(self, builtin: str, inputs: list[int], shape, dtype, *, name: str, options: Any = None,
           version: int = 1) -> int:
        """Write one op of a multi-op conversion into a new intermediate tensor (no ONNX value stands for it);
        returns that tensor."""
        out = self.graph.add_tensor(name, shape, dtype)
        self.graph.add_operator(builtin, inputs, [out], options, version=version)
        return out

    def scalar(self, value, dtype, name: str = "") -> int:
        """A 0-D constant (epsilon, a bound, a polynomial coefficient), shared between users."""
        array = np.asarray(value, dtype=dtype)
        return self.graph.add_constant(name or f"const_{array.dtype}_{array.item():g}", array)

    # Facts about values -----------------------------------------------------------------------------------

    def shape(self, value: ir.Value) -> tuple[int, ...]:
        data = self.constant(value)
        if data is not None:
            return tuple(data.shape)
        if value.shape is None or not all(isinstance(d, int) for d in value.shape):
            raise ValueError(f"value '{value.name}' has no static shape ({value.shape}); fix the input shapes "
                             "with --shape before converting to TFLite")
        return tuple(int(d) for d in value.shape)

    def rank(self, value: ir.Value) -> int:
        return len(self.shape(value))

    def dtype(self, value: ir.Value) -> np.dtype:
        data = self.constant(value)
        if data is not None:
            return data.dtype
        if value.dtype is None:
            raise ValueError(f"value '{value.name}' has no known type")
        return np.dtype(value.dtype.numpy())

    @staticmethod
    def shape_in(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
        return tuple(shape[i] for i in TO_NHWC) if layout == "nhwc" and len(shape) == 4 else shape

    def int32(self, values, name: str = "") -> int:
        """A constant int32 tensor (permutations, sizes, axes), shared between users."""
        array = np.asarray(values, dtype=np.int32)
        return self.graph.add_constant(name or f"const_i32_{'_'.join(map(str, array.ravel()[:8]))}", array)


def convert(model: ir.Model, converters: dict[str, Converter], *, io_layout: Layout = "onnx") -> bytes:
    """The `.tflite` bytes of `model` (main graph, static shapes), or ConversionError naming the first node that
    cannot be expressed."""
    return convert_graph(model, converters, io_layout=io_layout).serialize()


def prepare(model: ir.Model) -> ir.Model:
    """The copy of `model` that is converted: shape computations folded, every shape inferred. The weights are
    shared with `model`, which is left as it is."""
    prepared = model.clone()
    fold_static_values(prepared)
    return prepared


def unsupported_nodes(model: ir.Model, converters: dict[str, Converter]) -> list[ir.Node]:
    """The nodes of a prepared model that no converter takes (control flow, custom domains, ...)."""
    converter = GraphConverter(model)
    return [node for node in model.graph
            if not all(converter.constant(value) is not None for value in node.outputs)
            and (node.domain not in ("", "ai.onnx") or node.op_type not in converters)]


def convert_graph(model: ir.Model, converters: dict[str, Converter], *, io_layout: Layout = "onnx") -> TFLiteGraph:
    """The float TFLite graph of `model`, before serialization: precision passes (FP16 weights, INT8) rewrite
    it in place. Tensors that stand for an ONNX value carry that value's name."""
    model = prepare(model)
    missing = unsupported_nodes(model, converters)
    if missing:
        others = f"; {len(missing) - 1} more node(s) have none either: " + ", ".join(
            f"{node.name or '(unnamed)'} ({node.op_type})" for node in missing[1:6]) if len(missing) > 1 else ""
        node = missing[0]
        raise ConversionError(node, f"no TFLite conversion for {node.domain + '::' if node.domain else ''}"
                                    f"{node.op_type}{others}")
    converter = GraphConverter(model, io_layout=io_layout)
    graph = converter.graph
    for value in model.graph.inputs:
        if value.name in model.graph.initializers:
            continue
        shape = converter.shape(value)
        layout: Layout = io_layout if len(shape) == 4 else "onnx"
        index = graph.add_tensor(value.name, converter.shape_in(shape, layout), converter.dtype(value))
        converter.values[value.name] = Placed(index, layout)
        graph.inputs.append(index)
    for node in model.graph:
        if id(node) in converter.fused:
            continue
        if all(converter.constant(value) is not None for value in node.outputs):
            continue  # Constant and ConstantOfShape: written as constant tensors where they are used
        try:
            converters[node.op_type](converter, node)
        except (ValueError, KeyError, IndexError) as error:
            raise ConversionError(node, str(error).strip("'\"")) from None
    for value in model.graph.outputs:
        wanted: Layout = io_layout if converter.rank(value) == 4 else "onnx"
        index = converter.in_layout(value, wanted)
        if index in graph.inputs or index in graph.outputs or _is_constant(graph, index):
            # TFLite wants each output to be a distinct computed tensor: copy it through a reshape.
            copy = graph.add_tensor(f"{value.name}_out", graph.tensors[index].shape, converter.dtype(value))
            graph.add_operator("RESHAPE", [index, converter.int32(graph.tensors[index].shape)], [copy])
            index = copy
        graph.tensors[index].name = value.name
        graph.outputs.append(index)
    graph.remove_unused_operators()
    return graph


def _is_constant(graph: TFLiteGraph, index: int) -> bool:
    return graph.tensors[index].buffer != 0
