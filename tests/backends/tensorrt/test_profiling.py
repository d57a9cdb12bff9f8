"""TensorRT's layer profile as hwopt groups it, without a GPU: a stand-in for TensorRT and its EngineRunner that
reports layer times the way TensorRT's IProfiler is documented to. What TensorRT itself does is untested here."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from optimizer.backends.tensorrt.backend import TensorRTSession, engine_device_memory
from optimizer.backends.tensorrt.profiling import group_layer_times, layer_types, profile_engine

LAYERS = {"conv1 + relu1": 0.5, "Reformatting CopyNode for Input Tensor 0 to conv2": 0.1, "conv2": 0.3}


class FakeTensorRT:
    class IProfiler:
        def __init__(self):
            pass

    LayerInformationFormat = SimpleNamespace(JSON="json")


class FakeRunner:
    """Reports every layer to the context's profiler on each run, as TensorRT does once a profiler is set."""

    def __init__(self, information):
        self.trt = FakeTensorRT
        self.context = SimpleNamespace(profiler=None)
        inspector = SimpleNamespace(get_engine_information=lambda form: information)
        self.engine = SimpleNamespace(create_engine_inspector=lambda: inspector, device_memory_size_v2=3 << 20)
        self.output_names = ["y"]
        self.fed = None

    def set_inputs(self, feeds):
        self.fed = feeds

    def execute(self):
        for name, ms in LAYERS.items():
            if self.context.profiler is not None:
                self.context.profiler.report_layer_time(name, ms)


def test_layers_are_reported_by_name_where_the_engine_keeps_names_only():
    runner = FakeRunner(json.dumps({"Layers": list(LAYERS), "Bindings": ["x", "y"]}))
    times = profile_engine(runner, {"x": np.zeros(1, np.float32)}, runs=3)
    assert [(time.op_type, round(time.total_ms, 6), time.calls) for time in times] == [
        ("conv1 + relu1", 0.5, 1), ("conv2", 0.3, 1), ("Reformatting CopyNode for Input Tensor 0 to conv2", 0.1, 1)]
    assert sum(time.percent for time in times) == pytest.approx(100.0)


def test_layers_are_grouped_by_type_where_the_engine_tells_it():
    detailed = {"Layers": [{"Name": "conv1 + relu1", "LayerType": "CaskConvolution"},
                           {"Name": "conv2", "LayerType": "CaskConvolution"},
                           {"Name": "Reformatting CopyNode for Input Tensor 0 to conv2", "LayerType": "Reformat"}]}
    times = profile_engine(FakeRunner(json.dumps(detailed)), {"x": np.zeros(1, np.float32)}, runs=2)
    assert [(time.op_type, round(time.total_ms, 6), time.calls) for time in times] == [
        ("CaskConvolution", 0.8, 2), ("Reformat", 0.1, 1)]


def test_a_layer_the_inspector_does_not_list_keeps_its_name():
    times = group_layer_times([("a", 1.0), ("myelin sub-kernel", 1.0)], {"a": "Convolution"}, runs=1)
    assert {time.op_type for time in times} == {"Convolution", "myelin sub-kernel"}
    assert layer_types(None) == {} and layer_types("not json") == {}


def test_the_session_reports_the_engines_device_memory():
    session = TensorRTSession(FakeRunner("{}"), label="optimized model")
    assert session.arena_bytes == 3 << 20
    assert engine_device_memory(SimpleNamespace(device_memory_size=1024)) == 1024  # before TensorRT 10.1
    assert engine_device_memory(None) is None
