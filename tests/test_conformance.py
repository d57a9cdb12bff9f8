"""Conformance on the ONNX backend node suite: hwopt must not break a model that ONNX Runtime runs correctly.

Every node test case shipped in the onnx wheel (`onnx.backend.test.case.node.collect_testcases()`: one small
model per op and variant, with inputs and reference outputs) is first run as is in ONNX Runtime. The cases ORT
loads, runs and gets right are then taken through load → default passes → save and run again; each must still
run and match the reference as the ONNX backend runner compares (its rtol/atol, sequences element by element,
bfloat16 at two ULPs). The cases ORT itself cannot run are counted and listed, not checked: they say nothing
about hwopt.

ORT runs with its graph optimizations off for both models, so a difference can only come from hwopt, and with
one thread so the suite stays fast on a small machine (~15 s for all cases, on one core). Tensors of types
NumPy has no native dtype for (bfloat16, float8, int4...) are handed to ORT as raw bytes in OrtValues, so ORT's
Python binding does not keep those cases out of the check.

Set HWOPT_CONFORMANCE_REPORT to a path to get the summary as JSON (counts, and case names with their error per
category). To find which pass breaks a case, call `check_case(case, optimize)` with an `optimize` that runs
only `optimizer.passes.create_pass(name)(model)`, or nothing (load and save only).
"""

from __future__ import annotations

import collections
import ctypes
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from optimizer import ir as hir
from optimizer.pipeline import DEFAULT_OPT_LEVEL, pipeline_stages, run_pipeline

PIPELINE = "onnxruntime-cpu"
REPORT_ENV = "HWOPT_CONFORMANCE_REPORT"

# Where a case stopped. The ORT_* outcomes are about ORT and the original model: such a case is not checked.
PASSED = "passed"
ORT_CANNOT_LOAD = "ort-cannot-load"
ORT_CANNOT_RUN = "ort-cannot-run"
ORT_WRONG_RESULT = "ort-wrong-result"
# Regressions, by the step of load → passes → save → run that failed.
HWOPT_LOAD = "hwopt-load"
HWOPT_PASSES = "hwopt-passes"
HWOPT_SAVE = "hwopt-save"
OPTIMIZED_CANNOT_LOAD = "optimized-cannot-load"
OPTIMIZED_CANNOT_RUN = "optimized-cannot-run"
OPTIMIZED_WRONG_RESULT = "optimized-wrong-result"

NOT_CHECKED = (ORT_CANNOT_LOAD, ORT_CANNOT_RUN, ORT_WRONG_RESULT)
REGRESSIONS = (
    HWOPT_LOAD,
    HWOPT_PASSES,
    HWOPT_SAVE,
    OPTIMIZED_CANNOT_LOAD,
    OPTIMIZED_CANNOT_RUN,
    OPTIMIZED_WRONG_RESULT,
)


@dataclass(frozen=True)
class CaseResult:
    name: str
    outcome: str
    error: str = ""


def backend_node_cases() -> list[Any]:
    """The node test cases of the installed onnx, by name: .name, .model, .data_sets, .rtol and .atol each."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators overflow and divide by zero on purpose
        cases = collect_testcases()
    return sorted(cases, key=lambda case: case.name)


def default_pipeline(model: hir.ir.Model) -> None:
    run_pipeline(model, pipeline_stages(PIPELINE, DEFAULT_OPT_LEVEL))


def check_case(case: Any, optimize: Callable[[hir.ir.Model], None] = default_pipeline) -> CaseResult:
    """Run `case` in ORT as is and, when ORT gets it right, again after load → `optimize` → save."""
    original = case.model.SerializeToString()
    input_names = _input_names(case.model)
    output_names = [value.name for value in case.model.graph.output]

    failure = _run_and_compare(case, original, input_names, output_names)
    if failure is not None:
        step, error = failure
        outcome = {"load": ORT_CANNOT_LOAD, "run": ORT_CANNOT_RUN}.get(step, ORT_WRONG_RESULT)
        return CaseResult(case.name, outcome, error)

    try:
        model = hir.from_proto(case.model, source=case.name)
    except Exception as error:
        return CaseResult(case.name, HWOPT_LOAD, _brief(error))
    try:
        optimize(model)
    except Exception as error:
        return CaseResult(case.name, HWOPT_PASSES, _brief(error))
    try:
        optimized = hir.model_to_bytes(model)
    except Exception as error:
        return CaseResult(case.name, HWOPT_SAVE, _brief(error))

    failure = _run_and_compare(case, optimized, input_names, output_names)
    if failure is not None:
        step, error = failure
        outcome = {"load": OPTIMIZED_CANNOT_LOAD, "run": OPTIMIZED_CANNOT_RUN}.get(step, OPTIMIZED_WRONG_RESULT)
        return CaseResult(case.name, outcome, error)
    return CaseResult(case.name, PASSED)


def _input_names(model: onnx.ModelProto) -> list[str]:
    """The graph inputs the case's input values are given for, in order (as ORT's backend maps them)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value.name for value in model.graph.input if value.name not in initializers]


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


