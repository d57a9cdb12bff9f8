"""Activations, broadcasting arithmetic, comparisons and logic against ONNX Runtime, on convolution outputs
(NHWC in TFLite) and on plain tensors; exact GELU from its exported pattern and Erf on its own."""

import re

import numpy as np
import pytest

HEADER = '<ir_version: 9, opset_import: ["" : 17]>'
RNG = np.random.default_rng(0)
W = (RNG.standard_normal((4, 3, 1, 1)) / np.sqrt(3)).astype(np.float32)
W_OUT = (RNG.standard_normal((2, 4, 1, 1)) / 2).astype(np.float32)


def conv_sandwich(op_lines: str, header: str = HEADER, **initializers) -> tuple[str, dict]:
    """Conv -> `op_lines` (from `a`, to `o`) -> Conv: the op sits between two NHWC convolutions."""
    text = f"""{header}
        g (float[1, 3, 6, 5] x) => (float[1, 2, 6, 5] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            {op_lines}
            y = Conv <kernel_shape = [1, 1]> (o, w_out)
        }}"""
    used = {name: data for name, data in initializers.items() if re.search(rf"\b{name}\b", op_lines)}
    return text, {"w": W, "w_out": W_OUT, **used}


@pytest.mark.parametrize("op_lines, builtin", [
    ("o = Relu(a)", "RELU"),
    ("o = Clip(a, zero, six)", "RELU6"),
    ("o = Clip(a, low, high)", "MINIMUM"),
    ("o = Clip(a, low)", "MAXIMUM"),
    ("o = Sigmoid(a)", "LOGISTIC"),
    ("s = Sigmoid(a)\n o = Mul(a, s)", "LOGISTIC"),                       # SiLU
    ("o = HardSwish(a)", "HARD_SWISH"),
    ("o = HardSigmoid <alpha = 0.25, beta = 0.4> (a)", "RELU_0_TO_1"),
    ("o = Tanh(a)", "TANH"),
    ("o = LeakyRelu <alpha = 0.1> (a)", "LEAKY_RELU"),
    ("o = Elu(a)", "ELU"),
    ("o = PRelu(a, slope)", "PRELU"),
    ("o = Abs(a)", "ABS"),
    ("o = Neg(a)", "NEG"),
    ("o = Exp(a)", "EXP"),
    ("e = Abs(a)\n o = Sqrt(e)", "SQRT"),
    ("e = Exp(a)\n o = Log(e)", "LOG"),
    ("o = Reciprocal(a)", "DIV"),
    ("o = Sign(a)", "SIGN"),
    ("o = Floor(a)", "FLOOR"),
    ("o = Ceil(a)", "CEIL"),
    ("o = Sin(a)", "SIN"),
    ("o = BatchNormalization <epsilon = 0.001> (a, bn_scale, bn_bias, bn_mean, bn_var)", "MUL"),
])
def test_activation_between_convolutions_stays_nhwc(matches_onnxruntime, op_lines, builtin):
    text, initializers = conv_sandwich(
        op_lines, zero=np.float32(0), six=np.float32(6), low=np.float32(-0.3), high=np.float32(0.5),
        slope=RNG.uniform(0.05, 0.3, (4, 1, 1)).astype(np.float32),
        bn_scale=RNG.uniform(0.5, 2, 4).astype(np.float32), bn_bias=RNG.standard_normal(4).astype(np.float32),
        bn_mean=RNG.standard_normal(4).astype(np.float32), bn_var=RNG.uniform(0.5, 2, 4).astype(np.float32))
    ops = matches_onnxruntime(text, **initializers)
    assert builtin in ops
    assert ops.count("TRANSPOSE") == 2, ops


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(matches_onnxruntime, approximate):
    ops = matches_onnxruntime(f"""<ir_version: 10, opset_import: ["" : 20]>
        g (float[2, 8, 16] x) => (float[2, 8, 16] y) {{
            y = Gelu <approximate = "{approximate}"> (x)
        }}""")
    assert ops == ["GELU"]


@pytest.mark.parametrize("pattern", [
    "d = Div(x, sqrt2)\n e = Erf(d)\n p = Add(e, one)\n m = Mul(x, p)\n y = Mul(m, half)",    # BERT's export
    "d = Mul(x, inv_sqrt2)\n e = Erf(d)\n p = Add(one, e)\n h = Mul(x, half)\n y = Mul(h, p)",
])
def test_exact_gelu_pattern_becomes_one_gelu(matches_onnxruntime, pattern):
    constants = {"sqrt2": np.float32(np.sqrt(2)), "inv_sqrt2": np.float32(np.sqrt(0.5)), "one": np.float32(1),
                 "half": np.float32(0.5)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 16, 32] x) => (float[1, 16, 32] y) {{
            {pattern}
        }}""", **{name: data for name, data in constants.items() if re.search(rf"\b{name}\b", pattern)})
    assert ops == ["GELU"]


def test_erf_outside_gelu_is_the_polynomial(matches_onnxruntime):
    feeds = {"x": np.linspace(-4, 4, 2 * 64, dtype=np.float32).reshape(2, 64)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 64] x) => (float[2, 64] y) {{
            y = Erf(x)
        }}""", feeds, tolerance=3e-7)
    assert "GELU" not in ops and "EXP" in ops


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("operand", ["per_channel", "one", "scalar", "full"])
def test_arithmetic_with_a_constant_on_nhwc(matches_onnxruntime, op, operand):
    constants = {"per_channel": RNG.uniform(0.5, 2, (4, 1, 1)), "one": np.array([1.5]), "scalar": np.array(0.7),
                 "full": RNG.uniform(0.5, 2, (1, 4, 6, 5))}
    text, initializers = conv_sandwich(f"o = {op}(a, k)", k=constants[operand].astype(np.float32))
    ops = matches_onnxruntime(text, **initializers)
    assert ops.count("TRANSPOSE") == 2


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_constant_first_operand(matches_onnxruntime, op):
    text, initializers = conv_sandwich(f"o = {op}(k, a)", k=RNG.uniform(0.5, 2, (4, 1, 1)).astype(np.float32))
    matches_onnxruntime(text, **initializers)


