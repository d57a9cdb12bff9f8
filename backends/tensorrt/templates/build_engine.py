#!/usr/bin/env python3
"""Build a TensorRT engine from model.onnx on the device, and time it.

hwopt copies this script into every TensorRT bundle. It needs TensorRT's Python package (and NumPy); running
the engine (--benchmark) also needs torch with CUDA or cuda-python; hwopt itself is not needed. The settings
hwopt chose are read from build_config.json beside the script; options on the command line override them.

The TensorRT version is found at run time and decides how the network is typed:

- 10.x: weakly typed by default, with the precision flags the ONNX needs (FP16 for float16 tensors, INT8 for
  its Q/DQ nodes), so TensorRT may also pick float16 kernels for layers the ONNX keeps in float32.
  --strongly-typed makes every layer follow the ONNX's types exactly, as hwopt verified them.
- 11.x: every network is strongly typed and the precision flags are gone: the ONNX's float16 casts and
  Q/DQ nodes alone decide each layer's precision.

    python3 build_engine.py                        # model.onnx -> model.engine, timing cache in timing.cache
    python3 build_engine.py --dla-core 0           # Jetson: DLA core 0, GPU fallback for what DLA cannot run
    python3 build_engine.py --shape x=1x3x224x224  # a fixed shape (or min:opt:max) for a dynamic input
    python3 build_engine.py --benchmark            # build if needed, then time the engine on random inputs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = "build_config.json"
DEFAULTS = {
    "onnx": "model.onnx",
    "engine": "model.engine",
    "timing_cache": "timing.cache",
    "precision": "fp32",
    "precision_flags": [],
    "strongly_typed": False,
    "dla_core": None,
    "workspace_mib": None,
    "profile": {},
    "sparse_weights": False,
}


class BuildError(RuntimeError):
    """The engine could not be built or run; the message says why, naming nodes where TensorRT did."""


class EngineLoadError(BuildError):
    """TensorRT cannot load an engine file: built by another TensorRT version or for another GPU."""


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as error:
        raise BuildError(f"TensorRT's Python package is not installed ({error}): on Jetson it comes with JetPack "
                         "(python3-libnvinfer), elsewhere `pip install tensorrt`") from None
    return tensorrt


def has_weak_typing(trt) -> bool:
    """TensorRT 10.x has the precision flags (weak typing); 11.x removed them."""
    return hasattr(trt.BuilderFlag, "FP16")


# Settings


def read_config(path: Path) -> dict:
    config = dict(DEFAULTS)
    if path.is_file():
        config.update(json.loads(path.read_text(encoding="utf-8")))
    return config


def parse_dims(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "scalar"):
        return ()
    return tuple(int(d) for d in text.lower().split("x"))


def parse_shape_option(option: str) -> tuple[str, dict]:
    """`name=1x3x224x224` (fixed) or `name=1x3x224x224:4x3x224x224:8x3x224x224` (min:opt:max)."""
    name, _, shapes = option.rpartition("=")
    parts = [parse_dims(part) for part in shapes.split(":")]
    if not name or len(parts) not in (1, 3):
        raise BuildError(f"--shape {option!r}: expected NAME=DIMS or NAME=MIN:OPT:MAX, dims like 1x3x224x224")
    low, best, high = parts * 3 if len(parts) == 1 else parts
    return name, {"min": list(low), "opt": list(best), "max": list(high), "source": "--shape"}


# Building


@dataclass
class BuildResult:
    engine: Path
    seconds: float
    tensorrt_version: str
    strongly_typed: bool
    precision_flags: list[str] = field(default_factory=list)
    dla_core: int | None = None
    gpu_fallback_layers: list[str] = field(default_factory=list)
    """With a DLA core: the network's layers DLA cannot run, which TensorRT runs on the GPU instead."""
    notes: list[str] = field(default_factory=list)


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    *,
    profile: dict | None = None,
    precision_flags: list[str] = (),
    strongly_typed: bool = False,
    sparse_weights: bool = False,
    dla_core: int | None = None,
    timing_cache: Path | None = None,
    workspace_mib: int | None = None,
    verbose: bool = False,
    trt=None,
) -> BuildResult:
    """Parse `onnx_path`, build a serialized engine and write it to `engine_path`."""
    trt = trt or import_tensorrt()
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    notes: list[str] = []
    if not strongly_typed and not has_weak_typing(trt):
        strongly_typed = True
        notes.append(f"TensorRT {trt.__version__}: networks are always strongly typed; the ONNX's types decide "
                     "each layer's precision")
    network = builder.create_network(_network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise BuildError(f"TensorRT cannot parse {onnx_path.name}: " + "; ".join(parser_errors(parser)))
    config = builder.create_builder_config()
    flags_set = [] if strongly_typed else _set_precision_flags(trt, config, precision_flags, notes)
    if sparse_weights:
        # 10.x and 11.x alike: TensorRT checks each weight for 2:4 and uses sparse kernels where they win.
        flag = getattr(trt.BuilderFlag, "SPARSE_WEIGHTS", None)
        if flag is None:
            notes.append(f"TensorRT {trt.__version__} has no BuilderFlag.SPARSE_WEIGHTS; built dense")
        else:
            config.set_flag(flag)
            notes.append("sparse weights enabled (2:4 structured sparsity)")
    if workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    optimization_profile = _optimization_profile(builder, network, profile or {})
    if optimization_profile is not None:
        config.add_optimization_profile(optimization_profile)
    fallback = _use_dla(trt, builder, network, config, dla_core) if dla_core is not None else []
    if dla_core is not None and not {"FP16", "INT8"} & set(precision_flags):
        notes.append("DLA computes FP16/INT8 only and this ONNX is FP32: every layer runs on the GPU "
                     "(build the bundle at fp16 or int8 for DLA)")
    cache = _load_timing_cache(config, timing_cache, notes) if timing_cache is not None else None
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"TensorRT could not build an engine from {onnx_path.name} (its log above says why)")
    _write_atomically(engine_path, memoryview(serialized))
    if cache is not None:
        _write_atomically(timing_cache, memoryview(config.get_timing_cache().serialize()))
    return BuildResult(engine_path, time.perf_counter() - start, str(trt.__version__), strongly_typed,
                       flags_set, dla_core, fallback, notes)


