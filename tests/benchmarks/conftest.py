"""Shared by the benchmark tests: run reports built directly, with realistic figures."""

import pytest

from optimizer.benchmarks.run_report import (
    BatchResult,
    LatencySummary,
    ModelInfo,
    OperatorTime,
    RunReport,
)


@pytest.fixture
def make_report():
    """make_report(**fields) -> a measured RunReport of a small model, with `fields` replaced."""

    def build(**changes) -> RunReport:
        latency = LatencySummary(5.0, 5.5, 6.0, 5.1, 0.2, 4.9, 6.2, 100, 4.95, 5.05)
        fields = dict(model=ModelInfo("tiny", "/models/tiny", "ab" * 32, 1234, {"x": [1, 4]}), device="Test CPU",
                      target="cpu", runtime="onnxruntime", runtime_version="1.0", precision="fp32",
                      batches=[BatchResult(1, latency, 200.0)], operators=[OperatorTime("Conv", 3.0, 60.0, 2)])
        fields.update(changes)
        return RunReport(**fields)

    return build
