"""README.md of a TensorRT bundle (placeholders: $name, filled by backends/tensorrt/backend.py)."""

from __future__ import annotations

import string

README = string.Template("""\
# TensorRT bundle for $target

hwopt $hwopt_version compiled this model for **$target** ($description) with TensorRT as the runtime.
A TensorRT engine runs only on the GPU model and TensorRT version that built it, so this folder holds what the
device needs to build one: copy it there, build, run.

| File | What it is |
|---|---|
| `model.onnx` | the model for TensorRT's ONNX parser (opset $opset), $precision_text |
| `build_config.json` | the build settings below, read by `build_engine.py` |
| `build_engine.py` | builds `model.engine` with TensorRT's Python API (10.x, 11.x) and times it; no hwopt needed |
| `trtexec.sh` | the same build with `trtexec` |
| `manifest.json` | size and SHA-256 of every file (hwopt checks them when it loads the bundle) |

TensorRT on this target: $versions

## 1. Copy it to the device

    scp -r $folder user@device:~/

## 2. Build the engine (on the device)

    cd ~/$folder
    python3 build_engine.py

It finds the TensorRT version at run time and types the network for it:

$typing_text

The build takes from seconds to minutes; its timing measurements are kept in `timing.cache`, which makes the
next build on the same device fast.
$dla_build
The same with trtexec (`./trtexec.sh` picks the right line for the installed version):

    # TensorRT 10.x
    $trtexec_10
    # TensorRT 11.x
    $trtexec_11

## 3. Run it

    python3 build_engine.py --benchmark                 # latency on random inputs
    python3 build_engine.py --benchmark --inputs x.npz  # ... on your inputs (one array per input name)
    trtexec --loadEngine=model.engine$load_shapes

In your application, deserialize `model.engine` with `tensorrt.Runtime` and run it with
`execute_async_v3`; `EngineRunner` in `build_engine.py` is a small example (NumPy in and out, through torch or
cuda-python).

## Precision

$precision_section

## Inputs and shapes

$shapes_section

## DLA

$dla_section

## Pre-flight

$preflight_section
""")