def parser_errors(parser) -> list[str]:
    """The parser's errors, each naming its node and op when this TensorRT reports them."""
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        node = _call(error, "node_name") or (f"node #{error.node()}" if _call(error, "node") not in (None, -1)
                                             else "")
        op = _call(error, "node_operator")
        where = f"{node} ({op})" if node and op else node or op or "model"
        errors.append(f"{where}: {' '.join(str(error.desc()).split())}")
    return errors


def _call(error, method: str):
    try:
        return getattr(error, method)()
    except (AttributeError, TypeError):
        return None


def _network_flags(trt, strongly_typed: bool) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 1 << int(flag) if strongly_typed and flag is not None else 0


def _set_precision_flags(trt, config, names, notes: list[str]) -> list[str]:
    done = []
    for name in names:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            notes.append(f"TensorRT {trt.__version__} has no BuilderFlag.{name}; left unset")
            continue
        config.set_flag(flag)
        done.append(name)
    return done


def _optimization_profile(builder, network, ranges: dict):
    """One profile giving every dynamic input its min/opt/max shapes; None for a network with static inputs."""
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if -1 in tuple(network.get_input(i).shape)]
    if not dynamic:
        return None
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        shapes = ranges.get(tensor.name)
        if shapes is None:
            raise BuildError(f"input '{tensor.name}' has dynamic dims {tuple(tensor.shape)} and no shape range: "
                             f"pass --shape {tensor.name}=MIN:OPT:MAX (e.g. 1x3x224x224:1x3x224x224:8x3x224x224)")
        low, best, high = (tuple(shapes[key]) for key in ("min", "opt", "max"))
        if tensor.is_shape_tensor:
            profile.set_shape_input(tensor.name, low, best, high)
        else:
            profile.set_shape(tensor.name, low, best, high)
    return profile


