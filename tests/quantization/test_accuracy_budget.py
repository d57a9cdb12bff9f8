"""Static INT8 and the accuracy budget on a real task: a small CNN trained on scikit-learn's digits.

What the quantization issue accepts:
- INT8 of a well-behaved CNN keeps its top-1 within half a point of FP32 (both measured in ONNX Runtime);
- a deliberately sensitive layer ruins plain INT8, and `max_accuracy_drop` with the top-1 metric keeps exactly
  that layer float, which brings top-1 back within half a point;
- a budget the search cannot meet still gives a model, and the report says the budget was not met.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import optimizer
from optimizer.ir import save_model
from optimizer.quantization import accuracy_budget
from optimizer.quantization.metrics import top1
from optimizer.quantization.options import QuantizationOptions

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")

SEED = 0
TRAIN_SAMPLES = 1400  # of load_digits' 1797; the other 397 are the test split
CALIBRATION_SAMPLES = 100
EPOCHS = 12
HALF_A_POINT = 0.005  # of top-1
# conv2's weights on the always-zero channel of the sensitive variant: large enough that every output
# channel's int8 weight scale (outlier / 127) is ~100x its real weights, which then all round to zero.
OUTLIER_WEIGHT = 1000.0


class DigitsCNN(torch.nn.Module):
    """Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Linear-ReLU-Linear for 1x8x8 digits. The INT8 plan quantizes the
    second convolution and the hidden Linear; the first convolution (1 channel x 3x3) is too shallow for int8 to
    pay off and the last Linear is a final layer before the outputs, so both stay float."""

    def __init__(self, conv1_channels: int = 16):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, conv1_channels, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(conv1_channels, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 4 * 4, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.flatten(torch.relu(self.conv2(x)), 1)
        return self.fc2(torch.relu(self.fc1(x)))


@dataclass(frozen=True)
class Digits:
    train_images: np.ndarray  # float32 [N, 1, 8, 8] in 0..1
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def calibration(self) -> list[dict[str, np.ndarray]]:
        return _samples(self.train_images[:CALIBRATION_SAMPLES])

    def test_samples(self) -> list[dict[str, np.ndarray]]:
        return _samples(self.test_images)


@dataclass(frozen=True)
class ExportedCNN:
    path: Path
    layers: dict[str, str]
    """PyTorch module name ("conv2") -> the ONNX node name the quantization report uses."""


def _samples(images: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [{"x": images[index:index + 1]} for index in range(len(images))]


def _train(digits: Digits) -> DigitsCNN:
    torch.manual_seed(SEED)
    net = DigitsCNN()
    adam = torch.optim.Adam(net.parameters(), lr=1e-2)
    images, labels = torch.from_numpy(digits.train_images), torch.from_numpy(digits.train_labels)
    shuffle = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(labels), generator=shuffle).split(64):
            adam.zero_grad()
            torch.nn.functional.cross_entropy(net(images[batch]), labels[batch]).backward()
            adam.step()
    return net.eval()


def _with_sensitive_conv2(net: DigitsCNN) -> DigitsCNN:
    """The same function with one layer that INT8 ruins: conv1 gains a channel that its ReLU always zeroes
    (zero weights, bias -1) and conv2 reads that channel with weights of OUTLIER_WEIGHT. In float they add
    exactly nothing; in INT8 they set the weight scale of every conv2 output channel, so conv2's real weights
    round to 0. Keeping conv2 float is the whole cure."""
    variant = DigitsCNN(conv1_channels=net.conv1.out_channels + 1)
    with torch.no_grad():
        variant.conv1.weight.zero_()
        variant.conv1.weight[:-1] = net.conv1.weight
        variant.conv1.bias.fill_(-1.0)
        variant.conv1.bias[:-1] = net.conv1.bias
        variant.conv2.weight.fill_(OUTLIER_WEIGHT)
        variant.conv2.weight[:, :-1] = net.conv2.weight
        variant.conv2.bias.copy_(net.conv2.bias)
        variant.fc1.load_state_dict(net.fc1.state_dict())
        variant.fc2.load_state_dict(net.fc2.state_dict())
    return variant.eval()


def _export(net: DigitsCNN, path: Path) -> ExportedCNN:
    model = optimizer.load(net, example_inputs=(torch.zeros(1, 1, 8, 8),))
    save_model(model, path)
    by_weight = {node.inputs[1].name: node.name for node in model.graph if node.op_type in ("Conv", "Gemm")}
    return ExportedCNN(path, {name: by_weight[f"{name}.weight"] for name in ("conv1", "conv2", "fc1", "fc2")})


def _top1(model_path: Path, digits: Digits) -> float:
    """Top-1 over the whole test split in ONNX Runtime (CPU, default graph optimizations, so INT8 kernels)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    outputs = [{"logits": session.run(None, sample)[0]} for sample in digits.test_samples()]
    return top1(outputs, digits.test_labels)


@pytest.fixture(scope="module")
def digits() -> Digits:
    data = sklearn_datasets.load_digits()
    order = np.random.default_rng(SEED).permutation(len(data.target))
    images = (data.images[order] / 16.0).astype(np.float32)[:, None]
    labels = data.target[order].astype(np.int64)
    train, test = slice(None, TRAIN_SAMPLES), slice(TRAIN_SAMPLES, None)
    return Digits(images[train], labels[train], images[test], labels[test])