def test_arithmetic_of_two_nhwc_values_with_broadcasting(matches_onnxruntime):
    """[1, C, H, W] * [1, C, 1, 1] both computed: squeeze-and-excitation's scaling stays NHWC."""
    text, initializers = conv_sandwich("p = ReduceMean <axes = [2, 3]> (a)\n s = Sigmoid(p)\n o = Mul(a, s)")
    ops = matches_onnxruntime(text, **initializers)
    assert ops.count("TRANSPOSE") == 2


@pytest.mark.parametrize("shape", ["[5]", "[6, 5]", "[1, 5]"])
def test_arithmetic_with_a_lower_rank_activation(matches_onnxruntime, shape):
    """A lower-rank operand broadcasts against ONNX's trailing dims (W, or H and W): computed in ONNX's layout."""
    dims = shape.strip("[]").replace(" ", "").split(",")
    matches_onnxruntime(f"""{HEADER}
        g (float[1, 3, 6, 5] x, float{shape} z) => (float[1, 2, 6, 5] y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            o = Add(a, z)
            y = Conv <kernel_shape = [1, 1]> (o, w_out)
        }}""", {"x": RNG.standard_normal((1, 3, 6, 5)).astype(np.float32),
                "z": RNG.standard_normal([int(d) for d in dims]).astype(np.float32)}, w=W, w_out=W_OUT)


@pytest.mark.parametrize("op, builtin", [("Pow", "POW"), ("Max", "MAXIMUM"), ("Min", "MINIMUM")])
def test_binary_ops_of_activations(matches_onnxruntime, op, builtin):
    feeds = {"x": RNG.uniform(0.5, 2, (2, 3, 4)).astype(np.float32),
             "z": RNG.uniform(0.5, 2, (3, 4)).astype(np.float32)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 3, 4] x, float[3, 4] z) => (float[2, 3, 4] y) {{
            y = {op}(x, z)
        }}""", feeds)
    assert builtin in ops


@pytest.mark.parametrize("op, builtins", [("Max", {"MAXIMUM"}), ("Min", {"MINIMUM"}), ("Sum", {"ADD"}),
                                          ("Mean", {"ADD", "MUL"})])
def test_variadic_ops_take_every_input(matches_onnxruntime, op, builtins):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 4] a, float[2, 4] b, float[4] c) => (float[2, 4] y) {{
            y = {op}(a, b, c)
        }}""")
    assert builtins <= set(ops) and len(ops) >= 2


@pytest.mark.parametrize("op, builtin", [("Equal", "EQUAL"), ("Less", "LESS"), ("LessOrEqual", "LESS_EQUAL"),
                                         ("Greater", "GREATER"), ("GreaterOrEqual", "GREATER_EQUAL")])
def test_comparisons(matches_onnxruntime, op, builtin):
    feeds = {"x": RNG.integers(0, 3, (2, 5)).astype(np.float32), "z": RNG.integers(0, 3, 5).astype(np.float32)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 5] x, float[5] z) => (bool[2, 5] y) {{
            y = {op}(x, z)
        }}""", feeds)
    assert builtin in ops


def test_comparisons_of_integers_against_a_constant(matches_onnxruntime):
    feeds = {"x": np.array([[0, 3, -1, 7, 3]], np.int64)}
    matches_onnxruntime(f"""{HEADER}
        g (int64[1, 5] x) => (bool[1, 5] y) {{
            y = Equal(x, three)
        }}""", feeds, three=np.array(3, np.int64))


@pytest.mark.parametrize("op, builtin", [("And", "LOGICAL_AND"), ("Or", "LOGICAL_OR"), ("Xor", "NOT_EQUAL")])
def test_logic(matches_onnxruntime, op, builtin):
    feeds = {"x": np.array([[1, 0, 1, 0]], np.float32), "z": np.array([1, 1, 0, 0], np.float32)}
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 4] x, float[4] z) => (bool[1, 4] y, bool[1, 4] n) {{
            p = Greater(x, half)
            q = Greater(z, half)
            y = {op}(p, q)
            n = Not(p)
        }}""", feeds, half=np.float32(0.5))
    assert builtin in ops and "LOGICAL_NOT" in ops


def test_pow_with_an_integer_exponent(matches_onnxruntime):
    assert "POW" in matches_onnxruntime("""<ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) { y = Pow(x, e) }""", e=np.array(2, np.int64))
