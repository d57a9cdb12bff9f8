"""Generate the demo model used by `make demo`: a small image classifier as an exporter would leave it.

It has what real exported models have and hwopt's default pipeline cleans up: BatchNorm after each Conv,
HardSwish spelled out as `x * Clip(x + 3, 0, 6) / 6`, an inference Dropout, an Identity, a Reshape computed
from Shape at run time, and a classifier written as MatMul + Add. Inputs have a dynamic batch dim.

    python -m optimizer.examples.make_demo_model build/demo/demo.onnx
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir

from optimizer.ir import save_model

DEMO_MODEL_TEXT = """
<ir_version: 9, opset_import: ["" : 17]>
demo_classifier (float[batch, 3, 128, 128] image) => (float[batch, 10] logits) {
    conv1 = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (image, w1, b1)
    bn1 = BatchNormalization (conv1, s1, t1, m1, v1)
    shifted = Add (bn1, three)
    clipped = Clip (shifted, zero, six)
    gated = Mul (bn1, clipped)
    act1 = Div (gated, six)
    conv2 = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (act1, w2, b2)
    bn2 = BatchNormalization (conv2, s2, t2, m2, v2)
    act2 = Relu (bn2)
    dropped = Dropout (act2)
    pooled = GlobalAveragePool (dropped)
    same = Identity (pooled)
    dims = Shape (same)
    batch_dim = Slice (dims, zero_index, one_index)
    flat_shape = Concat <axis = 0> (batch_dim, minus_one)
    flat = Reshape (same, flat_shape)
    product = MatMul (flat, fc_w)
    logits = Add (product, fc_b)
}
"""


def _tensor(name: str, array: np.ndarray) -> ir.Tensor:
    return ir.tensor(array, name=name)


def build_demo_model(seed: int = 0) -> ir.Model:
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def batchnorm(prefix: str, channels: int) -> list[ir.Tensor]:
        return [
            _tensor(f"s{prefix}", (1.0 + normal(channels, scale=0.1))),
            _tensor(f"t{prefix}", normal(channels, scale=0.1)),
            _tensor(f"m{prefix}", normal(channels, scale=0.1)),
            _tensor(f"v{prefix}", (1.0 + np.abs(normal(channels, scale=0.1)))),
        ]

    initializers = [
        _tensor("w1", normal(32, 3, 3, 3)), _tensor("b1", normal(32)), *batchnorm("1", 32),
        _tensor("w2", normal(64, 32, 3, 3, scale=0.05)), _tensor("b2", normal(64)), *batchnorm("2", 64),
        _tensor("fc_w", normal(64, 10)), _tensor("fc_b", normal(10)),
        _tensor("three", np.array(3.0, np.float32)), _tensor("six", np.array(6.0, np.float32)),
        _tensor("zero", np.array(0.0, np.float32)),
        _tensor("zero_index", np.array([0], np.int64)), _tensor("one_index", np.array([1], np.int64)),
        _tensor("minus_one", np.array([-1], np.int64)),
    ]
    # The text declares no initializers (listing 20 tensors inline would bury the graph), so the parser
    # warns once per weight before `initializers=` attaches them; those warnings are expected here.
    parser_logger = logging.getLogger("onnx_ir")
    level = parser_logger.level
    parser_logger.setLevel(logging.ERROR)
    try:
        return ir.from_onnx_text(DEMO_MODEL_TEXT, initializers=initializers)
    finally:
        parser_logger.setLevel(level)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m optimizer.examples.make_demo_model OUTPUT.onnx", file=sys.stderr)
        return 2
    path = Path(argv[0])
    save_model(build_demo_model(), path)
    print(f"wrote the demo model to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
