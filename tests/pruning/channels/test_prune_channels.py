import numpy as np
import pytest
from channel_models import RICH, build, rich_weights

from optimizer.ir import model_to_bytes, validate_model
from optimizer.pruning.channels import ChannelPruningResult, prune_channels
from optimizer.pruning.channels.groups import ChannelGroup, analyze
from optimizer.pruning.channels.sensitivity import allocate
from optimizer.pruning.cost import graph_cost
from optimizer.pruning.options import PruningOptions
from optimizer.testing import assert_equivalent

CHANNELS = PruningOptions(method="channels", sparsity=0.5, recover=False)


def _samples(count, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(count)]


def test_pruning_zero_filters_keeps_outputs_and_reports_layers(rich_model, feeds):
    original = model_to_bytes(rich_model)
    before = graph_cost(rich_model)
    result = prune_channels(rich_model, CHANNELS)
    assert isinstance(result, ChannelPruningResult)
    assert_equivalent(original, rich_model, feeds, rtol=1e-5, atol=1e-5)
    after = graph_cost(rich_model)
    assert after.parameters < before.parameters and after.flops < before.flops
    layers = {layer.name: layer for layer in result.layers}
    assert set(layers) == {"c1", "d0", "c2", "y"}
    assert layers["c1"].weight_shape_after == (8, 3, 3, 3) and layers["c1"].target_sparsity == 0.5
    assert layers["y"].note == "output channels kept, input channels 16 -> 8"
    assert all(layer.sparsity == 0.0 for layer in layers.values())
    assert (result.channels_before, result.channels_after) == (16, 8)
    assert "recovery" not in " ".join(result.warnings)


def test_exclude_and_ops_leave_groups_alone(rich_model):
    result = prune_channels(rich_model, PruningOptions(method="channels", sparsity=0.5, recover=False,
                                                       exclude=("c2",)))
    shapes = {layer.name: layer.weight_shape_after for layer in result.layers}
    assert "c2" not in shapes and shapes["d0"] == (4, 1, 3, 3)
    model = build(RICH, **rich_weights(np.random.default_rng(0)))
    result = prune_channels(model, PruningOptions(method="channels", sparsity=0.5, ops=("Gemm",)))
    assert not result.layers and result.warnings


def test_everything_pinned_warns_and_changes_nothing():
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 8, 4, 4] y) {
            y = Conv (x, w)
        }
        """, w=np.ones((8, 3, 1, 1), np.float32))
    result = prune_channels(model, CHANNELS)
    assert not result.layers and "no channel group" in result.warnings[0]


def test_recovery_with_samples_raises_the_output_cosine():
    model = build(RICH, **rich_weights(np.random.default_rng(0), zero_removed=False))
    result = prune_channels(model, PruningOptions(method="channels", sparsity=0.5), _samples(8))
    validate_model(model, source="pruned")
    assert result.fidelity["recovered"] >= result.fidelity["pruned"]
    assert result.recovery[0].startswith("channels removed")
    assert len(result.recovery) >= 3


def test_sensitivity_prunes_sensitive_groups_less_at_the_same_budget():
    model = build(RICH, **rich_weights(np.random.default_rng(0), zero_removed=False))
    result = prune_channels(model, PruningOptions(method="channels", sparsity=0.5, sensitivity=True,
                                                  recover=False), _samples(4))
    assert set(result.sensitivity) == {"c1, c2", "c1, d0"}
    assert all(0.0 <= cosine <= 1.0 for cosine in result.sensitivity.values())
    # The more sensitive group is pruned less than the target (maybe not at all: 8 channels round by 4).
    shapes = {layer.name: layer.weight_shape_after for layer in result.layers}
    less, more = ("c2", "d0") if result.sensitivity["c1, c2"] < result.sensitivity["c1, d0"] else ("d0", "c2")
    assert shapes.get(less, (8,))[0] >= 4 and shapes[more][0] <= 4
    validate_model(model, source="pruned")


def test_allocation_keeps_the_budget_and_caps_each_group():
    groups = [ChannelGroup(index, np.arange(size), [f"n{index}"]) for index, size in enumerate((16, 16, 64))]
    ratios = allocate(groups, {0: 0.999, 1: 0.9, 2: 0.99}, 0.3)
    assert ratios[1] < ratios[2] < ratios[0] <= 0.6
    assert sum(ratios[g.index] * g.size for g in groups) == pytest.approx(0.3 * 96)


def test_activation_importance_without_samples_falls_back_to_l1(rich_model):
    result = prune_channels(rich_model, PruningOptions(method="channels", sparsity=0.5, importance="activation",
                                                       recover=False))
    assert any("activation importance" in warning for warning in result.warnings)
    assert result.layers


@pytest.mark.zoo
def test_yolov8n_thirty_percent_of_channels():
    from optimizer.benchmarks import zoo
    from optimizer.benchmarks.ratios import fetch_or_skip

    from optimizer.ir import load_model
    from optimizer.passes.fix_input_shapes import FixInputShapes, FixInputShapesConfig

    model = load_model(fetch_or_skip(zoo.yolov8n_path))
    FixInputShapes(FixInputShapesConfig(shapes={"images": (1, 3, 320, 320)}))(model)
    outputs = [tuple(value.shape) for value in model.graph.outputs]
    before = graph_cost(model)
    groups = analyze(model)
    result = prune_channels(model, PruningOptions(method="channels", sparsity=0.3), zoo.yolov8n_calibration(320),
                            threads=2)
    after = graph_cost(model)
    print(f"\nyolov8n: {len(groups.prunable)}/{len(groups.groups)} groups prunable; removed "
          f"{1 - result.channels_after / result.channels_before:.1%} of their channels; FLOPs "
          f"{before.flops / 1e9:.2f} G -> {after.flops / 1e9:.2f} G, params {before.parameters / 1e6:.2f} M -> "
          f"{after.parameters / 1e6:.2f} M; {'; '.join(result.recovery)}")
    validate_model(model, source="pruned yolov8n")
    assert [tuple(value.shape) for value in model.graph.outputs] == outputs  # the zoo's 320n: 1x22x2100
    assert after.flops < 0.7 * before.flops and after.parameters < 0.7 * before.parameters
    assert 0.25 <= 1 - result.channels_after / result.channels_before <= 0.35
    assert result.fidelity["recovered"] > result.fidelity["pruned"]
