import pytest
from optimizer.backends.base import import_runtime
from optimizer.backends.registry import BUILT, get_backend

from optimizer.errors import RuntimeNotAvailableError, UsageError


def test_every_built_backend_speaks_the_protocol():
    for name in BUILT:
        backend = get_backend(name)
        assert backend.name == name
        for method in ("capabilities", "preflight", "compile", "load", "profile_operators"):
            assert callable(getattr(backend, method))


def test_litert_is_built_as_tflite_the_edge_targets_runtime():
    assert "tflite" in BUILT
    capabilities = get_backend("tflite").capabilities()
    assert capabilities.extra == "tflite" and "int8" in capabilities.precisions


def test_unknown_backends_and_missing_runtimes_are_named():
    with pytest.raises(UsageError, match="no backend 'tvm'.*onnxruntime"):
        get_backend("tvm")
    with pytest.raises(RuntimeNotAvailableError, match=r"pip install 'hwopt\[openvino\]'"):
        import_runtime("hwopt_no_such_runtime", "openvino")
