"""hwopt's OpenVINO extension: com.hwopt::BlockSparseMatMul converted, compiled and run by OpenVINO (f32), held
to a NumPy reference; then through the OpenVINO backend (artifact folder, IR, a fresh process).

The first test to run builds the extension (some seconds) into the kernels cache."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from optimizer.backends.base import CompileOptions
from optimizer.backends.openvino import OpenVINOBackend
from optimizer.backends.openvino.runtime import uses_hwopt_ops
from optimizer.kernels import openvino_extension
from optimizer.kernels.block_sparse import BlockSparseMatrix
from optimizer.kernels.custom_ops import ACTIVATIONS, DOMAIN, block_sparse_matmul_attributes

from optimizer import ir as hir
from optimizer.artifact import Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.errors import HwoptError
from optimizer.targets.profiles import TargetProfile

# The backend and the extension module import OpenVINO only when used, so the imports above work without it.
ov = pytest.importorskip("openvino")

F32 = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
CPU = TargetProfile(name="openvino-cpu-test", description="an x86 CPU", family="intel", device_type="cpu",
                    runtime="openvino", pipeline="portable", precisions=("fp32",))


def _sparse_weight(k, n, block_shape, density, seed=0):
    """A [k, n] weight whose blocks are nonzero with probability `density`; strip 0 is left empty, so a strip
    with no stored block (activation(bias) alone) is always covered."""
    rng = np.random.default_rng(seed)
    block_k, block_n = block_shape
    mask = rng.random((k // block_k, n // block_n)) < density
    mask[:, 0] = False
    dense = rng.standard_normal((k, n)).astype(np.float32) * np.kron(mask, np.ones(block_shape, np.float32))
    return dense, BlockSparseMatrix.from_dense(dense, block_shape)


def _model(weight, bias=None, activation="none", rank=2, x_name="x"):
    """A one-node model Y = BlockSparseMatMul(X, weight...), its leading dims dynamic."""
    k, n = weight.shape
    names = ["values", "block_rows", "strip_ptr"]
    arrays = [weight.values, weight.block_rows, weight.strip_ptr]
    if bias is not None:
        names.append("bias")
        arrays.append(bias)
    node = helper.make_node("BlockSparseMatMul", [x_name, *names], ["y"], domain=DOMAIN,
                            **block_sparse_matmul_attributes(weight, activation))
    leading = ["batch", "seq"][: rank - 1]
    graph = helper.make_graph([node], "block_sparse", [helper.make_tensor_value_info(x_name, TensorProto.FLOAT,
                                                                                       [*leading, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*leading, n])],
                              [numpy_helper.from_array(array, name) for name, array in zip(names, arrays)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])


def _reference(x, dense, bias, activation):
    y = x.astype(np.float64) @ dense.astype(np.float64)
    if bias is not None:
        y = y + bias
    if activation == "relu":
        y = np.maximum(y, 0)
    elif activation == "gelu":
        y = 0.5 * y * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))
    return y


@pytest.fixture(scope="module")
def extension():
    """The built library; the tests that need it skip where it cannot be built (no CMake or no compiler)."""
    try:
        return openvino_extension.extension_library()
    except openvino_extension.ExtensionBuildError:
        missing = openvino_extension.missing_build_tools()
        if missing:
            pytest.skip(missing)
        raise


@pytest.fixture(scope="module")
def core(extension):
    core = ov.Core()
    openvino_extension.add_to(core)
    return core


def _compile(core, proto, config=F32):
    return core.compile_model(core.read_model(proto.SerializeToString(), b""), "CPU", config)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("block_shape", [(1, 16), (4, 16), (8, 8), (2, 4)], ids=lambda b: f"{b[0]}x{b[1]}")
def test_matches_numpy(core, block_shape, with_bias, activation):
    dense, weight = _sparse_weight(64, 96, block_shape, density=0.4)
    bias = np.random.default_rng(1).standard_normal(96).astype(np.float32) if with_bias else None
    rng = np.random.default_rng(2)
    for rank, shapes in ((2, [(37, 64), (1, 64)]), (3, [(2, 19, 64), (3, 1, 64)])):
        compiled = _compile(core, _model(weight, bias, activation, rank))
        assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        assert compiled.output(0).get_partial_shape().to_string() == ("[?,96]" if rank == 2 else "[?,?,96]")
        for shape in shapes:  # one compiled model, several batch / sequence sizes
            x = rng.standard_normal(shape).astype(np.float32)
            y = compiled(x)[0]
            assert y.shape == (*shape[:-1], 96)
            np.testing.assert_allclose(y, _reference(x, dense, bias, activation), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("density", [0.0, 1.0])
def test_empty_and_full_weights(core, density):
    dense, weight = _sparse_weight(32, 48, (4, 16), density)
    if density == 1.0:  # _sparse_weight empties strip 0; fill it to have every block stored
        dense = np.random.default_rng(3).standard_normal((32, 48)).astype(np.float32)
        weight = BlockSparseMatrix.from_dense(dense, (4, 16))
    bias = np.linspace(-1, 1, 48, dtype=np.float32)
    x = np.random.default_rng(4).standard_normal((300, 32)).astype(np.float32)  # enough work to split
    y = _compile(core, _model(weight, bias, "relu"))(x)[0]
    np.testing.assert_allclose(y, _reference(x, dense, bias, "relu"), rtol=1e-5, atol=1e-5)


def test_an_empty_bias_name_means_no_bias(core):
    dense, weight = _sparse_weight(32, 32, (2, 16), density=0.5)
    proto = _model(weight, activation="relu")
    proto.graph.node[0].input.append("")  # the ONNX way to leave an optional input out
    x = np.random.default_rng(9).standard_normal((4, 32)).astype(np.float32)
    np.testing.assert_allclose(_compile(core, proto)(x)[0], _reference(x, dense, None, "relu"), rtol=1e-5, atol=1e-5)


def test_threads_split_few_strips_by_rows(core):
    # 2 strips only: the op splits rows among the threads instead.
    dense, weight = _sparse_weight(256, 32, (1, 16), density=0.9)
    dense[:, :16] = np.random.default_rng(5).standard_normal((256, 16))
    weight = BlockSparseMatrix.from_dense(dense, (1, 16))
    x = np.random.default_rng(6).standard_normal((301, 256)).astype(np.float32)
    y = _compile(core, _model(weight, activation="gelu"))(x)[0]
    np.testing.assert_allclose(y, _reference(x, dense, None, "gelu"), rtol=1e-5, atol=1e-5)


def test_the_default_bf16_precision_still_runs_the_op_in_f32(core):
    dense, weight = _sparse_weight(64, 32, (4, 16), density=0.5)
    x = np.random.default_rng(7).standard_normal((5, 64)).astype(np.float32)
    y = _compile(core, _model(weight), config={})(x)[0]
    np.testing.assert_allclose(y, _reference(x, dense, None, "none"), rtol=1e-5, atol=1e-5)


def test_malformed_weight_is_an_error_not_a_crash(core):
    _, weight = _sparse_weight(32, 32, (4, 16), density=1.0)
    bad = BlockSparseMatrix(weight.shape, weight.block_shape, weight.strip_ptr,
                            np.full_like(weight.block_rows, 99), weight.values)
    compiled = _compile(core, _model(bad))
    with pytest.raises(RuntimeError, match="block row 99"):
        compiled(np.zeros((2, 32), np.float32))


def test_attributes_are_checked_when_converting(core):
    _, weight = _sparse_weight(32, 32, (4, 16), density=1.0)
    proto = _model(weight)
    next(a for a in proto.graph.node[0].attribute if a.name == "activation").s = b"tanh"
    with pytest.raises(RuntimeError, match="activation must be none, relu or gelu"):
        _compile(core, proto)


def _artifact(proto, folder, **options):
    """Compile through the backend and write the manifest as hwopt's build does."""
    model = hir.from_proto(proto)
    compiled = OpenVINOBackend().compile(model, CompileOptions(CPU, "fp32", threads=2, **options), folder)
    inputs, outputs = model_io_specs(model)
    write_manifest(folder, Manifest(CPU.name, "openvino", compiled.runtime_version, compiled.device, "fp32",
                                    compiled.entry, inputs, outputs, details=compiled.details,
                                    runs_here=compiled.runs_here))
    return model, compiled


