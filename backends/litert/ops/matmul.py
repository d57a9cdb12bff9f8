"""MatMul and Gemm -> FULLY_CONNECTED when the right operand is a constant matrix, else BATCH_MATMUL.

FULLY_CONNECTED takes its weights as [N, K] (ONNX's [K, N], transposed once here) and, with keepNumDims, keeps
a [B, S, K] input 3-D, so a transformer's projections need no reshape; a following Add of a constant [N] bias
becomes the op's bias. BATCH_MATMUL broadcasts batch dims as ONNX does; a 1-D operand (a vector on either side)
is made 2-D and the extra axis dropped after, as ONNX defines it. Both run in ONNX's layout.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import GraphConverter

NONE = 0  # ActivationFunctionType.NONE


def fully_connected(c: GraphConverter, node: ir.Node, x: int, weights: np.ndarray, bias: np.ndarray | None,
                    out: int) -> None:
    """out = x @ weights.T + bias, weights [N, K]."""
    inputs = [x, c.graph.add_constant(f"{node.name}_weights", np.ascontiguousarray(weights)),
              c.graph.add_constant(f"{node.name}_bias", bias) if bias is not None else -1]
    c.graph.add_operator("FULLY_CONNECTED", inputs, [out],
                         c.graph.options("FullyConnectedOptions", fusedActivationFunction=NONE, keepNumDims=True),
                         version=5)


def _bias_add(c: GraphConverter, node: ir.Node, n: int) -> tuple[ir.Node, np.ndarray] | None:
    """The Add that follows `node` with a constant [N] (or [1, N], ...) bias, when it can be the op's bias."""
    output = node.outputs[0]
    uses = list(output.uses())
    if len(uses) != 1 or output in c.model.graph.outputs:
        return None
    add = uses[0][0]
    if add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.inputs) != 2:
        return None
    other = add.inputs[1] if add.inputs[0] is output else add.inputs[0]
    bias = c.constant(other)
    if bias is None or bias.dtype != np.float32 or bias.size != n or bias.shape[-1:] != (n,) \
            or c.shape(add.outputs[0]) != c.shape(output):
        return None
    return add, bias.reshape(n)


def matmul(c: GraphConverter, node: ir.Node) -> None:
    a, b = node.inputs[0], node.inputs[1]
    output = node.outputs[0]
    weights = c.constant(b)
    if weights is not None and weights.ndim == 2 and c.constant(a) is None and c.rank(a) >= 2 \
            and weights.dtype == np.float32:
        fused = _bias_add(c, node, weights.shape[1])
        bias = None
        if fused is not None:
            add, bias = fused
            c.fuse(add)
            output = add.outputs[0]
        fully_connected(c, node, c.onnx_layout(a), weights.T, bias, c.output(output))
        return
    batch_matmul(c, node, c.onnx_layout(a), c.shape(a), c.onnx_layout(b), c.shape(b), c.output(output),
                 c.dtype(output))


def batch_matmul(c: GraphConverter, node: ir.Node, a: int, a_shape: tuple[int, ...], b: int,
                 b_shape: tuple[int, ...], out: int, dtype: np.dtype) -> None:
    """out = a @ b with ONNX's MatMul semantics (numpy's matmul: broadcast batch dims, 1-D operands)."""
    if len(a_shape) == 1:
        a_shape = (1, *a_shape)
        a = c.op("RESHAPE", [a, c.int32(a_shape)], a_shape, dtype, name=f"{node.name}_row")
    if len(b_shape) == 1:
        b_shape = (*b_shape, 1)
        b = c.op("RESHAPE", [b, c.int32(b_shape)], b_shape, dtype, name=f"{node.name}_column")
    options = c.graph.options("BatchMatMulOptions", adjX=False, adjY=False)
    product_shape = (*np.broadcast_shapes(a_shape[:-2], b_shape[:-2]), a_shape[-2], b_shape[-1])
    out_shape = tuple(c.graph.tensors[out].shape)
    if product_shape == out_shape:
        c.graph.add_operator("BATCH_MATMUL", [a, b], [out], options)
        return
    product = c.op("BATCH_MATMUL", [a, b], product_shape, dtype, name=f"{node.name}_product", options=options)
    c.graph.add_operator("RESHAPE", [product, c.int32(out_shape)], [out])


def gemm(c: GraphConverter, node: ir.Node) -> None:
    """Y = alpha * A' @ B' + beta * C, A' and B' optionally transposed."""
    a, b = node.inputs[0], node.inputs[1]
    bias_value = node.inputs[2] if len(node.inputs) > 2 else None
    alpha = node.attributes.get_float("alpha", 1.0)
    beta = node.attributes.get_float("beta", 1.0)
    trans_a = node.attributes.get_int("transA", 0)
    trans_b = node.attributes.get_int("transB", 0)
    output = node.outputs[0]
    m, n = c.shape(output)
    dtype = c.dtype(output)
    x = c.onnx_layout(a)
    if trans_a:
        k = c.shape(a)[0]
        x = c.op("TRANSPOSE", [x, c.int32([1, 0])], (m, k), dtype, name=f"{node.name}_a_transposed")
    weights = c.constant(b)
    bias = c.constant(bias_value) if bias_value is not None else None
    out = c.output(output)
    # C broadcasts to [M, N]: as FULLY_CONNECTED's bias when it is one row, else added after.
    row_bias = bias is not None and bias.size in (1, n) and (bias.ndim <= 1 or bias.shape[-2:-1] in ((), (1,)))
    needs_add = bias_value is not None and beta != 0.0 and not (weights is not None and row_bias)
    product = c.graph.add_tensor(f"{node.name}_product", (m, n), dtype) if needs_add else out
    if weights is not None and dtype == np.float32:
        matrix = (weights if trans_b else weights.T) * np.float32(alpha)
        fc_bias = None
        if bias_value is not None and beta != 0.0 and row_bias:
            fc_bias = (np.broadcast_to(bias.reshape(-1), (n,)) * np.float32(beta)).astype(dtype)
        fully_connected(c, node, x, matrix.astype(dtype), fc_bias, product)
    else:
        y = c.onnx_layout(b)
        if trans_b:
            k = c.shape(b)[1]
            y = c.op("TRANSPOSE", [y, c.int32([1, 0])], (k, n), dtype, name=f"{node.name}_b_transposed")
        scaled = alpha != 1.0
        target = c.graph.add_tensor(f"{node.name}_unscaled", (m, n), dtype) if scaled else product
        c.graph.add_operator("BATCH_MATMUL", [x, y], [target],
                             c.graph.options("BatchMatMulOptions", adjX=False, adjY=False))
        if scaled:
            c.graph.add_operator("MUL", [target, c.scalar(alpha, dtype)], [product],
                                 c.graph.options("MulOptions", fusedActivationFunction=NONE))
    if not needs_add:
        return
    if bias is not None:
        addend = c.graph.add_constant(f"{node.name}_c", (bias * np.asarray(beta, dtype)).astype(dtype))
    else:
        addend = c.onnx_layout(bias_value)
        if beta != 1.0:
            addend = c.op("MUL", [addend, c.scalar(beta, dtype)], c.shape(bias_value), dtype,
                          name=f"{node.name}_c_scaled", options=c.graph.options("MulOptions"))
    c.graph.add_operator("ADD", [product, addend], [out], c.graph.options("AddOptions", fusedActivationFunction=NONE))


CONVERTERS = {"MatMul": matmul, "Gemm": gemm}
