import pytest

import optimizer
from optimizer.errors import UsageError
from optimizer.targets import get_target
from optimizer.targets.host_cpu import detect_host_cpu


def test_host_cpu_is_detected_with_its_isa():
    host = detect_host_cpu()
    assert host.logical_cores >= 1
    cpu = get_target("cpu")
    assert cpu.runtime == "onnxruntime"
    assert set(cpu.isa) <= host.flags
    assert "fp32" in cpu.precisions


def test_aliases_and_unknown_targets():
    assert get_target("HOST").name == "cpu"
    with pytest.raises(UsageError, match="unknown target 'toaster'.*cpu"):
        get_target("toaster")


def test_public_listing():
    assert "cpu" in [t.name for t in optimizer.targets()]