def test_backend_compiles_loads_and_runs_the_op(extension, tmp_path):
    dense, weight = _sparse_weight(64, 48, (4, 16), density=0.5)
    bias = np.arange(48, dtype=np.float32) / 48
    model, compiled = _artifact(_model(weight, bias, "gelu", rank=3), tmp_path)
    assert uses_hwopt_ops(model) and uses_hwopt_ops(tmp_path / "model.xml")
    assert compiled.details["inference_precision"] == "f32"
    assert "com.hwopt::BlockSparseMatMul" in compiled.details["openvino_extension"]
    assert OpenVINOBackend().preflight(model, CPU, "fp32") == []

    x = np.random.default_rng(8).standard_normal((2, 7, 64)).astype(np.float32)
    y = OpenVINOBackend().load(load_artifact(tmp_path)).run({"x": x})["y"]
    np.testing.assert_allclose(y, _reference(x, dense, bias, "gelu"), rtol=1e-5, atol=1e-5)
    times = OpenVINOBackend().profile_operators(load_artifact(tmp_path), {"x": x}, runs=2)
    assert times and sum(time.calls for time in times) > 0

    # A fresh process reads the IR back: the op deserializes only with the extension, which load adds.
    np.save(tmp_path / "x.npy", x)
    code = (
        "import json, sys, numpy as np\n"
        "from optimizer.artifact import load_artifact\n"
        "from optimizer.backends.openvino import OpenVINOBackend\n"
        "folder = sys.argv[1]\n"
        "y = OpenVINOBackend().load(load_artifact(folder)).run({'x': np.load(folder + '/x.npy')})['y']\n"
        "np.save(folder + '/y.npy', y)\n"
        "print(json.dumps(sorted(sys.modules.keys() & {'optimizer.kernels.openvino_extension'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == ["optimizer.kernels.openvino_extension"]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), y)


def test_backend_fixes_the_shapes_of_the_op(extension, tmp_path):
    dense, weight = _sparse_weight(32, 32, (1, 16), density=0.5)
    _artifact(_model(weight, activation="relu", rank=3), tmp_path, shapes={"x": (2, 5, 32)})
    session = OpenVINOBackend().load(load_artifact(tmp_path))
    x = np.random.default_rng(10).standard_normal((2, 5, 32)).astype(np.float32)
    np.testing.assert_allclose(session.run({"x": x})["y"], _reference(x, dense, None, "relu"), rtol=1e-5, atol=1e-5)
    assert '<dim>5</dim>' in (tmp_path / "model.xml").read_text()


def test_models_without_hwopt_ops_never_load_the_extension(tmp_path, monkeypatch):
    def refuse(owner):
        raise AssertionError("the extension was loaded for a model without hwopt ops")

    monkeypatch.setattr(openvino_extension, "add_to", refuse)
    proto = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])]),
        opset_imports=[helper.make_opsetid("", 17)])
    model, _ = _artifact(proto, tmp_path)
    assert not uses_hwopt_ops(model) and not uses_hwopt_ops(tmp_path / "model.xml")
    assert OpenVINOBackend().preflight(model, CPU, "fp32") == []
    y = OpenVINOBackend().load(load_artifact(tmp_path)).run({"x": np.full((2, 4), -1, np.float32)})["y"]
    assert (y == 0).all()


