"""Conv (plain, strided with pads SAME does not give, auto_pad, dilated, grouped, depthwise) and ConvTranspose
(VALID, SAME-equivalent pads, crops that need a slice) against ONNX Runtime."""

import numpy as np
import pytest

HEADER = '<ir_version: 9, opset_import: ["" : 17]>'


def weights(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def bias(n, seed=1):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.mark.parametrize("attributes, size, out", [
    ("pads = [1, 1, 1, 1]", 9, 9),                                  # SAME
    ("pads = [1, 1, 1, 1], strides = [2, 2]", 9, 5),                # SAME for odd sizes
    ("pads = [1, 1, 1, 1], strides = [2, 2]", 8, 4),                # not SAME: an explicit PAD, then VALID
    ("pads = [0, 2, 1, 0]", 8, (7, 8)),                             # asymmetric
    ('auto_pad = "SAME_UPPER", strides = [2, 2]', 8, 4),
    ('auto_pad = "SAME_LOWER", strides = [2, 2]', 8, 4),
    ('auto_pad = "VALID"', 8, 6),
    ("pads = [2, 2, 2, 2], dilations = [2, 2]", 8, 8),
])
def test_conv(matches_onnxruntime, attributes, size, out):
    oh, ow = (out, out) if isinstance(out, int) else out
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, {size}, {size}] x) => (float[1, 8, {oh}, {ow}] y) {{
            y = Conv <kernel_shape = [3, 3], {attributes}> (x, w, b)
        }}""", w=weights(8, 3, 3, 3), b=bias(8))
    assert "CONV_2D" in ops and ops.count("TRANSPOSE") == 2  # NCHW in and out, NHWC between


def test_conv_without_bias_feeding_a_conv_stays_nhwc(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {{
            a = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w1)
            y = Conv <kernel_shape = [1, 1]> (a, w2)
        }}""", w1=weights(8, 3, 3, 3), w2=weights(4, 8, 1, 1))
    assert ops == ["TRANSPOSE", "CONV_2D", "CONV_2D", "TRANSPOSE"]


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv(matches_onnxruntime, multiplier):
    c = 6
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, 10, 10] x) => (float[1, {c * multiplier}, 5, 5] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w1, b1)
            y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2], group = {c}> (a, w2, b2)
        }}""", w1=weights(c, 3, 1, 1), b1=bias(c), w2=weights(c * multiplier, 1, 3, 3, seed=2),
        b2=bias(c * multiplier, seed=3))
    assert "DEPTHWISE_CONV_2D" in ops


def test_grouped_conv(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 8, 6, 6] x) => (float[1, 4, 6, 6] y) {{
            y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], group = 2> (x, w, b)
        }}""", w=weights(4, 4, 3, 3), b=bias(4))
    assert "CONV_2D" in ops


@pytest.mark.parametrize("attributes, kernel, size, out, crops", [
    ("strides = [2, 2]", 2, 5, 10, False),                                       # VALID
    ("strides = [2, 2], pads = [1, 1, 1, 1]", 4, 5, 10, False),                  # SAME-equivalent
    ("strides = [2, 2], pads = [1, 1, 1, 1], output_padding = [1, 1]", 3, 5, 10, True),  # PyTorch's "same" x2
    ("strides = [1, 1], pads = [1, 1, 1, 1]", 3, 6, 6, False),
    ("strides = [2, 2], pads = [0, 0, 1, 1]", 3, 4, 8, False),                   # SAME's crop: at the end
    ("strides = [2, 2], pads = [1, 1, 0, 0]", 3, 4, 8, True),                    # at the start: a slice
])
def test_conv_transpose(matches_onnxruntime, attributes, kernel, size, out, crops):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 4, {size}, {size}] x) => (float[1, 3, {out}, {out}] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w1)
            y = ConvTranspose <kernel_shape = [{kernel}, {kernel}], {attributes}> (a, w2, b)
        }}""", w1=weights(4, 4, 1, 1), w2=weights(4, 3, kernel, kernel, seed=2), b=bias(3))
    assert "TRANSPOSE_CONV" in ops
    assert ("STRIDED_SLICE" in ops) == crops


def test_conv_transpose_with_auto_pad_same_upper(matches_onnxruntime):
    matches_onnxruntime(f"""{HEADER}
        g (float[1, 4, 5, 5] x) => (float[1, 2, 10, 10] y) {{
            y = ConvTranspose <kernel_shape = [3, 3], strides = [2, 2], auto_pad = "SAME_UPPER"> (x, w)
        }}""", w=weights(4, 2, 3, 3))
