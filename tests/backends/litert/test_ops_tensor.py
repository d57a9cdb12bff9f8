"""Ops that move data (Concat, Split, Slice, Reshape and friends, Transpose, Resize, Pad, Gather, Expand, Tile,
DepthToSpace, Cast, Where) and Softmax against ONNX Runtime, most of them between convolutions so the NHWC
paths are the ones checked."""

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert.convert import convert
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.testing import model_from_text

HEADER = '<ir_version: 9, opset_import: ["" : 17]>'
RNG = np.random.default_rng(0)
W = (RNG.standard_normal((4, 3, 1, 1)) / np.sqrt(3)).astype(np.float32)


def conv_then(op_lines: str, out: str, header: str = HEADER) -> str:
    """x [1, 3, 6, 8] -> Conv (4 channels, NHWC in TFLite) as `a` -> `op_lines` -> y of shape `out`."""
    return f"""{header}
        g (float[1, 3, 6, 8] x) => (float{out} y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            {op_lines}
        }}"""


def test_concat_of_convolutions_along_channels_stays_nhwc(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, 6, 8] x) => (float[1, 2, 6, 8] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            b = Conv <kernel_shape = [1, 1]> (x, w)
            c = Concat <axis = 1> (a, b, k)
            y = Conv <kernel_shape = [1, 1]> (c, w_out)
        }}""", w=W, k=RNG.standard_normal((1, 2, 6, 8)).astype(np.float32),
        w_out=RNG.standard_normal((2, 10, 1, 1)).astype(np.float32))
    assert "CONCATENATION" in ops and ops.count("TRANSPOSE") == 2


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_of_sequences(matches_onnxruntime, axis):
    shapes = {0: "[4, 3]", 1: "[2, 6]", -1: "[2, 6]"}
    matches_onnxruntime(f"""{HEADER}
        g (float[2, 3] a, float[2, 3] b) => (float{shapes[axis]} y) {{
            y = Concat <axis = {axis}> (a, b)
        }}""")


def test_split_with_sizes_along_channels(matches_onnxruntime):
    ops = matches_onnxruntime(conv_then("""
            p, q = Split <axis = 1> (a, sizes)
            r = Relu(p)
            y = Concat <axis = 1> (q, r)""", "[1, 4, 6, 8]"), w=W, sizes=np.array([1, 3], np.int64))
    assert "SPLIT_V" in ops and ops.count("TRANSPOSE") == 2


def test_split_into_equal_parts_by_attribute(matches_onnxruntime):
    matches_onnxruntime("""<ir_version: 8, opset_import: ["" : 11]>
        g (float[2, 6, 4] x) => (float[2, 2, 4] y, float[2, 2, 4] z, float[2, 2, 4] u) {
            y, z, u = Split <axis = 1, split = [2, 2, 2]> (x)
        }""")


@pytest.mark.parametrize("starts, ends, axes, steps, out", [
    ([1], [-1], [1], [1], "[1, 2, 6, 8]"),                    # negative end
    ([-1], [-9999], [3], [-1], "[1, 4, 6, 8]"),               # reversed: negative start, past the beginning
    ([0, 1], [6, 8], [2, 3], [2, 3], "[1, 4, 3, 3]"),         # strides
    ([5, -2], [0, 1], [2, 3], [-2, -3], "[1, 4, 3, 2]"),      # negative steps that stop before the first
    ([-3], [1000], [-1], [1], "[1, 4, 6, 3]"),                # out-of-range end
])
def test_slice_of_a_convolution_output(matches_onnxruntime, starts, ends, axes, steps, out):
    ops = matches_onnxruntime(conv_then("y = Slice(a, starts, ends, axes, steps)", out), w=W,
                              starts=np.array(starts, np.int64), ends=np.array(ends, np.int64),
                              axes=np.array(axes, np.int64), steps=np.array(steps, np.int64))
    assert "STRIDED_SLICE" in ops


@pytest.mark.parametrize("start, end, step", [(-9999, -10000, -1), (-9999, 0, -1), (100, -100, -1),
                                              (2, -100, -2), (-9999, 3, 1), (3, 3, 1)])
def test_slice_bounds_are_clamped_as_onnx_clamps_them(matches_onnxruntime, start, end, step):
    """Out-of-range bounds, and a backwards slice from before the first element (ONNX clamps its start to 0,
    where Python's slicing would give nothing)."""
    matches_onnxruntime(f"""{HEADER}
        g (float[2, 5] x) => (float[2, n] y) {{
            y = Slice(x, s, e, a, t)
        }}""", s=np.array([start]), e=np.array([end]), a=np.array([1]), t=np.array([step]))


def test_slice_without_axes_and_steps(matches_onnxruntime):
    matches_onnxruntime(f"""{HEADER}
        g (float[5, 7] x) => (float[3, 5] y) {{
            y = Slice(x, starts, ends)
        }}""", starts=np.array([1, -6], np.int64), ends=np.array([-1, 6], np.int64))


@pytest.mark.parametrize("op_lines, out", [
    ("y = Reshape(a, shape)", "[1, 4, 48]"),
    ("y = Flatten <axis = 1> (a)", "[1, 192]"),
    ("p = GlobalAveragePool(a)\n y = Squeeze(p, sq)", "[1, 4]"),
    ("p = GlobalAveragePool(a)\n f = Flatten(p)\n y = Unsqueeze(f, sq)", "[1, 4, 1, 1]"),
])
def test_reshapes_of_convolution_outputs_run_in_onnx_layout(matches_onnxruntime, op_lines, out):
    ops = matches_onnxruntime(conv_then(op_lines, out), w=W, **{name: data for name, data in {
        "shape": np.array([1, 4, -1], np.int64), "sq": np.array([2, 3], np.int64)}.items() if name in op_lines})
    assert "RESHAPE" in ops


def test_a_transpose_to_channels_last_cancels_out(matches_onnxruntime):
    ops = matches_onnxruntime(conv_then("y = Transpose <perm = [0, 2, 3, 1]> (a)", "[1, 6, 8, 4]"), w=W)
    assert ops.count("TRANSPOSE") == 1  # the input's: the NHWC convolution output is the result


@pytest.mark.parametrize("perm, out", [([0, 1, 3, 2], "[1, 4, 8, 6]"), ([3, 2, 1, 0], "[8, 6, 4, 1]")])
def test_transpose_of_a_convolution_output(matches_onnxruntime, perm, out):
    matches_onnxruntime(conv_then(f"y = Transpose <perm = {perm}> (a)", out), w=W)


def test_transpose_of_a_sequence(matches_onnxruntime):
    matches_onnxruntime(f"""{HEADER}
        g (float[2, 3, 4] x) => (float[4, 2, 3] y) {{
            y = Transpose <perm = [2, 0, 1]> (x)
        }}""")


@pytest.mark.parametrize("attributes, inputs, out", [
    # PyTorch's nn.Upsample(scale_factor=2), as exported:
    ('mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"',
     "a, , scales", "[1, 4, 12, 16]"),
    ('mode = "nearest", coordinate_transformation_mode = "half_pixel", nearest_mode = "round_prefer_ceil"',
     "a, , , sizes", "[1, 4, 9, 12]"),
    ('mode = "nearest", coordinate_transformation_mode = "half_pixel"', "a, , scales", "[1, 4, 12, 16]"),
    ('mode = "linear", coordinate_transformation_mode = "half_pixel"', "a, , scales", "[1, 4, 12, 16]"),
    ('mode = "linear", coordinate_transformation_mode = "half_pixel"', "a, , , sizes", "[1, 4, 9, 12]"),
    ('mode = "linear", coordinate_transformation_mode = "align_corners"', "a, , , sizes", "[1, 4, 9, 12]"),
    ('mode = "linear", coordinate_transformation_mode = "asymmetric"', "a, , scales", "[1, 4, 12, 16]"),
    ('mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel"', "a, , , sizes", "[1, 4, 3, 4]"),
])
def test_resize(matches_onnxruntime, attributes, inputs, out):
    initializers = {"scales": np.array([1, 1, 2, 2], np.float32), "sizes": np.array([1, 4, 9, 12], np.int64)}
    if out == "[1, 4, 3, 4]":
        initializers["sizes"] = np.array([1, 4, 3, 4], np.int64)
    ops = matches_onnxruntime(conv_then(f"y = Resize <{attributes}> ({inputs})", out), w=W,
                              **{name: initializers[name] for name in ("scales", "sizes") if name in inputs})
    assert {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"} & set(ops)


@pytest.mark.parametrize("opset, op, mode", [(9, "Upsample", "nearest"), (9, "Upsample", "linear"),
                                             (10, "Resize", "nearest"), (10, "Resize", "linear")])
def test_resize_before_opset_11_is_asymmetric(matches_onnxruntime, opset, op, mode):
    header = f'<ir_version: 7, opset_import: ["" : {opset}]>'
    ops = matches_onnxruntime(conv_then(f'y = {op} <mode = "{mode}"> (a, scales)', "[1, 4, 12, 24]", header), w=W,
                              scales=np.array([1, 1, 2, 3], np.float32))
    assert {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"} & set(ops)


@pytest.mark.parametrize("op_lines, builtin", [
    ("y = Pad(a, pads, value)", "PADV2"),
    ("y = Pad(a, pads)", "PAD"),
    ('y = Pad <mode = "reflect"> (a, pads)', "MIRROR_PAD"),
])
def test_pad_of_a_convolution_output(matches_onnxruntime, op_lines, builtin):
    ops = matches_onnxruntime(conv_then(op_lines, "[1, 4, 9, 10]"), w=W,
                              pads=np.array([0, 0, 1, 1, 0, 0, 2, 1], np.int64),
                              **({"value": np.array(1.5, np.float32)} if "value" in op_lines else {}))
    assert builtin in ops and ops.count("TRANSPOSE") == 2


def test_pad_with_attributes_before_opset_11(matches_onnxruntime):
    matches_onnxruntime("""<ir_version: 7, opset_import: ["" : 10]>
        g (float[2, 3] x) => (float[3, 7] y) {
            y = Pad <pads = [0, 1, 1, 3], value = -2.0> (x)
        }""")


@pytest.mark.parametrize("axis, out", [(1, "[1, 4, 6, 8]"), (-1, "[1, 4, 6, 8]"), (2, "[1, 4, 6, 8]")])
def test_softmax_of_a_convolution_output(matches_onnxruntime, axis, out):
    ops = matches_onnxruntime(conv_then(f"y = Softmax <axis = {axis}> (a)", out), w=W)
    assert "SOFTMAX" in ops


@pytest.mark.parametrize("op, builtin", [("Softmax", "SOFTMAX"), ("LogSoftmax", "LOG_SOFTMAX")])
@pytest.mark.parametrize("axis", [1, -1])
def test_softmax_of_a_sequence(matches_onnxruntime, op, builtin, axis):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 5, 7] x) => (float[2, 5, 7] y) {{
            y = {op} <axis = {axis}> (x)
        }}""")
    assert builtin in ops


def test_softmax_before_opset_13_normalizes_the_flattened_block(matches_onnxruntime):
    matches_onnxruntime("""<ir_version: 7, opset_import: ["" : 11]>
        g (float[2, 3, 4] x) => (float[2, 3, 4] y) {
            y = Softmax <axis = 1> (x)
        }""")


@pytest.mark.parametrize("axis, indices, out", [
    (1, [-1, 0, 2], "[1, 3, 6, 8]"),     # channels of an NHWC value, negative index
    (2, [[0, -2], [1, 1]], "[1, 4, 2, 2, 8]"),
    (3, -3, "[1, 4, 6]"),                # a scalar index drops the axis
])
def test_gather_with_constant_indices(matches_onnxruntime, axis, indices, out):
    ops = matches_onnxruntime(conv_then(f"y = Gather <axis = {axis}> (a, i)", out), w=W,
                              i=np.array(indices, np.int64))
    assert "GATHER" in ops


def test_gather_of_an_embedding_by_token_ids(matches_onnxruntime):
    feeds = {"ids": np.array([[3, 0, 9, 9, 1]], np.int64)}
    matches_onnxruntime(f"""{HEADER}
        g (int64[1, 5] ids) => (float[1, 5, 6] y) {{
            y = Gather(table, ids)
        }}""", feeds, table=RNG.standard_normal((10, 6)).astype(np.float32))


@pytest.mark.parametrize("to, out_type", [(6, "int32"), (7, "int64"), (9, "bool"), (1, "float")])
def test_cast(matches_onnxruntime, to, out_type):
    feeds = {"x": np.array([[-2.0, 0.0, 1.0, 3.0]], np.float32)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 4] x) => ({out_type}[1, 4] y) {{
            y = Cast <to = {to}> (x)
        }}""", feeds)
    assert ops == (["RESHAPE"] if out_type == "float" else ["CAST"])  # a no-op cast is a copy to the output


