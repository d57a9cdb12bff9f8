"""N:M semi-structured pruning: at most N nonzeros in every M consecutive weights along the input dimension.

2:4 along the reduction (input) dimension is the pattern NVIDIA's sparse tensor cores (Ampere and later, Orin's
GPU) run at up to twice the dense rate, which TensorRT uses when the engine is built with sparse weights (see
patterns.py and the TensorRT backend). The axis is each layer's input axis: K of a MatMul weight [K, N], C_in of
a Conv weight [C_out, C_in / g, kh, kw] at every (c_out, kh, kw), K of a Gemm B whichever way it is stored.

The sparsity is fixed by N and M (1 - N/M), whatever `sparsity` says. When the input dimension is not a
multiple of M its last channels (the tail) stay dense, and a layer with fewer than M input channels (a
depthwise Conv, an RGB stem) is not pruned at all; both are reported, since such a layer cannot run sparse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizer.pruning.layers import Layer
from optimizer.pruning.masks import n_m_mask
from optimizer.pruning.unstructured import Scored


def n_m_masks(layers: Sequence[Layer], scored: Sequence[Scored], n: int, m: int
              ) -> tuple[list[np.ndarray | None], list[str]]:
    """Keep masks (None for a layer left dense) and each layer's note on its dense tail."""
    masks: list[np.ndarray | None] = []
    notes = []
    for layer, (weight, importance) in zip(layers, scored):
        size = layer.input_size
        if size < m:
            masks.append(None)
            notes.append(f"input dimension {size} < {m}: no {n}:{m} group, left dense")
            continue
        masks.append(n_m_mask(weight, n, m, axis=layer.input_axis, importance=importance))
        tail = size % m
        notes.append(f"last {tail} of {size} input channels left dense (not a multiple of {m})" if tail else "")
    return masks, notes
