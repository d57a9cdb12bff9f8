"""A model over 2 GB loads, goes through the default pipeline and saves without its weights ever being in
memory at once (weights stay memory-mapped from external data and are copied in bounded chunks)."""

import json
import subprocess
import sys
import textwrap

import onnx_ir as ir
import pytest

from optimizer.ir import load_model, to_proto

TENSOR_ELEMENTS = 300 * 1024 * 1024 // 4  # 300 MB of float32 each
TENSORS = 8  # 2.4 GB in all: more than protobuf's 2 GB limit


def _write_big_model(folder):
    """Eight 300 MB weights in one sparse external data file, chained by Adds (built without the data)."""
    data = folder / "weights.bin"
    with open(data, "wb") as f:
        f.truncate(TENSOR_ELEMENTS * 4 * TENSORS)  # sparse: costs no disk or memory until read
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([TENSOR_ELEMENTS]))
    previous, nodes, weights = x, [], []
    for i in range(TENSORS):
        tensor = ir.ExternalTensor(
            "weights.bin", offset=i * TENSOR_ELEMENTS * 4, length=TENSOR_ELEMENTS * 4,
            dtype=ir.DataType.FLOAT, shape=ir.Shape([TENSOR_ELEMENTS]), name=f"w{i}", base_dir=folder,
        )
        weight = ir.Value(name=f"w{i}", const_value=tensor, type=ir.TensorType(ir.DataType.FLOAT),
                          shape=ir.Shape([TENSOR_ELEMENTS]))
        add = ir.node("Add", [previous, weight])
        add.outputs[0].type, add.outputs[0].shape = weight.type, weight.shape
        nodes.append(add)
        weights.append(weight)
        previous = add.outputs[0]
    previous.name = "y"
    graph = ir.Graph([x], [previous], nodes=nodes, initializers=weights, opset_imports={"": 17}, name="big")
    # Serialized as is, the weights stay references into weights.bin.
    (folder / "model.onnx").write_bytes(model_to_bytes_keeping_references(ir.Model(graph, ir_version=9)))
    return folder / "model.onnx"


def model_to_bytes_keeping_references(model):
    return to_proto(model).SerializeToString()


@pytest.mark.slow
def test_a_model_over_2gb_is_optimized_in_bounded_memory(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    model_path = _write_big_model(source)
    # Anonymous memory (what the process allocated), sampled while it runs: memory-mapped weights also show
    # in the resident set, as page cache the kernel can drop, so the plain peak RSS would overstate it.
    script = textwrap.dedent(f"""
        import json, threading, time
        peak = [0]
        def sample():
            while True:
                with open("/proc/self/status") as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            peak[0] = max(peak[0], int(line.split()[1]) // 1024)
                time.sleep(0.005)
        threading.Thread(target=sample, daemon=True).start()
        import optimizer
        result = optimizer.optimize({str(model_path)!r}, output_dir={str(tmp_path / "out")!r},
                                    verify_outputs=False, benchmark=False)
        time.sleep(0.05)
        print(json.dumps({{"files": {{p.name: p.stat().st_size for p in result.files}},
                          "peak_anonymous_mb": peak[0]}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n2.4 GB model: {outcome}")
    weights_bytes = TENSOR_ELEMENTS * 4 * TENSORS
    assert outcome["files"]["model.onnx.data"] == weights_bytes
    assert outcome["files"]["model.onnx"] < 1 << 20
    # The weights are 2.4 GB; the whole run, interpreter and libraries included, stays far below that.
    assert outcome["peak_anonymous_mb"] < 600, outcome
    reloaded = load_model(tmp_path / "out" / "model.onnx")
    assert len(reloaded.graph.initializers) == TENSORS