def test_build_errors_name_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HWOPT_KERNELS_CACHE", str(tmp_path))
    openvino_extension._library_for.cache_clear()
    try:
        monkeypatch.setattr(openvino_extension.shutil, "which", lambda name: None)
        with pytest.raises(HwoptError, match="CMake"):
            openvino_extension.extension_library()
        monkeypatch.setattr(openvino_extension.shutil, "which", lambda name: f"/usr/bin/{name}")
        monkeypatch.setattr(openvino_extension, "_cxx_compiler", lambda: None)
        assert "C++17 compiler" in openvino_extension.missing_build_tools()
        with pytest.raises(HwoptError, match="C\\+\\+17 compiler"):
            openvino_extension.extension_library()
    finally:
        openvino_extension._library_for.cache_clear()
    assert not any(path.suffix == ".so" for path in tmp_path.rglob("*"))


def test_the_cache_key_follows_the_sources(extension):
    library = extension
    version = ov.__version__.split("-")[0]
    assert library.parent.name.startswith(f"openvino-{version}-")
    assert library.parent.name.endswith(openvino_extension._sources_hash())
    assert (library.parent / openvino_extension.LOG_FILE).is_file()
    names = {path.name for path in openvino_extension.source_files()}
    assert {"CMakeLists.txt", "extension.cpp", "block_sparse_matmul.h"} <= names
