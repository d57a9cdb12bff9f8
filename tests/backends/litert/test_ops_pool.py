"""Max, average and global pooling on convolution outputs (NHWC), and the pooling attributes that are refused
with the node named."""

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert.convert import ConversionError, convert
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.testing import model_from_text

HEADER = '<ir_version: 9, opset_import: ["" : 17]>'
W = (np.random.default_rng(0).standard_normal((4, 3, 1, 1)) / np.sqrt(3)).astype(np.float32)


@pytest.mark.parametrize("pool, attributes, size, out", [
    ("MaxPool", "kernel_shape = [2, 2], strides = [2, 2]", 8, 4),
    ("MaxPool", "kernel_shape = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1]", 9, 5),    # SAME
    ("MaxPool", "kernel_shape = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1]", 8, 4),    # PADV2 with -max
    ("MaxPool", "kernel_shape = [5, 5], pads = [2, 2, 2, 2]", 8, 8),                      # YOLO's SPPF
    ("MaxPool", "kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1", 8, 4),          # ceil_mode moot
    ("AveragePool", "kernel_shape = [2, 2], strides = [2, 2]", 8, 4),
    ("AveragePool", "kernel_shape = [3, 3], pads = [1, 1, 1, 1]", 8, 8),                  # count_include_pad=0
    ("AveragePool", "kernel_shape = [3, 3], strides = [1, 1]", 8, 6),
])
def test_pooling(matches_onnxruntime, pool, attributes, size, out):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, {size}, {size}] x) => (float[1, 4, {out}, {out}] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            y = {pool} <{attributes}> (a)
        }}""", w=W)
    assert {"MaxPool": "MAX_POOL_2D", "AveragePool": "AVERAGE_POOL_2D"}[pool] in ops
    assert ops.count("TRANSPOSE") == 2


@pytest.mark.parametrize("pool, builtin", [("GlobalAveragePool", "MEAN"), ("GlobalMaxPool", "REDUCE_MAX")])
def test_global_pooling(matches_onnxruntime, pool, builtin):
    """Squeeze-and-excitation: the pooled [1, C, 1, 1] scales the convolution's output, all NHWC."""
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            p = {pool} (a)
            s = Sigmoid(p)
            y = Mul(a, s)
        }}""", w=W)
    assert builtin in ops and ops.count("TRANSPOSE") == 2


def test_global_pooling_of_a_sequence(matches_onnxruntime):
    matches_onnxruntime(f"""{HEADER}
        g (float[1, 4, 16] x) => (float[1, 4, 1] y) {{
            y = GlobalAveragePool(x)
        }}""")


@pytest.mark.parametrize("pool, attributes, problem", [
    ("MaxPool", "kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1", r"ceil_mode=1 \(output 4x4 instead of 3x3\)"),
    ("AveragePool", "kernel_shape = [3, 3], pads = [1, 1, 1, 1], count_include_pad = 1", "count_include_pad=1"),
    ("MaxPool", "kernel_shape = [2, 2], dilations = [2, 2]", "dilated pooling"),
])
def test_an_unsupported_pooling_attribute_is_named_with_its_node(pool, attributes, problem):
    model = model_from_text(f"""{HEADER}
        g (float[1, 4, 7, 7] x) => (float[1, 4, 4, 4] y) {{
            y = {pool} <{attributes}> (x)
        }}""")
    model.graph.node(0).name = "the_pool"
    with pytest.raises(ConversionError, match=rf"the_pool \({pool}\): .*{problem}") as caught:
        convert(model, CONVERTERS)
    assert caught.value.node.name == "the_pool"