def test_cast_of_an_integer_mask_to_float(matches_onnxruntime):
    feeds = {"mask": np.array([[1, 1, 0]], np.int64)}
    matches_onnxruntime(f"""{HEADER}
        g (int64[1, 3] mask) => (float[1, 3] y) {{
            y = Cast <to = 1> (mask)
        }}""", feeds)


def test_where_on_a_convolution_output(matches_onnxruntime):
    ops = matches_onnxruntime(conv_then("""
            c = Greater(a, zero)
            y = Where(c, a, k)""", "[1, 4, 6, 8]"), w=W, zero=np.float32(0),
        k=RNG.standard_normal((4, 1, 1)).astype(np.float32))
    assert "SELECT_V2" in ops and ops.count("TRANSPOSE") == 2


def test_where_with_an_attention_mask(matches_onnxruntime):
    feeds = {"mask": np.array([[1, 1, 1, 0, 0]], np.int64), "scores": RNG.standard_normal((1, 2, 5, 5))
             .astype(np.float32)}
    matches_onnxruntime(f"""{HEADER}
        g (int64[1, 5] mask, float[1, 2, 5, 5] scores) => (float[1, 2, 5, 5] y) {{
            m = Unsqueeze(mask, axes)
            b = Cast <to = 9> (m)
            masked = Where(b, scores, lowest)
            y = Softmax <axis = -1> (masked)
        }}""", feeds, axes=np.array([1, 2], np.int64), lowest=np.float32(-3.4028235e38))


