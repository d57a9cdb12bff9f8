"""Who produces and who reads each tensor of a TFLiteGraph: what every precision pass asks first."""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer.backends.litert.flatbuffer import TFLiteGraph, numpy_dtype

# Weight input and output-channel axis of the ops whose weights the passes quantize: CONV_2D and
# FULLY_CONNECTED weights are OHWI / OI (channels first), DEPTHWISE_CONV_2D's are 1HWO, TRANSPOSE_CONV's OHWI.
WEIGHTS = {
    "CONV_2D": (1, 0),
    "DEPTHWISE_CONV_2D": (1, 3),
    "FULLY_CONNECTED": (1, 0),
    "TRANSPOSE_CONV": (1, 0),
}


class Uses:
    """Producer and readers of each tensor, taken once; a pass that rewires the graph takes a new one."""

    def __init__(self, graph: TFLiteGraph) -> None:
        self.graph = graph
        self.producer: dict[int, Any] = {}
        self.readers: dict[int, list[Any]] = {}
        for operator in graph.operators:
            for index in operator.outputs:
                self.producer[index] = operator
            for index in operator.inputs:
                if index >= 0:
                    self.readers.setdefault(index, []).append(operator)

    def is_float_activation(self, index: int) -> bool:
        """A float32 tensor computed at run time (or fed), not a constant."""
        return index >= 0 and not self.graph.is_constant(index) and self.dtype(index) == np.float32

    def is_float_constant(self, index: int) -> bool:
        return index >= 0 and self.graph.is_constant(index) and self.dtype(index) == np.float32

    def dtype(self, index: int) -> np.dtype:
        return numpy_dtype(self.graph.tensors[index].type)

    def size(self, index: int) -> int:
        return int(np.prod(self.graph.tensors[index].shape, dtype=np.int64))


def constant_bytes(graph: TFLiteGraph) -> int:
    """Bytes of constant data the graph holds (what the precision passes shrink)."""
    return sum(len(buffer.data) for buffer in graph.buffers if buffer.data is not None)
