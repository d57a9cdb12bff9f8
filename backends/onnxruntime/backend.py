"""ONNX Runtime on the CPU as a backend: the artifact is the ONNX model plus ORT's own optimized graph.

`compile` writes hwopt's model (`model.onnx`, portable to any ORT build) and the graph ORT makes of it at the
"extended" level (`model.ort.onnx`: fusions done once here instead of at every session start). Not at "all":
that level adds layout transforms for this CPU's SIMD width, which ORT documents as not portable to other
machines; they are applied at load time instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
from optimizer.backends.base import Capabilities, Compiled, CompileOptions, PreflightIssue
from optimizer.backends.onnxruntime import profiling
from optimizer.backends.onnxruntime.session import OrtSession, create_session, runtime_version
from optimizer.benchmarks.run_report import OperatorTime

from optimizer import ir as hir
from optimizer.errors import ModelRunError

MODEL_FILE = "model.onnx"
OPTIMIZED_FILE = "model.ort.onnx"
OFFLINE_LEVEL = "extended"
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8-dynamic", "int4")
# Domains whose ops ORT's CPU provider implements; anything else needs a custom-op library.
KNOWN_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc"})
_MISSING_KERNEL = re.compile(r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'")


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, runtime_version(), runs_here=True, devices=("CPU",), precisions=PRECISIONS)

    def preflight(self, model: ir.Model, target, precision: str) -> list[PreflightIssue]:
        """Ops from domains ORT has no kernels for, then whatever ORT itself refuses when it loads the model."""
        issues = [
            PreflightIssue(node.name or "(unnamed)", f"{node.domain}::{node.op_type}",
                           f"ONNX Runtime has no kernel for domain '{node.domain}'", "error", self.name)
            for node in hir.all_nodes(model)
            if node.domain not in KNOWN_DOMAINS
        ]
        if issues or hir.has_external_data(model):
            # Weights in external files cannot be handed to ORT as bytes; such a model's missing kernels
            # surface when the artifact is loaded for verification instead.
            return issues
        try:
            create_session(hir.model_to_bytes(model), optimization="disabled", label="model")
        except ModelRunError as error:
            missing = _MISSING_KERNEL.search(str(error))
            if missing is None:
                issues.append(PreflightIssue("(model)", "-", str(error), "error", self.name))
            else:
                op, version, node = missing.groups()
                issues.append(PreflightIssue(node, op, f"ONNX Runtime's CPU provider has no {op} (opset {version}) "
                                             "kernel for these input types", "error", self.name))
        return issues

    def compile(self, model: ir.Model, options: CompileOptions, folder: Path) -> Compiled:
        files = hir.save_model(model, folder / MODEL_FILE)
        details = {"execution_provider": "CPUExecutionProvider", "optimization_level": "all",
                   "threads": options.threads}
        entry = MODEL_FILE
        if len(files) == 1:
            # ORT writes an optimized model with external data only through extra session settings; large
            # models skip the offline step and are optimized at load, as before.
            _save_optimized(folder / MODEL_FILE, folder / OPTIMIZED_FILE)
            entry = OPTIMIZED_FILE
            details["offline_optimization"] = OFFLINE_LEVEL
        return Compiled(entry=entry, runtime_version=runtime_version(), device="CPU", details=details)

    def load(self, artifact, *, threads: int | None = None) -> OrtSession:
        threads = threads or artifact.manifest.details.get("threads")
        return create_session(artifact.entry_path, threads=threads, label="optimized model")

    def profile_operators(self, artifact, feeds: Mapping[str, np.ndarray], *, threads: int | None = None,
                          runs: int = 10) -> list[OperatorTime]:
        """Time per operator type from ORT's profiler, in a session built as `load` builds it."""
        threads = threads or artifact.manifest.details.get("threads")
        return profiling.profile_operators(artifact.entry_path, feeds, threads=threads, runs=runs,
                                           label="optimized model")


def _save_optimized(source: Path, destination: Path) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(destination)
    options.log_severity_level = 4
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ORT's own exception types; report on one line naming the file
        raise ModelRunError(f"ONNX Runtime cannot load {source.name}: {' '.join(str(error).split())[:300]}",
                            which="optimized model", phase="load") from None
