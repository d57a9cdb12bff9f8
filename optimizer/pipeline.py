"""Pipelines as data: for each pipeline name and opt level, the list of named stages to run, top to bottom.

A stage is a list of passes repeated until none of them changes the graph (a fixpoint). Targets name the
pipeline they use (optimizer/targets); `run_pipeline` runs one and reports what every pass did.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.errors import HwoptError, PassError, UsageError
from optimizer.ir import clear_intermediate_shapes, count_nodes, infer_shapes, validate_model
from optimizer.passes import (
    FixInputShapesConfig,
    FreezeInputsConfig,
    OptimizerPass,
    PassConfig,
    create_pass,
)


@dataclass(frozen=True)
class Stage:
    name: str
    passes: tuple[str, ...]
    max_iterations: int = 8
    """A fixpoint is usually reached in 2-3 iterations; the cap guards against two rules undoing each other."""
    configs: Mapping[str, PassConfig] = field(default_factory=dict)


CLEANUP = Stage("cleanup", ("fold-constants", "eliminate-identity", "remove-unused"))
SIMPLIFY = Stage(
    "simplify",
    (
        "simplify-shape-ops",
        "eliminate-common-subexpressions",
        "fold-constants",
        "eliminate-identity",
        "remove-unused",
    ),
)
FUSE = Stage("fuse", ("fold-batchnorm", "matmul-add-to-gemm", "fuse-activations", "remove-unused"))
# Rewrites for ONNX Runtime's CPU provider specifically (see each pass for the measurement behind it).
ORT_CPU = Stage("onnxruntime-cpu", ("separate-skip-layernorm", "decompose-inner-softmax"), max_iterations=1)
# Opset 21 brings standard Gelu (and LayerNormalization, from 17) that the fusions can then target. It runs
# first so the cleanup stages also tidy what the version converter adds (Constant nodes for attributes that
# became inputs).
MODERNIZE = Stage("modernize", ("upgrade-opset",), max_iterations=1)

OPT_LEVELS = (0, 1, 2, 3)
DEFAULT_OPT_LEVEL = 2

PIPELINES: dict[str, dict[int, tuple[Stage, ...]]] = {
    "onnxruntime-cpu": {
        0: (),
        1: (CLEANUP,),
        2: (CLEANUP, SIMPLIFY, FUSE, ORT_CPU),
        3: (MODERNIZE, CLEANUP, SIMPLIFY, FUSE, ORT_CPU),
    },
    # Every other runtime (OpenVINO, TensorRT, LiteRT): standard ops only, nothing tuned to ORT's fusions.
    "portable": {
        0: (),
        1: (CLEANUP,),
        2: (CLEANUP, SIMPLIFY, FUSE),
        3: (MODERNIZE, CLEANUP, SIMPLIFY, FUSE),
    },
}


def pipeline_stages(
    pipeline: str, opt_level: int, *, shapes: Mapping[str, Sequence[int]] | None = None,
    frozen: Mapping[str, np.ndarray] | None = None,
) -> tuple[Stage, ...]:
    """The stages of `pipeline` at `opt_level`, after stages freezing inputs to constants (`frozen`) and
    fixing input `shapes` when any are given."""
    if pipeline not in PIPELINES:
        raise UsageError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    if opt_level not in OPT_LEVELS:
        raise UsageError(f"opt level must be one of {', '.join(f'O{n}' for n in OPT_LEVELS)}, not {opt_level}")
    stages = PIPELINES[pipeline][opt_level]
    if shapes:
        stages = (fix_shapes_stage(shapes), *stages)
    if frozen:
        config = FreezeInputsConfig(dict(frozen))
        stages = (Stage("freeze-inputs", ("freeze-inputs",), max_iterations=1, configs={"freeze-inputs": config}),
                  *stages)
    return stages


def fix_shapes_stage(shapes: Mapping[str, Sequence[int]]) -> Stage:
    config = FixInputShapesConfig({name: tuple(dims) for name, dims in shapes.items()})
    return Stage("fix-shapes", ("fix-input-shapes",), max_iterations=1, configs={"fix-input-shapes": config})


@dataclass
class PassReport:
    name: str
    rewrites: int
    seconds: float


@dataclass
class StageReport:
    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    passes: list[PassReport]


@dataclass
class PipelineReport:
    stages: list[StageReport] = field(default_factory=list)

    @property
    def rewrites(self) -> int:
        return sum(p.rewrites for stage in self.stages for p in stage.passes)


def run_pipeline(model: ir.Model, stages: Sequence[Stage]) -> PipelineReport:
    """Run `stages` on `model` in place and return what each pass did.

    Shapes are inferred before each stage because the rewrite rules check them, and forgotten at the end (the
    saved model runs faster without them; see clear_intermediate_shapes). The result is checked with the ONNX
    checker so a broken rewrite is caught here, by stage name, rather than in a runtime later.
    """
    report = PipelineReport()
    for stage in stages:
        infer_shapes(model)
        passes = [create_pass(name, stage.configs.get(name)) for name in stage.passes]
        nodes_before = count_nodes(model)
        start = time.perf_counter()
        manager = ir.passes.PassManager(passes, steps=stage.max_iterations, early_stop=True)
        try:
            manager(model)
        except Exception as error:
            explained = _explain(error, stage, passes)
            # A HwoptError raised by a pass (a bad --shape) is the user's error: re-raise it as it was.
            raise explained from (None if explained.__traceback__ is not None else error)
        report.stages.append(
            StageReport(
                name=stage.name,
                nodes_before=nodes_before,
                nodes_after=count_nodes(model),
                seconds=time.perf_counter() - start,
                passes=[PassReport(p.name, p.total_rewrites, p.total_seconds) for p in passes],
            )
        )
    if stages:
        clear_intermediate_shapes(model)
        validate_model(model, source="optimized model")
    return report


def _explain(error: Exception, stage: Stage, passes: list[OptimizerPass]) -> HwoptError:
    """onnx-ir wraps a failing pass's exception in its own; surface the original, naming stage and pass."""
    chain: list[BaseException] = [error]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    root = chain[-1]
    if isinstance(root, HwoptError):
        return root
    messages = " ".join(str(e) for e in chain)
    culprit = next((p.name for p in passes if type(p).__name__ in messages), None)
    where = f"stage '{stage.name}'" + (f", pass '{culprit}'" if culprit else "")
    detail = " ".join(str(root).split())[:300] or type(root).__name__
    return PassError(f"{where} failed: {type(root).__name__}: {detail}")