@pytest.mark.parametrize("op_lines, out, builtin", [
    ("p = GlobalAveragePool(a)\n y = Expand(p, shape)", "[1, 4, 6, 8]", "BROADCAST_TO"),
    ("y = Tile(a, repeats)", "[1, 8, 6, 24]", "TILE"),
    ("y = DepthToSpace <blocksize = 2> (a)", "[1, 1, 12, 16]", "DEPTH_TO_SPACE"),
    ("y = SpaceToDepth <blocksize = 2> (a)", "[1, 16, 3, 4]", "SPACE_TO_DEPTH"),
])
def test_broadcast_tile_and_depth_to_space(matches_onnxruntime, op_lines, out, builtin):
    initializers = {"shape": np.array([1, 4, 6, 8], np.int64), "repeats": np.array([1, 2, 1, 3], np.int64)}
    ops = matches_onnxruntime(conv_then(op_lines, out), w=W,
                              **{name: data for name, data in initializers.items() if name in op_lines})
    assert builtin in ops


def test_expand_of_a_sequence(matches_onnxruntime):
    matches_onnxruntime(f"""{HEADER}
        g (float[3, 1] x) => (float[2, 3, 4] y) {{
            y = Expand(x, shape)
        }}""", shape=np.array([2, 1, 4], np.int64))