@pytest.fixture(scope="module")
def trained(digits) -> DigitsCNN:
    return _train(digits)


@pytest.fixture(scope="module")
def cnn(trained, tmp_path_factory) -> ExportedCNN:
    return _export(trained, tmp_path_factory.mktemp("digits") / "cnn.onnx")


@pytest.fixture(scope="module")
def sensitive_cnn(trained, tmp_path_factory) -> ExportedCNN:
    return _export(_with_sensitive_conv2(trained), tmp_path_factory.mktemp("digits") / "sensitive.onnx")


@pytest.fixture(scope="module")
def fp32_top1(cnn, digits) -> float:
    return _top1(cnn.path, digits)


def test_int8_keeps_top1_of_a_trained_cnn_within_half_a_point(cnn, digits, fp32_top1, tmp_path):
    result = optimizer.optimize(
        cnn.path, precision="int8",
        quantization=QuantizationOptions(precision="int8", calibration=digits.calibration()),
        output_dir=tmp_path / "int8", threads=2,
    )

    assert fp32_top1 >= 0.95
    assert abs(_top1(result.model_path, digits) - fp32_top1) <= HALF_A_POINT
    layers = result.report.quantization.layers
    assert all(layers[cnn.layers[name]].startswith("int8") for name in ("conv2", "fc1")), layers
    assert layers[cnn.layers["fc2"]] == "float32 (final layer before the outputs)"
    # One input channel x 3x3: too shallow a sum for int8 to pay off on ONNX Runtime (schemes.ORT_X86).
    assert "sums over 9 inputs per output" in layers[cnn.layers["conv1"]]


def test_a_sensitive_layer_ruins_plain_int8(sensitive_cnn, digits, fp32_top1, tmp_path):
    assert _top1(sensitive_cnn.path, digits) == pytest.approx(fp32_top1, abs=1 / len(digits.test_labels))

    # Verification would reject this model (that is the point): measure it instead.
    result = optimizer.optimize(
        sensitive_cnn.path, precision="int8",
        quantization=QuantizationOptions(precision="int8", calibration=digits.calibration()),
        output_dir=tmp_path / "int8", threads=2, verify_outputs=False,
    )

    assert result.report.quantization.layers[sensitive_cnn.layers["conv2"]].startswith("int8")
    assert _top1(result.model_path, digits) < fp32_top1 - 0.1  # far more than half a point: about chance


def test_accuracy_budget_keeps_only_the_sensitive_layer_float(sensitive_cnn, digits, fp32_top1, tmp_path):
    options = QuantizationOptions(
        precision="int8", calibration=digits.calibration(), max_accuracy_drop=HALF_A_POINT, metric=top1,
        eval_data=digits.test_samples(), labels=digits.test_labels,
    )

    result = optimizer.optimize(sensitive_cnn.path, precision="int8", quantization=options,
                                output_dir=tmp_path / "budget", threads=2)

    report = result.report.quantization
    sensitive = sensitive_cnn.layers["conv2"]
    assert report.budget["met"] is True
    assert report.budget["metric"] == "top1"
    assert report.budget["drop"] <= HALF_A_POINT
    assert report.budget["float_layers"] == [sensitive]
    assert report.layers[sensitive].startswith("float32")
    assert report.layers[sensitive_cnn.layers["conv1"]].startswith("float32 (sums over 9 inputs")
    assert report.layers[sensitive_cnn.layers["fc1"]].startswith("int8")
    all_quantized, *kept_float = report.candidates
    assert all_quantized["float_layers"] == [] and all_quantized["drop"] > 0.5
    assert kept_float[-1]["float_layers"] == [sensitive]
    for candidate in report.candidates:
        assert 0.0 <= candidate["score"] <= 1.0
        assert candidate["latency_ms"] > 0
    assert abs(_top1(result.model_path, digits) - fp32_top1) <= HALF_A_POINT


def test_unreachable_budget_returns_the_best_model_and_says_so(cnn, digits, fp32_top1, monkeypatch, tmp_path):
    # Any budget is reachable by keeping every layer float, until a model has more layers than the search
    # probes: a limit of 1 makes this CNN such a model. No metric: the budget is on the outputs' cosine to
    # FP32, and no INT8 model reaches a drop of 0.
    monkeypatch.setattr(accuracy_budget, "MAX_PROBED_LAYERS", 1)
    options = QuantizationOptions(precision="int8", calibration=digits.calibration(), max_accuracy_drop=0.0)

    result = optimizer.optimize(cnn.path, precision="int8", quantization=options,
                                output_dir=tmp_path / "budget", threads=2)

    report = result.report.quantization
    assert report.budget["met"] is False
    assert report.budget["metric"] == "output cosine"
    assert report.budget["drop"] > 0
    assert report.budget["score"] == max(candidate["score"] for candidate in report.candidates)
    assert any("accuracy budget not met" in warning for warning in report.warnings), report.warnings
    assert report.quantized_layers > 0
    assert abs(_top1(result.model_path, digits) - fp32_top1) <= HALF_A_POINT
