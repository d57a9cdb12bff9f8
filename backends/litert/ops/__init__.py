"""The table of op converters: ONNX op type -> function(GraphConverter, node), one module per family."""

from optimizer.backends.litert.ops import conv, elementwise, matmul, pool, reduce, tensor

CONVERTERS = {**conv.CONVERTERS, **pool.CONVERTERS, **elementwise.CONVERTERS, **matmul.CONVERTERS,
              **reduce.CONVERTERS, **tensor.CONVERTERS}
