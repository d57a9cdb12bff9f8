"""Dynamic INT8 for MatMul-heavy models (transformers): weights int8 ahead of time, activations quantized per call.

Each `MatMul(x, W)` with a constant 2-D weight becomes ONNX Runtime's `com.microsoft.DynamicQuantizeMatMul`,
which quantizes `x` to uint8 with a range taken from the tensor at run time and multiplies with int8 weights in
one kernel, the bias `Add` that follows folded in. Two choices make it more faithful and faster than
`onnxruntime.quantization.quantize_dynamic`:

- weights are quantized per output column (that tool's default is one scale per tensor, which lets a single
  large column flatten the rest);
- MatMuls that read the same input (a transformer's Q, K and V projections) are packed into one, so the input is
  quantized once and the kernel runs one larger GEMM, followed by a Split.

MatMuls between two activations (attention scores) stay float: their ranges move with every input, and at
sequence lengths where they matter they cost less than the quantization they would need.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from optimizer.ir import is_standard_op
from optimizer.passes.base import OptimizerPass, PassConfig
from optimizer.quantization.schemes import MICROSOFT_DOMAIN
from optimizer.quantization.selection import is_excluded
from optimizer.quantization.weights import (
    add_initializer,
    constant_array,
    quantize_symmetric_int8,
    symmetric_int8_scales,
)


@dataclass(frozen=True)
class DynamicInt8Config(PassConfig):
    exclude: tuple[str, ...] = ()
    pack_shared_inputs: bool = True
    # Below this many weights a MatMul is cheaper in float than quantizing its input at run time.
    min_weight_elements: int = 4096


@dataclass
class _Candidate:
    matmul: ir.Node
    weight: np.ndarray  # [K, N]
    bias: np.ndarray | None
    bias_add: ir.Node | None

    @property
    def output(self) -> ir.Value:
        return (self.bias_add or self.matmul).outputs[0]


class QuantizeDynamicInt8(OptimizerPass):
    name = "dynamic-int8"
    summary = "MatMul with constant weights -> DynamicQuantizeMatMul (per-column int8 weights, packed QKV)"
    config_type = DynamicInt8Config

    def __init__(self, config: DynamicInt8Config | None = None) -> None:
        super().__init__(config)
        self.precisions: dict[str, str] = {}

    def rewrite(self, model: ir.Model) -> int:
        graph = model.graph
        groups: dict[ir.Value, list[_Candidate]] = defaultdict(list)
        for node in graph:
            candidate = self._candidate(node)
            if candidate is not None:
                groups[node.inputs[0]].append(candidate)
        rewrites = 0
        for source, candidates in groups.items():
            by_depth: dict[int, list[_Candidate]] = defaultdict(list)
            for candidate in candidates:
                by_depth[candidate.weight.shape[0]].append(candidate)
            for same_k in by_depth.values():
                packed = self.config.pack_shared_inputs and len(same_k) > 1
                for batch in [same_k] if packed else [[candidate] for candidate in same_k]:
                    self._replace_packed(graph, source, batch)
                rewrites += len(same_k)
        if rewrites:
            model.opset_imports.setdefault(MICROSOFT_DOMAIN, 1)
        return rewrites

    def _candidate(self, node: ir.Node) -> _Candidate | None:
        if node.op_type != "MatMul" or not is_standard_op(node):
            return None
        label = node.name or node.outputs[0].name
        if is_excluded(node, self.config.exclude):
            self.precisions[label] = "float32 (excluded)"
            return None
        weight = constant_array(node.inputs[1])
        if weight is None:
            return None  # activation x activation: stays float, see the module docstring
        x = node.inputs[0]
        if weight.ndim != 2 or weight.dtype != np.float32 or x is None or x.dtype not in (None, ir.DataType.FLOAT):
            self.precisions[label] = "float32 (weight is not a 2-D float32 constant)"
            return None
        if weight.size < self.config.min_weight_elements:
            self.precisions[label] = f"float32 (only {weight.size} weights)"
            return None
        bias, bias_add = self._following_bias(node, weight.shape[1])
        return _Candidate(node, weight, bias, bias_add)

    @staticmethod
    def _following_bias(matmul: ir.Node, columns: int) -> tuple[np.ndarray | None, ir.Node | None]:
        output = matmul.outputs[0]
        uses = list(output.uses())
        if len(uses) != 1 or output in matmul.graph.outputs:
            return None, None
        add, index = uses[0].node, uses[0].idx
        if add.op_type != "Add" or not is_standard_op(add) or add.graph is not matmul.graph:
            return None, None
        bias = constant_array(add.inputs[1 - index])
        if bias is None or bias.dtype != np.float32 or bias.size != columns or bias.ndim > 1:
            return None, None
        return bias.reshape(columns), add

    def _replace_packed(self, graph: ir.Graph, source: ir.Value, candidates: list[_Candidate]) -> None:
        weight = np.concatenate([c.weight for c in candidates], axis=1)
        has_bias = any(c.bias is not None for c in candidates)
        bias = np.concatenate([
            c.bias if c.bias is not None else np.zeros(c.weight.shape[1], np.float32) for c in candidates
        ]) if has_bias else None
        scales = symmetric_int8_scales(weight, axis=1)
        quantized = quantize_symmetric_int8(weight, scales, axis=1)
        first = candidates[0].matmul
        base = first.name or first.outputs[0].name or "matmul"
        inputs = [
            source,
            add_initializer(graph, f"{base}_weight_int8", quantized),
            add_initializer(graph, f"{base}_weight_scale", scales),
            add_initializer(graph, f"{base}_weight_zero_point", np.zeros_like(quantized[0])),
        ]
        if bias is not None:
            inputs.append(add_initializer(graph, f"{base}_bias", bias.astype(np.float32)))
        # Insert after the last of the replaced nodes' weight/bias producers is not needed: all are constants,
        # so the fused node can sit where the first MatMul was.
        fused = ir.node("DynamicQuantizeMatMul", inputs, domain=MICROSOFT_DOMAIN, name=f"{base}_dynamic_int8")
        graph.insert_before(first, fused)
        results = [fused.outputs[0]]
        if len(candidates) > 1:
            split_sizes = add_initializer(graph, f"{base}_split", np.array([c.weight.shape[1] for c in candidates],
                                                                            np.int64))
            split = ir.node("Split", [fused.outputs[0], split_sizes], {"axis": -1}, num_outputs=len(candidates),
                            name=f"{base}_unpack")
            graph.insert_after(fused, split)
            results = list(split.outputs)
        for candidate, result in zip(candidates, results):
            old = candidate.output
            result.name, old.name = old.name, f"{old.name}_float"
            result.shape, result.type = old.shape, ir.TensorType(ir.DataType.FLOAT)
            old.replace_all_uses_with(result, replace_graph_outputs=True)
            stale = [candidate.bias_add, candidate.matmul] if candidate.bias_add else [candidate.matmul]
            graph.remove(stale, safe=True)
            packed = f", packed x{len(candidates)}" if len(candidates) > 1 else ""
            self.precisions[candidate.matmul.name or old.name] = f"int8 dynamic (per-column weights{packed})"