def _use_dla(trt, builder, network, config, core: int) -> list[str]:
    """Put every layer DLA can run on DLA `core`, the rest on the GPU; return the names of the latter."""
    if builder.num_DLA_cores == 0:
        raise BuildError("--dla-core: this device has no DLA (Jetson AGX/NX Orin and Xavier have one or two)")
    if not 0 <= core < builder.num_DLA_cores:
        raise BuildError(f"--dla-core {core}: this device has DLA cores 0 to {builder.num_DLA_cores - 1}")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return [layer.name for layer in (network.get_layer(i) for i in range(network.num_layers))
            if not config.can_run_on_DLA(layer)]


def _load_timing_cache(config, path: Path, notes: list[str]):
    """Reuse timing measurements of earlier builds on this device (a cache from another GPU is ignored)."""
    cache = config.create_timing_cache(path.read_bytes() if path.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        notes.append(f"{path.name} was measured on another device or TensorRT; starting a new one")
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=True)
    return cache


def _write_atomically(path: Path, data) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# Running


class EngineRunner:
    """Runs a serialized engine on the GPU: host NumPy arrays in, host NumPy arrays out."""

    def __init__(self, engine_path: Path, *, trt=None) -> None:
        trt = trt or import_tensorrt()
        self.trt = trt
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise EngineLoadError(f"{engine_path}: TensorRT cannot load this engine (built by another TensorRT "
                             "version or for another GPU?); rebuild it with build_engine.py --rebuild")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.memory = CudaMemory.create()
        self._buffers: dict[str, tuple[int, object]] = {}
        self._outputs: dict[str, object] = {}

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each input's shape: the engine's own, or its profile's opt shape where it is dynamic."""
        shapes = {}
        for name in self.input_names:
            shape = tuple(self.engine.get_tensor_shape(name))
            if -1 in shape:
                shape = tuple(self.engine.get_tensor_profile_shape(name, 0)[1])
            shapes[name] = shape
        return shapes

    def random_inputs(self, seed: int = 0) -> dict:
        """Uniform [0, 1) floats; ones for integer inputs (a valid token id, a full attention mask)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        feeds = {}
        for name, shape in self.input_shapes().items():
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            feeds[name] = (rng.random(shape).astype(dtype) if dtype.kind == "f"
                           else np.ones(shape, dtype=dtype))
        return feeds

    def set_inputs(self, feeds: dict) -> None:
        """Copy `feeds` to the GPU and bind every tensor; run `execute` after this as often as wanted."""
        import numpy as np

        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise BuildError(f"missing inputs: {', '.join(missing)} "
                             f"(the engine takes {', '.join(self.input_names)})")
        for name in self.input_names:
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            array = np.ascontiguousarray(feeds[name], dtype=dtype)
            if not self.context.set_input_shape(name, array.shape):
                raise BuildError(f"input '{name}' {array.shape} is outside the engine's optimization profile "
                                 f"(min/opt/max {self.engine.get_tensor_profile_shape(name, 0)})")
            pointer = self._buffer(name, array.nbytes)
            self.memory.copy_in(pointer, array)
            self.context.set_tensor_address(name, pointer)
        self._outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            if -1 in shape:
                raise BuildError(f"output '{name}' has a data-dependent shape {shape}; this runner does not "
                                 "allocate those: time it with trtexec instead")
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            array = np.empty(shape, dtype=dtype)
            self._outputs[name] = array
            self.context.set_tensor_address(name, self._buffer(name, array.nbytes))

    def execute(self) -> None:
        if not self.context.execute_async_v3(self.memory.stream):
            raise BuildError("TensorRT failed to run the engine (its log above says why)")
        self.memory.synchronize()

    def outputs(self) -> dict:
        for name, array in self._outputs.items():
            self.memory.copy_out(array, self._buffers[name][0])
        return {name: array.copy() for name, array in self._outputs.items()}

    def run(self, feeds: dict) -> dict:
        self.set_inputs(feeds)
        self.execute()
        return self.outputs()

    def _buffer(self, name: str, nbytes: int) -> int:
        pointer, size = self._buffers.get(name, (0, 0))
        if size < max(nbytes, 1):
            if size:
                self.memory.free(pointer)
            pointer = self.memory.allocate(max(nbytes, 1))
            self._buffers[name] = (pointer, max(nbytes, 1))
        return pointer


class CudaMemory:
    """Device buffers and a stream, through torch when it has CUDA, else through cuda-python."""

    stream: int

    @staticmethod
    def create() -> CudaMemory:
        try:
            import torch

            if torch.cuda.is_available():
                return _TorchMemory(torch)
        except ImportError:
            pass
        try:
            try:
                from cuda.bindings import runtime as cudart
            except ImportError:
                from cuda import cudart
        except ImportError:
            raise BuildError("running the engine needs torch with CUDA or cuda-python (`pip install "
                             "cuda-python`); building it needs neither") from None
        return _CudaPythonMemory(cudart)


class _TorchMemory(CudaMemory):
    def __init__(self, torch) -> None:
        self.torch = torch
        self._stream = torch.cuda.Stream()
        self.stream = self._stream.cuda_stream
        self._tensors: dict[int, object] = {}

    def allocate(self, nbytes: int) -> int:
        tensor = self.torch.empty(nbytes, dtype=self.torch.uint8, device="cuda")
        self._tensors[tensor.data_ptr()] = tensor
        return tensor.data_ptr()

    def free(self, pointer: int) -> None:
        self._tensors.pop(pointer, None)

    def copy_in(self, pointer: int, array) -> None:
        source = self.torch.from_numpy(array.reshape(-1).view("uint8"))
        with self.torch.cuda.stream(self._stream):
            self._tensors[pointer][: source.numel()].copy_(source)
        self._stream.synchronize()

    def copy_out(self, array, pointer: int) -> None:
        flat = array.reshape(-1).view("uint8")
        flat[:] = self._tensors[pointer][: flat.size].cpu().numpy()

    def synchronize(self) -> None:
        self._stream.synchronize()


class _CudaPythonMemory(CudaMemory):
    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self.stream = int(self._check(cudart.cudaStreamCreate()))

    def _check(self, result):
        error, *values = result if isinstance(result, tuple) else (result,)
        if int(error) != 0:
            raise BuildError(f"CUDA error {error}")
        return values[0] if values else None

    def allocate(self, nbytes: int) -> int:
        return int(self._check(self.cudart.cudaMalloc(nbytes)))

    def free(self, pointer: int) -> None:
        self._check(self.cudart.cudaFree(pointer))

    def copy_in(self, pointer: int, array) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.cudart.cudaMemcpy(pointer, array.ctypes.data, array.nbytes, kind))

    def copy_out(self, array, pointer: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpy(array.ctypes.data, pointer, array.nbytes, kind))

    def synchronize(self) -> None:
        self._check(self.cudart.cudaStreamSynchronize(self.stream))


def benchmark(runner: EngineRunner, feeds: dict, *, warmup: int, iterations: int) -> dict:
    """Latency of `execute` alone (inputs already on the GPU), in milliseconds."""
    runner.set_inputs(feeds)
    for _ in range(warmup):
        runner.execute()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        runner.execute()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times), "min_ms": times[0],
            "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))], "iterations": iterations,
            "shapes": {name: list(array.shape) for name, array in feeds.items()}}


# Command line


def parse_args(argv=None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--config", type=Path, default=here / CONFIG_FILE,
                        help="settings written by hwopt (default: build_config.json beside this script)")
    parser.add_argument("--onnx", type=Path, help="the ONNX model (default: model.onnx beside this script)")
    parser.add_argument("--engine", type=Path, help="where to write the engine (default: model.engine)")
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=MIN:OPT:MAX",
                        help="shape range of a dynamic input, e.g. images=1x3x640x640 (fixed) or "
                             "ids=1x1:1x128:8x512; overrides build_config.json")
    parser.add_argument("--dla-core", type=int, default=None, metavar="N",
                        help="Jetson: run what DLA can on DLA core N, the rest on the GPU (GPU_FALLBACK)")
    parser.add_argument("--gpu", action="store_true", help="ignore a DLA core set in build_config.json")
    parser.add_argument("--strongly-typed", action="store_true",
                        help="TensorRT 10.x: follow the ONNX's types exactly instead of setting precision flags "
                             "(always so on 11.x)")
    parser.add_argument("--timing-cache", type=Path, help="timing cache file (default: timing.cache)")
    parser.add_argument("--no-timing-cache", action="store_true")
    parser.add_argument("--workspace-mib", type=int, help="cap TensorRT's workspace memory")
    parser.add_argument("--rebuild", action="store_true", help="build even if the engine exists")
    parser.add_argument("--benchmark", action="store_true", help="time the engine (builds it first if needed)")
    parser.add_argument("--inputs", type=Path, help=".npz of inputs for --benchmark (default: random)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    here = args.config.resolve().parent
    config = read_config(args.config)
    onnx_path = args.onnx or here / config["onnx"]
    engine_path = args.engine or here / config["engine"]
    profile = dict(config["profile"])
    profile.update(parse_shape_option(option) for option in args.shape)
    dla_core = None if args.gpu else (args.dla_core if args.dla_core is not None else config["dla_core"])
    timing_cache = None if args.no_timing_cache else args.timing_cache or here / config["timing_cache"]
    trt = import_tensorrt()
    print(f"TensorRT {trt.__version__}; {onnx_path.name} ({config['precision']})")
    if args.rebuild or not engine_path.is_file() or not args.benchmark:
        for name, shapes in profile.items():
            print(f"  {name}: min {shapes['min']}, opt {shapes['opt']}, max {shapes['max']}"
                  + (" (hwopt's default: check it)" if shapes.get("source") == "default" else ""))
        result = build_engine(onnx_path, engine_path, profile=profile,
                              precision_flags=list(config["precision_flags"]),
                              strongly_typed=args.strongly_typed or bool(config["strongly_typed"]),
                              sparse_weights=bool(config["sparse_weights"]),
                              dla_core=dla_core, timing_cache=timing_cache,
                              workspace_mib=args.workspace_mib or config["workspace_mib"], verbose=args.verbose,
                              trt=trt)
        for note in result.notes:
            print(f"  note: {note}")
        typing = "strongly typed" if result.strongly_typed else f"flags {', '.join(result.precision_flags) or '-'}"
        print(f"built {engine_path.name} in {result.seconds:.1f} s ({typing}"
              + (f", DLA core {dla_core}" if dla_core is not None else "") + ")")
        if result.gpu_fallback_layers:
            print(f"  {len(result.gpu_fallback_layers)} layers run on the GPU, not DLA: "
                  + ", ".join(result.gpu_fallback_layers[:20])
                  + (" ..." if len(result.gpu_fallback_layers) > 20 else ""))
    if args.benchmark:
        import numpy as np

        runner = EngineRunner(engine_path, trt=trt)
        feeds = dict(np.load(args.inputs)) if args.inputs else runner.random_inputs()
        timing = benchmark(runner, feeds, warmup=args.warmup, iterations=args.iterations)
        print(f"latency: median {timing['median_ms']:.3f} ms, p90 {timing['p90_ms']:.3f} ms, "
              f"min {timing['min_ms']:.3f} ms over {timing['iterations']} runs "
              f"({'given' if args.inputs else 'random'} inputs {timing['shapes']})")
        print(json.dumps({"tensorrt": str(trt.__version__), **timing}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as error:
        sys.exit(f"build_engine.py: {error}")
