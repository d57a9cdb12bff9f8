"""Recovery: the least-squares re-fit is exact when the kept inputs can explain the output, and on minilm it
raises the embedding cosine at block sparsity (figures printed with pytest -s)."""

import time

import numpy as np
import pytest

from optimizer.pruning.options import PruningOptions
from optimizer.pruning.probe import WeightProbe, cosine
from optimizer.pruning.prune import prune_model


@pytest.mark.zoo
@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_minilm_block_recovery_raises_embedding_cosine(sparsity):
    import onnx_ir as ir
    from optimizer.benchmarks import zoo

    try:
        original = ir.load(zoo.minilm_path())
        calibration = zoo.minilm_calibration(128, zoo.CALIBRATION_SENTENCES)[:32]
        held_out = [zoo.minilm_inputs(128, [s]) for s in zoo.EVERYDAY_SENTENCES]
    except zoo.ZooUnavailable as error:
        pytest.skip(str(error))
    reference = WeightProbe(original, ()).outputs(held_out)
    figures = {}
    for recover in (False, True):
        model = original.clone()
        start = time.perf_counter()
        report = prune_model(model, PruningOptions(method="block", sparsity=sparsity, recover=recover), calibration)
        seconds = time.perf_counter() - start
        outputs = WeightProbe(model, ()).outputs(held_out)
        figures[recover] = float(np.mean([cosine(a["sentence_embedding"], b["sentence_embedding"])
                                          for a, b in zip(reference, outputs)]))
        print(f"\nminilm block 1x16 {sparsity:.0%} recover={recover}: held-out embedding cosine "
              f"{figures[recover]:.4f}, calibration fidelity {report.fidelity}, {seconds:.1f} s; {report.recovery}")
    assert figures[True] > figures[False]


def test_conv_bias_correction_adds_a_bias_and_raises_fidelity():
    import onnx_ir as ir

    rng = np.random.default_rng(0)
    weight = ir.tensor(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), name="w")
    x = ir.Value(name="x", shape=ir.Shape([1, 8, 10, 10]), type=ir.TensorType(ir.DataType.FLOAT))
    w = ir.Value(name="w", shape=ir.Shape(weight.shape), type=ir.TensorType(weight.dtype), const_value=weight)
    conv = ir.node("Conv", [x, w], {"pads": [1, 1, 1, 1]}, name="conv")
    conv.outputs[0].name = "y"
    model = ir.Model(ir.Graph([x], [conv.outputs[0]], nodes=[conv], initializers=[w], opset_imports={"": 17}),
                     ir_version=8)
    samples = [{"x": (rng.standard_normal((1, 8, 10, 10)) + 1).astype(np.float32)} for _ in range(4)]
    report = prune_model(model, PruningOptions(method="n:m"), samples)
    assert len(conv.inputs) == 3 and conv.inputs[2].const_value is not None
    assert report.fidelity["recovered"] > report.fidelity["pruned"] + 0.03


def test_refit_is_exact_when_the_kept_inputs_span_the_pruned_ones():
    from tests.pruning.test_prune import mlp

    model = mlp()
    rng = np.random.default_rng(1)
    basis = rng.standard_normal((6, 32))
    # Inputs in a 6-dim subspace: any 6 kept channels of a column can stand in for the pruned ones.
    samples = [{"x": (rng.standard_normal((8, 6)) @ basis).astype(np.float32)} for _ in range(16)]
    from optimizer.pruning import recovery

    ridge = recovery.RIDGE
    recovery.RIDGE = 1e-9
    try:
        report = prune_model(model, PruningOptions(method="unstructured", sparsity=0.25, ops=("MatMul",)), samples)
    finally:
        recovery.RIDGE = ridge
    assert report.fidelity["recovered"] > 0.9999 > report.fidelity["pruned"]
