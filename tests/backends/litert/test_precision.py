"""LiteRT precision passes on a tiny conv model: FP16 weights, dynamic-range INT8, full-integer INT8, each
checked against ONNX Runtime on the float original, with the tensor types and the file size they promise."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from optimizer import ir as hir
from optimizer.verify import cosine

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert.convert import convert_graph
from optimizer.backends.litert.flatbuffer import numpy_dtype
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.backends.litert.precision import activation_ranges, lower_precision
from optimizer.testing import model_from_text

C = 64  # channels: enough weights that the file size is mostly weights
SIZE = 16
WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D"}


def tiny_model():
    """Conv -> Relu -> strided Conv (explicit PAD) -> Sigmoid, Mul (SiLU) -> MaxPool, MaxPool of the Relu ->
    Concat -> 1x1 Conv -> Add -> depthwise Conv -> 1x1 Conv (the output layer)."""
    rng = np.random.default_rng(0)

    def weights(out_channels, in_channels, k):
        fan_in = in_channels * k * k
        return (rng.standard_normal((out_channels, in_channels, k, k)) * np.sqrt(2 / fan_in)).astype(np.float32)

    def bias(n):
        return (rng.standard_normal(n) * 0.1).astype(np.float32)

    model = model_from_text(f"""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, {SIZE}, {SIZE}] x) => (float[1, {C}, {SIZE // 2}, {SIZE // 2}] y) {{
            c1 = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
            r = Relu(c1)
            c2 = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (r, w2, b2)
            s = Sigmoid(c2)
            m = Mul(c2, s)
            p = MaxPool <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (m)
            q = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (r)
            cat = Concat <axis = 1> (p, q)
            c3 = Conv (cat, w3, b3)
            a = Add(c3, p)
            d = Conv <pads = [1, 1, 1, 1], group = {C}> (a, w4, b4)
            y = Conv (d, w5, b5)
        }}""", w1=weights(C, 3, 3), b1=bias(C), w2=weights(C, C, 3), b2=bias(C), w3=weights(C, 2 * C, 1),
        b3=bias(C), w4=weights(C, 1, 3), b4=bias(C), w5=weights(C, C, 1), b5=bias(C))
    hir.infer_shapes(model)
    return model


def samples(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)} for _ in range(count)]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def ranges(model):
    return activation_ranges(model, samples(16, seed=1))


@pytest.fixture(scope="module")
def reference(model):
    feeds = samples(1, seed=2)[0]
    session = ort.InferenceSession(hir.model_to_bytes(model), providers=["CPUExecutionProvider"])
    return feeds, session.run(None, feeds)[0]


def lowered(model, precision, **options):
    graph = convert_graph(model, CONVERTERS)
    notes = lower_precision(graph, precision, **options)
    return graph, notes


def run(data: bytes, feeds: dict[str, np.ndarray], *, xnnpack: bool = True) -> np.ndarray:
    """The output for `feeds`, quantizing an int8/uint8 input and dequantizing an int8/uint8 output as their
    tensor details say; `xnnpack=False` runs TFLite's own kernels, which check every scale they depend on."""
    resolver = litert.OpResolverType.AUTO if xnnpack else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = litert.Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    array = next(iter(feeds.values()))
    if detail["dtype"] != np.float32:
        scale, zero_point = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        array = np.clip(np.round(array / scale) + zero_point, info.min, info.max).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    output = interpreter.get_output_details()[0]
    result = interpreter.get_tensor(output["index"])
    if output["dtype"] != np.float32:
        scale, zero_point = output["quantization"]
        result = (result.astype(np.float32) - zero_point) * scale
    return result


def undelegated(data: bytes) -> list[str]:
    """Operators XNNPACK left to the builtin kernels: those no DELEGATE node stands for."""
    interpreter = litert.Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()
    ops = [op for op in details if op["op_name"] != "DELEGATE"]
    producer = {t: op for op in ops for t in op["outputs"]}
    inside: set[int] = set()
    for delegate in (op for op in details if op["op_name"] == "DELEGATE"):
        stop, todo = set(delegate["inputs"].tolist()), list(delegate["outputs"].tolist())
        while todo:
            tensor = todo.pop()
            op = producer.get(tensor)
            if tensor in stop or op is None or op["index"] in inside:
                continue
            inside.add(op["index"])
            todo += op["inputs"].tolist()
    return [op["op_name"] for op in ops if op["index"] not in inside]


def operators(graph):
    return [(graph.builtin(op), op) for op in graph.operators]


def dtype(graph, index):
    return numpy_dtype(graph.tensors[index].type)


def params(graph, index):
    quantization = graph.tensors[index].quantization
    return [round(s, 9) for s in quantization.scale], list(quantization.zeroPoint)


# --- FP16 and dynamic range ---------------------------------------------------------------------------------

def test_fp16_stores_weights_as_float16_behind_dequantize(model, reference):
    feeds, expected = reference
    fp32 = convert_graph(model, CONVERTERS).serialize()
    graph, notes = lowered(model, "fp16")
    data = graph.serialize()
    convolutions = [op for name, op in operators(graph) if name in WEIGHTED]
    dequantized = {op.outputs[0]: op.inputs[0] for name, op in operators(graph) if name == "DEQUANTIZE"}
    for op in convolutions:
        weight = op.inputs[1]
        assert dtype(graph, weight) == np.float32 and not graph.is_constant(weight)
        assert dtype(graph, dequantized[weight]) == np.float16
    activations = {i for op in graph.operators for i in op.outputs} - set(dequantized)
    assert {dtype(graph, i) for i in activations} == {np.dtype(np.float32)}
    assert cosine(run(data, feeds), expected) >= 0.999
    assert len(data) < 0.6 * len(fp32)
    assert undelegated(data) == []  # XNNPACK takes the float16 weights (it folds the DEQUANTIZE)
    assert any("float16" in note for note in notes)


def test_dynamic_range_gives_hybrid_ops_int8_per_channel_weights(model, reference):
    feeds, expected = reference
    fp32 = convert_graph(model, CONVERTERS).serialize()
    graph, _ = lowered(model, "int8-dynamic")
    data = graph.serialize()
    for name, op in operators(graph):
        if name not in WEIGHTED:
            continue
        weight = op.inputs[1]
        quantization = graph.tensors[weight].quantization
        axis = 0 if name == "CONV_2D" else 3
        assert dtype(graph, weight) == np.int8 and graph.is_constant(weight)
        assert quantization.quantizedDimension == axis
        assert len(quantization.scale) == graph.tensors[weight].shape[axis] and set(quantization.zeroPoint) == {0}
        assert dtype(graph, op.inputs[0]) == np.float32 and dtype(graph, op.outputs[0]) == np.float32
        assert graph.version(op) == {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 6}[name]
    assert cosine(run(data, feeds), expected) >= 0.999
    assert len(data) < 0.4 * len(fp32)


# --- Full integer -------------------------------------------------------------------------------------------

def test_full_int8_runs_everything_in_int8_and_matches_onnxruntime(model, ranges, reference):
    feeds, expected = reference
    fp32 = convert_graph(model, CONVERTERS).serialize()
    graph, notes = lowered(model, "int8", ranges=ranges, float_tail=False)
    data = graph.serialize()
    ops = operators(graph)
    names = [name for name, _ in ops]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    assert names.count("QUANTIZE") == 1 and names.count("DEQUANTIZE") == 1
    for name, op in ops:
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        tensors = [i for i in op.inputs if i >= 0 and not graph.is_constant(i)] + list(op.outputs)
        assert {dtype(graph, i) for i in tensors} == {np.dtype(np.int8)}, name
    for name, op in ops:
        if name in WEIGHTED:
            weight, bias = op.inputs[1], op.inputs[2]
            assert dtype(graph, weight) == np.int8 and dtype(graph, bias) == np.int32
            weight_scales = np.array(graph.tensors[weight].quantization.scale)
            input_scale = graph.tensors[op.inputs[0]].quantization.scale[0]
            np.testing.assert_allclose(graph.tensors[bias].quantization.scale, input_scale * weight_scales,
                                       rtol=1e-6)
            assert set(graph.tensors[weight].quantization.zeroPoint) == {0}
        if name == "LOGISTIC":
            assert params(graph, op.outputs[0]) == ([round(1 / 256, 9)], [-128])
        if name in ("MAX_POOL_2D", "CONCATENATION", "PAD"):
            tensors = [i for i in op.inputs if dtype(graph, i) == np.int8] + list(op.outputs)
            assert len({str(params(graph, i)) for i in tensors}) == 1, f"{name} requantizes"
    assert dtype(graph, graph.inputs[0]) == np.float32 and dtype(graph, graph.outputs[0]) == np.float32
    assert graph.tensors[graph.outputs[0]].name == "y"
    output = run(data, feeds)
    assert cosine(output, expected) >= 0.99
    assert len(data) < 0.35 * len(fp32)  # int8 weights: about a quarter
    assert undelegated(data) == []  # XNNPACK runs the whole int8 graph
    assert notes[0].startswith(f"int8: {len(names) - 2} of {len(names) - 2} operators")
    assert "RELU" not in names  # fused into the convolution before it
    # the int8 kernels' versions, and no operator code left from the float graph
    assert {graph.version(op) for name, op in ops if name == "CONV_2D"} == {3}
    written = graph.fb.ModelT.InitFromPackedBuf(data, 0)
    assert len(written.operatorCodes) == len({(name, graph.version(op)) for name, op in ops})


def test_full_int8_runs_on_tflites_own_kernels_too(model, ranges, reference):
    feeds, expected = reference
    for options in ({"float_tail": False}, {"io_dtype": "uint8"}):
        data = lowered(model, "int8", ranges=ranges, **options)[0].serialize()
        builtin, delegated = run(data, feeds, xnnpack=False), run(data, feeds)
        assert cosine(builtin, expected) >= 0.99 and cosine(builtin, delegated) >= 0.999


def test_full_int8_keeps_the_last_layer_and_what_follows_the_last_int8_layer_float(model, ranges, reference):
    feeds, expected = reference
    graph, notes = lowered(model, "int8", ranges=ranges)
    ops = operators(graph)
    last_conv = [op for name, op in ops if name == "CONV_2D"][-1]
    assert dtype(graph, last_conv.inputs[1]) == np.float32  # the output layer keeps float weights
    depthwise = next(op for name, op in ops if name == "DEPTHWISE_CONV_2D")
    assert dtype(graph, depthwise.outputs[0]) == np.int8  # it feeds a compute layer: int8, dequantized after
    assert cosine(run(graph.serialize(), feeds), expected) >= 0.995
    assert any("last compute layer before the outputs" in note for note in notes)


@pytest.mark.parametrize("io_dtype", ["int8", "uint8"])
def test_full_int8_integer_inputs_and_outputs(model, ranges, reference, io_dtype):
    feeds, expected = reference
    graph, _ = lowered(model, "int8", ranges=ranges, io_dtype=io_dtype, float_tail=False)
    data = graph.serialize()
    wanted = np.dtype(io_dtype)
    assert dtype(graph, graph.inputs[0]) == wanted and dtype(graph, graph.outputs[0]) == wanted
    names = [name for name, _ in operators(graph)]
    # int8: no conversion at all; uint8: one QUANTIZE uint8 -> int8 in front, one int8 -> uint8 behind
    assert names.count("QUANTIZE") == (2 if io_dtype == "uint8" else 0) and "DEQUANTIZE" not in names
    interpreter = litert.Interpreter(model_content=data)
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    assert scale == pytest.approx(1 / 255, rel=1e-3)  # calibrated inputs are 0..1
    assert zero_point == (-128 if io_dtype == "int8" else 0)
    assert cosine(run(data, feeds), expected) >= 0.99


def test_full_int8_requantizes_where_a_fixed_scale_meets_a_wider_one_and_pads_max_pools_with_the_lowest():
    """Concat(conv, sigmoid(conv)): the sigmoid writes 1/256 over 0..1, the concat needs the conv's wider scale:
    the sigmoid's output is requantized. The max pool's explicit padding (float's lowest) becomes -128."""
    rng = np.random.default_rng(3)
    model = model_from_text(f"""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, {SIZE}, {SIZE}] x) => (float[1, 16, {SIZE // 2}, {SIZE // 2}] y) {{
            c = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
            s = Sigmoid(c)
            cat = Concat <axis = 1> (c, s)
            p = MaxPool <kernel_shape = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1]> (cat)
            y = Conv (p, w2, b2)
        }}""", w1=rng.standard_normal((16, 3, 3, 3)).astype(np.float32), b1=np.zeros(16, np.float32),
        w2=(rng.standard_normal((16, 32, 1, 1)) * 0.2).astype(np.float32), b2=np.zeros(16, np.float32))
    hir.infer_shapes(model)
    ranges = activation_ranges(model, samples(16, seed=1))
    graph, notes = lowered(model, "int8", ranges=ranges, float_tail=False)
    ops = operators(graph)
    logistic = next(op for name, op in ops if name == "LOGISTIC")
    requantize = next(op for name, op in ops if name == "QUANTIZE" and op.inputs[0] == logistic.outputs[0])
    concat = next(op for name, op in ops if name == "CONCATENATION")
    assert requantize.outputs[0] in concat.inputs and dtype(graph, requantize.outputs[0]) == np.int8
    assert len({str(params(graph, i)) for i in [*concat.inputs, *concat.outputs]}) == 1
    padv2 = next(op for name, op in ops if name == "PADV2")
    assert graph.constant_data(padv2.inputs[2]).item() == -128
    assert params(graph, padv2.outputs[0]) == params(graph, padv2.inputs[0])
    assert any("requantize x1" in note for note in notes)
    feeds = samples(1, seed=2)[0]
    expected = ort.InferenceSession(hir.model_to_bytes(model), providers=["CPUExecutionProvider"]).run(None, feeds)
    data = graph.serialize()
    assert cosine(run(data, feeds), expected[0]) >= 0.99
    assert cosine(run(data, feeds, xnnpack=False), expected[0]) >= 0.99


def test_fully_connected_layers_in_each_precision():
    """MatMul (+ Add) -> FULLY_CONNECTED: hybrid per-channel weights for int8-dynamic, int8 for full int8."""
    rng = np.random.default_rng(4)
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 8, 64] x) => (float[2, 8, 32] y) {
            h = MatMul(x, w1)
            hb = Add(h, b1)
            r = Relu(hb)
            z = MatMul(r, w2)
            t = Tanh(z)
            y = MatMul(t, w3)
        }""", w1=(rng.standard_normal((64, 128)) * 0.15).astype(np.float32),
        b1=(rng.standard_normal(128) * 0.1).astype(np.float32),
        w2=(rng.standard_normal((128, 64)) * 0.1).astype(np.float32),
        w3=(rng.standard_normal((64, 32)) * 0.1).astype(np.float32))
    hir.infer_shapes(model)
    data = [{"x": rng.standard_normal((2, 8, 64)).astype(np.float32)} for _ in range(9)]
    ranges = activation_ranges(model, data[:8])
    expected = ort.InferenceSession(hir.model_to_bytes(model), providers=["CPUExecutionProvider"]).run(
        None, data[8])[0]
    for precision, options in (("fp16", {}), ("int8-dynamic", {}), ("int8", {"ranges": ranges, "float_tail": False})):
        graph, _ = lowered(model, precision, **options)
        layers = [op for name, op in operators(graph) if name == "FULLY_CONNECTED"]
        assert len(layers) == 3
        weight_type = {"fp16": np.float32, "int8-dynamic": np.int8, "int8": np.int8}[precision]
        assert all(dtype(graph, op.inputs[1]) == weight_type for op in layers)
        if precision == "int8-dynamic":
            assert all(graph.version(op) == 12 and op.builtinOptions.asymmetricQuantizeInputs for op in layers)
        if precision == "int8":
            assert all(dtype(graph, op.outputs[0]) == np.int8 for op in layers)
        serialized = graph.serialize()
        assert undelegated(serialized) == [], precision
        assert cosine(run(serialized, data[8]), expected) >= (0.999 if precision != "int8" else 0.99), precision


def test_full_int8_kernels_are_accepted_by_tflites_own_kernels():
    """One op of each kind in the int8 table that the models above lack, run by TFLite's builtin kernels (which
    check the scales they depend on) and by XNNPACK."""
    rng = np.random.default_rng(5)

    def weights(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 16, 16] x) => (float[1, 8] y, float[1, 8, 16, 16] z) {
            c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w1, b1)
            h = HardSwish(c)
            l = LeakyRelu <alpha = 0.1> (h)
            k = Clip(l, low, high)
            t = ConvTranspose <strides = [2, 2], kernel_shape = [2, 2]> (k, wt, bt)
            u = Resize <mode = "linear", coordinate_transformation_mode = "half_pixel"> (k, , scales)
            tt = Tanh(t)
            z0 = Conv (tt, w3, b3)
            z = Add(z0, u)
            gp = GlobalAveragePool(z0)
            f = Flatten(gp)
            y0 = Gemm <transB = 1> (f, wf, bf)
            y = Softmax(y0)
        }""", w1=weights(8, 3, 3, 3), b1=weights(8), wt=weights(8, 8, 2, 2), bt=weights(8), w3=weights(8, 8, 1, 1),
        b3=weights(8), wf=weights(8, 8), bf=weights(8), low=np.array(-0.5, np.float32),
        high=np.array(2.0, np.float32), scales=np.array([1, 1, 2, 2], np.float32))
    hir.infer_shapes(model)
    data = [{"x": rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)} for _ in range(9)]
    ranges = activation_ranges(model, data[:8])
    expected = ort.InferenceSession(hir.model_to_bytes(model), providers=["CPUExecutionProvider"]).run(
        None, data[8])
    graph, _ = lowered(model, "int8", ranges=ranges, float_tail=False)
    written = {name for name, _ in operators(graph)}
    assert {"TRANSPOSE_CONV", "RESIZE_BILINEAR", "TANH", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "HARD_SWISH",
            "LEAKY_RELU", "MAXIMUM", "MINIMUM"} <= written
    for name, op in operators(graph):
        if name not in ("QUANTIZE", "DEQUANTIZE"):
            assert dtype(graph, op.outputs[0]) == np.int8, name
    serialized = graph.serialize()
    for xnnpack in (True, False):
        resolver = litert.OpResolverType.AUTO if xnnpack else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interpreter = litert.Interpreter(model_content=serialized, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data[8]["x"])
        interpreter.invoke()
        outputs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        assert cosine(outputs["y"], expected[0]) >= 0.99 and cosine(outputs["z"], expected[1]) >= 0.99
    # XNNPACK has no int8 kernel for these; TFLite's own (int8) kernels run them between its partitions.
    assert sorted(undelegated(serialized)) == ["HARD_SWISH", "MAXIMUM", "MINIMUM", "SOFTMAX"]


