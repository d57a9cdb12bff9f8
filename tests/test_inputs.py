import numpy as np
import pytest

from optimizer.errors import UsageError
from optimizer.inputs import DEFAULT_DYNAMIC_DIM, generate_inputs, load_npz
from optimizer.ir import InputSpec


def _specs():
    return [
        InputSpec("input_ids", np.dtype(np.int64), ("batch", "sequence")),
        InputSpec("attention_mask", np.dtype(np.int64), ("batch", "sequence")),
        InputSpec("pixels", np.dtype(np.float32), (None, 3, "h", "w")),
        InputSpec("flag", np.dtype(bool), ()),
    ]


def test_generated_inputs_follow_specs_and_share_named_dims():
    feeds = generate_inputs(_specs())
    assert feeds["input_ids"].shape == (1, DEFAULT_DYNAMIC_DIM)
    assert feeds["attention_mask"].shape == feeds["input_ids"].shape
    assert feeds["pixels"].shape == (1, 3, DEFAULT_DYNAMIC_DIM, DEFAULT_DYNAMIC_DIM)
    assert feeds["pixels"].dtype == np.float32
    assert feeds["flag"].dtype == bool and feeds["flag"].shape == ()
    assert set(np.unique(feeds["input_ids"])) <= {0, 1}


def test_given_shapes_win():
    feeds = generate_inputs(_specs(), {"pixels": (2, 3, 16, 8)})
    assert feeds["pixels"].shape == (2, 3, 16, 8)


def test_npz_is_checked_against_the_specs(tmp_path):
    specs = _specs()[:2]
    path = tmp_path / "inputs.npz"
    np.savez(path, input_ids=np.ones((1, 8), np.int32), attention_mask=np.ones((1, 8), np.int64))
    feeds = load_npz(path, specs)
    assert feeds["input_ids"].dtype == np.int64
    np.savez(path, input_ids=np.ones((1, 8), np.int64))
    with pytest.raises(UsageError, match="missing input.*attention_mask"):
        load_npz(path, specs)
    np.savez(path, input_ids=np.ones((1, 8), np.float32), attention_mask=np.ones((1, 8), np.int64))
    with pytest.raises(UsageError, match="'input_ids' is float32"):
        load_npz(path, specs)
    path.write_bytes(b"garbage")
    with pytest.raises(UsageError, match="not a readable .npz"):
        load_npz(path, specs)



def test_a_shape_given_for_one_input_sizes_the_dims_it_shares():
    feeds = generate_inputs(_specs(), {"input_ids": (2, 7)})
    assert feeds["attention_mask"].shape == (2, 7)


def test_static_zero_dims_stay_zero():
    feeds = generate_inputs([InputSpec("empty", np.dtype(np.float32), (0, 3))])
    assert feeds["empty"].shape == (0, 3)