_SESSION_OPTIONS = _session_options()

# Element types ORT's Python binding exchanges as NumPy arrays. The others (bfloat16, float8, int4, int2,
# float4) it neither accepts from ml_dtypes arrays nor returns as such, so those cases go through OrtValues
# filled and read as raw ONNX tensor bytes: without that, ~150 cases would count as "ORT cannot run".
_NUMPY_EXCHANGEABLE = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.INT8,
        onnx.TensorProto.INT16,
        onnx.TensorProto.INT32,
        onnx.TensorProto.INT64,
        onnx.TensorProto.UINT8,
        onnx.TensorProto.UINT16,
        onnx.TensorProto.UINT32,
        onnx.TensorProto.UINT64,
        onnx.TensorProto.BOOL,
        onnx.TensorProto.STRING,
        onnx.TensorProto.COMPLEX64,
        onnx.TensorProto.COMPLEX128,
    }
)


def _needs_raw_tensors(model: onnx.ModelProto) -> bool:
    values = [*model.graph.input, *model.graph.output]
    return any(
        v.type.HasField("tensor_type") and v.type.tensor_type.elem_type not in _NUMPY_EXCHANGEABLE
        for v in values
    )


def _run_and_compare(
    case: Any, model: bytes, input_names: Sequence[str], output_names: Sequence[str]
) -> tuple[str, str] | None:
    """None if `model` runs and matches every data set of `case`; else ("load" | "run" | "compare", error)."""
    try:
        session = ort.InferenceSession(model, _SESSION_OPTIONS, providers=["CPUExecutionProvider"])
    except Exception as error:
        return "load", _brief(error)
    raw = _needs_raw_tensors(case.model)
    for inputs, expected in case.data_sets:
        feeds = {name: _normalize(value) for name, value in zip(input_names, inputs)}
        try:
            if raw:
                values = session.run_with_ort_values(
                    list(output_names), {name: _to_ort_value(value) for name, value in feeds.items()}
                )
                actual = [_from_ort_value(value) for value in values]
            else:
                actual = session.run(list(output_names), feeds)
        except Exception as error:
            return "run", _brief(error)
        try:
            assert_similar_outputs([_normalize(value) for value in expected], actual, case.rtol, case.atol)
        except Exception as error:  # AssertionError, or a TypeError on a container ORT returned differently
            return "compare", _brief(error)
    return None