def test_fp16_converts_large_constants_but_not_small_ones():
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4096] x) => (float[1, 4096] y) {
            a = Add(x, big)
            y = Mul(a, small)
        }""", big=np.linspace(-1, 1, 4096, dtype=np.float32).reshape(1, 4096),
        small=np.full((1, 1), 0.5, np.float32))
    hir.infer_shapes(model)
    graph, _ = lowered(model, "fp16")
    add, mul = (op for name, op in operators(graph) if name in ("ADD", "MUL"))
    assert not graph.is_constant(add.inputs[1])  # DEQUANTIZE's output, from float16
    assert graph.is_constant(mul.inputs[1]) and dtype(graph, mul.inputs[1]) == np.float32


def test_ranges_cover_every_value_and_derived_tensors_inherit_theirs(model, ranges):
    values = {"x", "y"} | {v.name for node in model.graph for v in node.outputs}
    assert values <= set(ranges)
    assert ranges["x"][0] >= 0 and ranges["x"][1] <= 1
    graph, _ = lowered(model, "int8", ranges=ranges, float_tail=False)
    padded = next(op for name, op in operators(graph) if name == "PAD")
    # the explicit PAD of the strided conv has no ONNX name: it takes the Relu's scale, which it copies
    assert params(graph, padded.outputs[0]) == params(graph, padded.inputs[0])


def test_lower_precision_refuses_what_it_cannot_do(model):
    graph = convert_graph(model, CONVERTERS)
    with pytest.raises(ValueError, match="unknown precision"):
        lower_precision(graph, "int4")
    with pytest.raises(ValueError, match="needs activation ranges"):
        lower_precision(graph, "int8")
    with pytest.raises(ValueError, match="needs precision int8"):
        lower_precision(graph, "fp16", io_dtype="int8")
    assert lower_precision(graph, "fp32") == []
