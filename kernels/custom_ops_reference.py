"""hwopt's custom ops for `onnx.reference.ReferenceEvaluator`: runs a model holding them anywhere, slowly.

For tests and for checking a rewritten model without a runtime that has hwopt's kernels: the numbers come from
the NumPy references (kernels/reference.py's semantics, written out here over the dense weight).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from optimizer.kernels.block_sparse import BlockSparseMatrix
from optimizer.kernels.custom_ops import DOMAIN


class BlockSparseMatMul(OpRun):
    op_domain = DOMAIN

    def _run(self, x, values, block_rows, strip_ptr, bias=None, k=None, n=None, block_shape=None,
             activation="none"):
        weight = BlockSparseMatrix((int(k), int(n)), tuple(int(b) for b in block_shape), strip_ptr, block_rows,
                                   values).to_dense()
        y = x.astype(np.float64) @ weight.astype(np.float64)
        if bias is not None:
            y = y + bias
        activation = activation.decode() if isinstance(activation, bytes) else activation
        if activation == "relu":
            y = np.maximum(y, 0)
        elif activation == "gelu":
            from scipy.special import erf  # scipy comes with scikit-learn in the dev extras

            y = 0.5 * y * (1 + erf(y / np.sqrt(2)))
        return (y.astype(np.float32),)


CUSTOM_OPS = [BlockSparseMatMul]


def run_reference(model, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of `model` (an onnx.ModelProto) on `feeds`, hwopt's custom ops included."""
    return ReferenceEvaluator(model, new_ops=CUSTOM_OPS).run(None, dict(feeds))
