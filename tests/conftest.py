"""Fixtures shared across the test folders."""

import pytest

import optimizer
from optimizer.examples.make_demo_model import build_demo_model
from optimizer.ir import save_model


@pytest.fixture(scope="session")
def demo_artifact(tmp_path_factory):
    """An ONNX Runtime artifact of the demo model, with its report.json (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("demo")
    save_model(build_demo_model(), folder / "demo.onnx")
    optimizer.optimize(folder / "demo.onnx", target="cpu", runtime="onnxruntime", output_dir=folder / "out",
                       benchmark=False, threads=1)
    return folder / "out"
