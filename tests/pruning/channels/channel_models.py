"""Tiny models for channel pruning, built from ONNX text: every op kind the dependency analysis handles."""

import numpy as np

from optimizer.ir import infer_shapes
from optimizer.testing import model_from_text

# c1 (16 ch) -> BatchNorm -> SiLU as Mul(x, Sigmoid(x)) -> per-channel Mul -> Split in halves:
#   h0 -> depthwise Conv -> Resize x2 -> MaxPool /2        (group: c1's first half with the depthwise conv)
#   h1 -> Conv c2 -> residual Add with h1                  (group: c1's second half with c2)
# Concat of both -> Conv c3 -> graph output (pinned).
RICH = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
    c1 = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
    n1 = BatchNormalization (c1, s1, t1, m1, v1)
    g1 = Sigmoid (n1)
    a1 = Mul (n1, g1)
    p1 = Mul (a1, k1)
    h0, h1 = Split <axis = 1> (p1, sizes)
    d0 = Conv <group = 8, pads = [1, 1, 1, 1]> (h0, wd, bd)
    r0 = Resize <mode = "nearest"> (d0, , scales)
    m0 = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (r0)
    c2 = Conv (h1, w2, b2)
    s2 = Add (c2, h1)
    cat = Concat <axis = 1> (m0, s2)
    y = Conv <pads = [1, 1, 1, 1]> (cat, w3, b3)
}
"""
# The channels of each prunable group that the zeroed weights make removable, as positions in c1's output.
FIRST_HALF_REMOVED = (1, 4, 5, 6)
SECOND_HALF_REMOVED = (0, 2, 3, 7)


def rich_weights(rng: np.random.Generator, zero_removed: bool = True) -> dict[str, np.ndarray]:
    """Weights of RICH; with `zero_removed`, the channels listed above have zero filters and are read by zero
    weight columns, so removing them leaves the output exactly as it was."""
    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    weights = {
        "w1": normal(16, 3, 3, 3), "b1": normal(16),
        "s1": rng.uniform(0.5, 2, 16).astype(np.float32), "t1": normal(16), "m1": normal(16),
        "v1": rng.uniform(0.5, 2, 16).astype(np.float32),
        "k1": rng.uniform(0.5, 2, (1, 16, 1, 1)).astype(np.float32),
        "sizes": np.array([8, 8], dtype=np.int64),
        "wd": normal(8, 1, 3, 3), "bd": normal(8),
        "scales": np.array([1, 1, 2, 2], dtype=np.float32),
        "w2": normal(8, 8, 1, 1), "b2": normal(8),
        "w3": normal(4, 16, 3, 3), "b3": normal(4),
    }
    if zero_removed:
        first = list(FIRST_HALF_REMOVED)
        second = list(SECOND_HALF_REMOVED)
        weights["w1"][first] = 0
        weights["w1"][[8 + c for c in second]] = 0
        weights["wd"][first] = 0
        weights["w2"][second] = 0
        weights["w2"][:, second] = 0
        weights["w3"][:, first] = 0
        weights["w3"][:, [8 + c for c in second]] = 0
    return weights


def build(text: str, **weights: np.ndarray):
    model = model_from_text(text, **weights)
    infer_shapes(model)
    return model
