import numpy as np

from optimizer.passes import RemoveUnused
from optimizer.testing import model_from_text, op_types


def test_dead_nodes_and_their_weights_go():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3] x) => (float[3] y) {
            dead = Mul (x, w)
            deader = Relu (dead)
            y = Relu (x)
        }
        """,
        w=np.ones(3, np.float32),
    )
    remove = RemoveUnused()
    remove(model)
    assert op_types(model) == ["Relu"]
    assert "w" not in model.graph.initializers
    assert remove.total_rewrites == 2