def test_shape_computations_fold_to_constants(matches_onnxruntime):
    """`x.view(x.shape[0], -1)` as exported: Shape -> Gather -> Unsqueeze -> Concat -> Reshape, all static."""
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 3, 4] x) => (float[2, 12] y) {{
            s = Shape(x)
            n = Gather <axis = 0> (s, zero)
            u = Unsqueeze(n, axes)
            shape = Concat <axis = 0> (u, minus_one)
            y = Reshape(x, shape)
        }}""", zero=np.array(0, np.int64), axes=np.array([0], np.int64), minus_one=np.array([-1], np.int64))
    assert ops == ["RESHAPE"]


def test_position_ids_made_of_constant_of_shape_and_gather_elements_fold(matches_onnxruntime):
    """BERT's exported position and token-type ids: ConstantOfShape, Expand, GatherElements over 80 positions
    (ONNX's reference GatherElements fails past 64), all constants once the shapes are fixed; the caller's model
    is left as it was."""
    text = f"""{HEADER}
        g (float[1, 80, 6] x) => (float[1, 80, 6] y) {{
            ones = ConstantOfShape <value = int64[1] {{1}}> (two)
            shape = Mul(ones, lengths)
            positions = Expand(buffer, shape)
            ids = GatherElements <axis = 1> (buffer, positions)
            e = Gather(table, ids)
            y = Add(x, e)
        }}"""
    initializers = {"two": np.array([2], np.int64), "lengths": np.array([1, 80], np.int64),
                    "buffer": np.arange(80, dtype=np.int64).reshape(1, 80),
                    "table": RNG.standard_normal((100, 6)).astype(np.float32)}
    ops = matches_onnxruntime(text, **initializers)
    assert ops == ["ADD"]
    model = model_from_text(text, **initializers)
    before = [node.op_type for node in model.graph]
    convert(model, CONVERTERS)
    assert [node.op_type for node in model.graph] == before


def test_resize_by_a_scale_that_does_not_give_whole_pixels_is_refused():
    """TFLite maps coordinates by the sizes; ONNX by the scale: 5 pixels x 1.5 = 7 differs, so it is named."""
    from optimizer.backends.litert.convert import ConversionError, convert
    from optimizer.backends.litert.ops import CONVERTERS

    model = model_from_text("""<ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4, 5, 5] x) => (float[1, 4, 7, 7] y) {
            y = Resize <mode = "linear", coordinate_transformation_mode = "half_pixel"> (x, , scales)
        }""", scales=np.array([1, 1, 1.5, 1.5], np.float32))
    with pytest.raises(ConversionError, match="scale 1.5 of 5 pixels gives 7"):
        convert(model, CONVERTERS)