def _normalize(value: Any) -> Any:
    """As the backend runner does: TensorProtos (float8, int4...) become arrays; sequences stay lists."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, (list, tuple)):
        return [_normalize(item) for item in value]
    if value is None:
        return None
    return np.asarray(value)  # NumPy scalars (np.float32(1.0)) are inputs of shape ()


def _to_ort_value(array: np.ndarray) -> ort.OrtValue:
    tensor = onnx.numpy_helper.from_array(array)
    if tensor.data_type in _NUMPY_EXCHANGEABLE:
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))
    data = tensor.raw_data  # packed as ONNX stores it (two int4 per byte...), which is ORT's layout too
    value = ort.OrtValue.ortvalue_from_shape_and_type(list(array.shape), tensor.data_type)
    if value.tensor_size_in_bytes() != len(data):
        raise ValueError(f"{len(data)} bytes for an ORT tensor of {value.tensor_size_in_bytes()}")
    if data:
        ctypes.memmove(value.data_ptr(), data, len(data))
    return value


def _from_ort_value(value: ort.OrtValue) -> Any:
    element_type = value.element_type() if value.is_tensor() else None
    if element_type is None or element_type in _NUMPY_EXCHANGEABLE:
        return value.numpy()
    size = value.tensor_size_in_bytes()
    data = ctypes.string_at(value.data_ptr(), size) if size else b""
    tensor = onnx.TensorProto(dims=value.shape(), data_type=element_type, raw_data=data)
    return onnx.numpy_helper.to_array(tensor)


def assert_similar_outputs(expected: Sequence[Any], actual: Sequence[Any], rtol: float, atol: float) -> None:
    """onnx.backend.test.runner.Runner.assert_similar_outputs, plus None for an empty optional on both sides."""
    assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
    for i, (out, ref) in enumerate(zip(actual, expected)):
        if ref is None or out is None:
            assert ref is None and out is None, f"output {i} is {_kind(out)}, expected {_kind(ref)}"
        elif isinstance(ref, (list, tuple)) or isinstance(out, (list, tuple)):
            assert isinstance(out, (list, tuple)) and isinstance(ref, (list, tuple)), (
                f"output {i} is {_kind(out)}, expected {_kind(ref)}"
            )
            assert len(out) == len(ref), f"output {i} has {len(out)} elements, expected {len(ref)}"
            for j, (out_item, ref_item) in enumerate(zip(out, ref)):
                try:
                    assert_similar_outputs([ref_item], [out_item], rtol, atol)
                except AssertionError as error:
                    raise AssertionError(f"output {i}[{j}]: {_brief(error)}") from None
        else:
            _assert_similar_tensor(i, np.asarray(out), np.asarray(ref), rtol, atol)


def _assert_similar_tensor(i: int, out: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> None:
    assert out.shape == ref.shape, f"output {i} has shape {out.shape}, expected {ref.shape}"
    if ref.dtype == object:  # strings
        np.testing.assert_array_equal(out, ref, err_msg=f"output {i}")
        return
    assert out.dtype == ref.dtype, f"output {i} has dtype {out.dtype}, expected {ref.dtype}"
    if out.dtype.name == "bfloat16":
        rtol = max(rtol, 2**-6)  # two bfloat16 ULPs, as the runner allows
    if out.dtype.type.__module__.startswith("ml_dtypes"):
        # NumPy cannot compare ml_dtypes (bfloat16, float8, int4) with tolerances; float32 holds them exactly.
        out, ref = out.astype(np.float32), ref.astype(np.float32)
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol, err_msg=f"output {i}")


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return f"a sequence of {len(value)}"
    return f"a {type(value).__name__}"


def _brief(error: BaseException) -> str:
    """One line: the error's first line (for a failed comparison, NumPy's summary without the arrays), and the
    root cause when the error wraps another (onnx-ir and onnxscript wrap what a pass raised)."""
    text = _summary(error)
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    root_text = _summary(root)
    if root is not error and root_text not in text:
        text += f" <- {root_text}"
    return text[:500]


def _summary(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if not isinstance(error, AssertionError):
        return f"{type(error).__name__}: {lines[0]}"
    # NumPy's message: the tolerance, our err_msg ("output 0"), counts and largest differences, then the
    # mismatching elements and both arrays, which are left out.
    summary = [lines[0]] + [
        line
        for line in lines[1:]
        if line.startswith(("output ", "Mismatched elements", "Max absolute", "Max relative"))
        or line.endswith("location mismatch:")
    ]
    return "; ".join(summary)


def summarize(results: Sequence[CaseResult], seconds: float) -> dict[str, Any]:
    by_outcome: dict[str, list[CaseResult]] = collections.defaultdict(list)
    for result in results:
        by_outcome[result.outcome].append(result)
    regressions = [r for outcome in REGRESSIONS for r in by_outcome[outcome]]
    return {
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "pipeline": PIPELINE,
        "opt_level": DEFAULT_OPT_LEVEL,
        "seconds": round(seconds, 1),
        "total": len(results),
        "ort_cannot_run": sum(len(by_outcome[o]) for o in NOT_CHECKED),
        "checked": len(results) - sum(len(by_outcome[o]) for o in NOT_CHECKED),
        "passed": len(by_outcome[PASSED]),
        "regressions": len(regressions),
        "counts": {o: len(by_outcome[o]) for o in (PASSED, *NOT_CHECKED, *REGRESSIONS)},
        "cases": {o: {r.name: r.error for r in by_outcome[o]} for o in (*NOT_CHECKED, *REGRESSIONS)},
    }


def summary_line(summary: dict[str, Any]) -> str:
    return (
        f"ONNX backend node suite (onnx {summary['onnx']}, onnxruntime {summary['onnxruntime']}): "
        f"{summary['total']} cases, ORT cannot run {summary['ort_cannot_run']} "
        f"(load {summary['counts'][ORT_CANNOT_LOAD]}, run {summary['counts'][ORT_CANNOT_RUN]}, "
        f"wrong result {summary['counts'][ORT_WRONG_RESULT]}), checked {summary['checked']}, "
        f"passed {summary['passed']}, regressions {summary['regressions']}, {summary['seconds']} s"
    )


def regression_message(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['regressions']} of {summary['checked']} cases ORT runs correctly broke after "
        f"load → {PIPELINE} O{DEFAULT_OPT_LEVEL} passes → save:"
    ]
    for outcome in REGRESSIONS:
        cases = summary["cases"][outcome]
        if cases:
            lines.append(f"  {outcome} ({len(cases)}):")
            lines += [f"    {name}: {error}" for name, error in cases.items()]
    return "\n".join(lines)


@pytest.mark.slow
def test_backend_node_suite_survives_the_default_pipeline(capsys):
    start = time.perf_counter()
    onnxscript_logger = logging.getLogger("onnxscript")
    level = onnxscript_logger.level
    onnxscript_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = [check_case(case) for case in backend_node_cases()]
    finally:
        onnxscript_logger.setLevel(level)
    summary = summarize(results, time.perf_counter() - start)

    report_path = os.environ.get(REPORT_ENV)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=2)
    with capsys.disabled():
        print(f"\n{summary_line(summary)}" + (f"; report: {report_path}" if report_path else ""))

    # A broken ORT install would make every case "ORT cannot run" and the check below pass on nothing.
    assert summary["checked"] > summary["total"] // 2, (
        f"ORT ran only {summary['checked']} of {summary['total']} cases: {summary_line(summary)}"
    )
    assert summary["regressions"] == 0, regression_message(summary)
