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


def test_unknown_backends_and_missing_runtimes_are_named():
    with pytest.raises(UsageError, match="no backend 'tvm'.*onnxruntime"):
        get_backend("tvm")
    with pytest.raises(RuntimeNotAvailableError, match=r"pip install 'hwopt\[openvino\]'"):
        import_runtime("hwopt_no_such_runtime", "openvino")
