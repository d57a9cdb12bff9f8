"""Import breadth: old opsets, the classic CNNs shipped in the onnx wheel, custom domains kept intact."""

from pathlib import Path

import numpy as np
import onnx
import pytest

import optimizer
from optimizer.ir import default_opset_version, load_model, op_histogram, save_model
from optimizer.testing import model_from_text

LIGHT_MODELS = sorted((Path(onnx.__file__).parent / "backend/test/data/light").glob("light_*.onnx"))


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
def test_classic_cnns_from_the_onnx_wheel_optimize_faithfully(path, tmp_path):
    default = optimizer.optimize(path, output_dir=tmp_path / "O2", benchmark=False)
    assert default.verification.passed, default.verification.failure_message()
    assert default.report.optimized.nodes <= default.report.original.nodes
    # O3 upgrades these opset-9 graphs to 21; keeping old semantics can add nodes (Softmax before 13 flattened
    # its input), so only fidelity is asserted there.
    upgraded = optimizer.optimize(path, output_dir=tmp_path / "O3", benchmark=False, opt_level=3)
    assert upgraded.verification.passed, upgraded.verification.failure_message()
    assert upgraded.report.optimized.opset == 21


def test_light_models_are_there():
    assert len(LIGHT_MODELS) >= 8


@pytest.mark.parametrize("opset", [7, 9, 11, 13])
def test_old_opsets_load_optimize_and_upgrade(opset, tmp_path):
    model = model_from_text(
        f"""
        <ir_version: 4, opset_import: ["" : {opset}]>
        g (float[N, 4] x) => (float[N, 4] y) {{
            a = Add (x, bias)
            r = Relu (a)
            y = Identity (r)
        }}
        """,
        bias=np.arange(4, dtype=np.float32),
    )
    path = tmp_path / "old.onnx"
    save_model(model, path)
    for level in (2, 3):
        result = optimizer.optimize(path, output_dir=tmp_path / f"O{level}", opt_level=level, benchmark=False)
        assert result.verification.passed
    assert default_opset_version(load_model(tmp_path / "O2" / "model.onnx")) == opset
    assert default_opset_version(load_model(tmp_path / "O3" / "model.onnx")) == 21


def test_custom_domains_are_kept_and_still_run(tmp_path):
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17, "com.microsoft" : 1, "ai.onnx.ml" : 3]>
        g (float[2, 8] x) => (float[2, 8] y) {
            g = com.microsoft.Gelu (x)
            i = Identity (g)
            y = ai.onnx.ml.Normalizer <norm = "L2"> (i)
        }
        """
    )
    path = tmp_path / "custom.onnx"
    save_model(model, path)
    result = optimizer.optimize(path, output_dir=tmp_path / "out", benchmark=False)
    assert result.verification.passed
    assert op_histogram(load_model(result.model_path)) == {"com.microsoft::Gelu": 1, "ai.onnx.ml::Normalizer": 1}
