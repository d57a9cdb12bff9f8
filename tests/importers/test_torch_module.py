import numpy as np
import pytest

import optimizer
from optimizer.ir import op_histogram

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.nn.functional.hardswish(self.bn(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


def _net():
    torch.manual_seed(0)
    net = SmallNet().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


def test_load_exports_a_module_to_the_ir():
    model = optimizer.load(_net(), example_inputs=(torch.randn(1, 3, 16, 16),))
    assert "Conv" in op_histogram(model)


def test_optimize_a_module_end_to_end_matches_pytorch(tmp_path):
    net = _net()
    x = torch.randn(2, 3, 16, 16)
    result = optimizer.optimize(net, example_inputs=(x,), output_dir=tmp_path / "o", benchmark=False,
                                inputs={"x": x.numpy()})
    assert result.verification.passed
    from optimizer.verify import run_reference

    (output,) = run_reference(result.model_path, {"x": x.numpy()}, label="optimized").values()
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-5)


def test_module_without_example_inputs_is_a_usage_error():
    with pytest.raises(optimizer.UsageError, match="example inputs"):
        optimizer.load(_net())
