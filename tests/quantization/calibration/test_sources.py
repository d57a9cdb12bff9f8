import logging

import numpy as np
import pytest
from PIL import Image

from optimizer.errors import UsageError
from optimizer.ir import InputSpec
from optimizer.quantization.calibration import sources
from optimizer.quantization.calibration.sources import (
    GENERATED_SAMPLES,
    CalibrationData,
    ImagePreprocessing,
    calibration_data,
)

FLOAT = np.dtype(np.float32)
PAD = np.float32(114 / 255)


def _image_spec(shape=(1, 3, 32, 32), name="images"):
    return [InputSpec(name, FLOAT, shape)]


def _two_input_specs():
    return [InputSpec("x", FLOAT, ("N", 4)), InputSpec("mask", np.dtype(np.int64), ("N", 4))]


def _stripes(path, size=(40, 20)):
    """A 40x20 (width x height) image: a red, a green and a blue band from left to right."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 4, 0] = 255
    pixels[:, size[0] // 4: 3 * size[0] // 4, 1] = 255
    pixels[:, 3 * size[0] // 4:, 2] = 255
    Image.fromarray(pixels).save(path)
    return path


def _folder(tmp_path, count=3):
    folder = tmp_path / "photos"
    folder.mkdir(parents=True)
    for index in range(count):
        _stripes(folder / f"{index:02d}.png")
    return folder


# --- .npz --------------------------------------------------------------------------------------------------

def test_npz_with_one_sample(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, x=np.ones((2, 4), np.float64), mask=np.ones((2, 4), np.int32), extra=np.zeros(3))
    data = calibration_data(path, _two_input_specs())
    samples = list(data)
    assert len(data) == len(samples) == 1
    assert set(samples[0]) == {"x", "mask"}
    assert samples[0]["x"].dtype == np.float32 and samples[0]["mask"].dtype == np.int64  # cast to the inputs
    assert data.description == f"1 sample from {path}" and not data.generated and data.warning is None


def test_npz_stack_of_samples_with_a_shared_input(tmp_path):
    path = tmp_path / "stack.npz"
    x = np.arange(5 * 2 * 4, dtype=np.float32).reshape(5, 2, 4)
    np.savez_compressed(path, x=x, mask=np.ones((2, 4), np.int64))  # mask: the same in every sample
    data = calibration_data(path, _two_input_specs())
    assert len(data) == 5
    for _ in range(2):  # re-iterable
        samples = list(data)
        assert [s["x"].shape for s in samples] == [(2, 4)] * 5
        np.testing.assert_array_equal(samples[3]["x"], x[3])
        assert all(s["mask"].shape == (2, 4) for s in samples)
    limited = calibration_data(path, _two_input_specs(), limit=2)
    assert len(limited) == len(list(limited)) == 2
    assert limited.description == f"first 2 of 5 samples from {path}"


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.ones((2, 4), np.float32)}, "missing input.*mask"),
    ({"x": np.ones((3, 2, 4), np.float32), "mask": np.ones((2, 2, 4), np.int64)}, "different numbers"),
    ({"x": np.ones(4, np.float32), "mask": np.ones((2, 4), np.int64)}, "'x' has rank 1"),
    ({"x": np.ones((0, 2, 4), np.float32), "mask": np.ones((2, 4), np.int64)}, "no samples"),
    ({"x": np.array([None, 1], dtype=object), "mask": np.ones((2, 4), np.int64)}, "Python objects"),
])
def test_bad_npz_contents_name_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UsageError, match=f"bad.npz.*{message}"):
        calibration_data(path, _two_input_specs())


def test_not_an_npz_names_the_file(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("not a zip")
    with pytest.raises(UsageError, match="broken.npz: not a readable .npz"):
        calibration_data(path, _two_input_specs())
    with pytest.raises(UsageError, match="missing.npz: no such"):
        calibration_data(tmp_path / "missing.npz", _two_input_specs())


# --- Images ------------------------------------------------------------------------------------------------

def test_image_folder_letterbox_pads_grey_and_stretch_fills(tmp_path):
    folder = _folder(tmp_path)
    letterbox = calibration_data(folder, _image_spec(), preprocessing=ImagePreprocessing(resize="letterbox"))
    stretch = calibration_data(folder, _image_spec(), preprocessing=ImagePreprocessing(resize="stretch"))
    assert len(letterbox) == len(stretch) == 3
    assert letterbox.description == f"3 images from {folder}/ (letterbox 32x32, rgb, nchw)"
    boxed, stretched = next(iter(letterbox))["images"], next(iter(stretch))["images"]
    assert boxed.shape == stretched.shape == (1, 3, 32, 32) and boxed.dtype == np.float32
    # 40x20 fits as 32x16: 8 grey rows above and below; the stretched image has none.
    np.testing.assert_allclose(boxed[0, :, :8, :], PAD)
    np.testing.assert_allclose(boxed[0, :, -8:, :], PAD)
    assert boxed[0, 0, 16, 0] == 1.0 and boxed[0, 2, 16, -1] == 1.0  # red on the left, blue on the right
    assert stretched[0, 0, 0, 0] == 1.0 and stretched[0, 1, 0, 16] == 1.0
    assert stretched.min() >= 0.0 and stretched.max() <= 1.0


def test_center_crop_keeps_the_middle(tmp_path):
    folder = _folder(tmp_path, count=1)
    data = calibration_data(folder, _image_spec(), preprocessing=ImagePreprocessing(resize="center-crop"))
    image = next(iter(data))["images"][0]
    # The shorter side (20) grows to 32, the width to 64; the middle 32 columns are the green band.
    middle = image[:, :, 2:-2]  # the outer columns blend with the neighbouring bands
    assert middle[1].min() > 0.9 and middle[0].max() < 0.1 and middle[2].max() < 0.1


def test_bgr_nhwc_and_normalization(tmp_path):
    folder = _folder(tmp_path, count=1)
    spec = _image_spec((1, 32, 32, 3))  # channels last: the layout comes from the model
    rgb = next(iter(calibration_data(folder, spec, preprocessing=ImagePreprocessing())))["images"]
    bgr = next(iter(calibration_data(folder, spec, preprocessing=ImagePreprocessing(order="bgr"))))["images"]
    assert rgb.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])
    normalized = ImagePreprocessing.parse("mean=0.5/0.25/0,std=0.5/0.5/2,layout=nhwc")
    values = next(iter(calibration_data(folder, spec, preprocessing=normalized)))["images"]
    np.testing.assert_allclose(values, (rgb - [0.5, 0.25, 0.0]) / [0.5, 0.5, 2.0], rtol=1e-6)
    raw = next(iter(calibration_data(folder, spec, preprocessing=ImagePreprocessing(scale=1.0))))["images"]
    np.testing.assert_allclose(raw, rgb * 255, rtol=1e-6)


def test_grayscale_batched_and_uint8_inputs(tmp_path):
    folder = _folder(tmp_path, count=3)
    gray = calibration_data(folder, _image_spec((1, 1, 16, 24)))
    assert next(iter(gray))["images"].shape == (1, 1, 16, 24)
    batched = calibration_data(folder, _image_spec((2, 3, 16, 16)))
    assert len(batched) == 2 and "3 images in 2 batches of 2" in batched.description
    assert [s["images"].shape for s in batched] == [(2, 3, 16, 16)] * 2
    pixels = calibration_data(folder, [InputSpec("images", np.dtype(np.uint8), (1, 16, 16, 3))])
    sample = next(iter(pixels))["images"]
    assert sample.dtype == np.uint8 and sample.max() == 255


def test_images_are_decoded_one_at_a_time_on_demand(tmp_path, monkeypatch):
    folder = _folder(tmp_path, count=3)
    decoded = []
    load_image = sources.load_image
    monkeypatch.setattr(sources, "load_image", lambda file, *a: decoded.append(file) or load_image(file, *a))
    data = calibration_data(folder, _image_spec())
    assert decoded == []
    iterator = iter(data)
    next(iterator)
    assert len(decoded) == 1
    list(iterator)
    list(data)
    assert len(decoded) == 6  # every iteration reads the files again


def test_image_size_comes_from_the_model_or_the_options(tmp_path):
    folder = _folder(tmp_path, count=1)
    dynamic = _image_spec(("batch", 3, "height", "width"))
    with pytest.raises(UsageError, match="no fixed height and width.*size="):
        calibration_data(folder, dynamic)
    sized = calibration_data(folder, dynamic, preprocessing=ImagePreprocessing.parse("size=24x40"))
    assert next(iter(sized))["images"].shape == (1, 3, 24, 40)
    from_shapes = calibration_data(folder, dynamic, shapes={"images": (2, 3, 8, 8)})
    assert next(iter(from_shapes))["images"].shape == (2, 3, 8, 8)
    with pytest.raises(UsageError, match="image size 64x64 does not fit input 'images', which takes 32x32"):
        calibration_data(folder, _image_spec(), preprocessing=ImagePreprocessing(size=(64, 64)))


def test_image_folder_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="empty: no images"):
        calibration_data(empty, _image_spec())
    np.savez(empty / "inputs.npz", images=np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(UsageError, match="give one .npz file"):
        calibration_data(empty, _image_spec())
    folder = _folder(tmp_path, count=1)
    (folder / "broken.jpg").write_text("not a jpeg")
    with pytest.raises(UsageError, match="broken.jpg: not a readable image"):
        calibration_data(folder, _image_spec())
    with pytest.raises(UsageError, match="one 4-D image input"):
        calibration_data(_folder(tmp_path / "other", 1), _two_input_specs())
    # Preprocessing is for images only; other sources ignore it.
    sample = {"images": np.zeros((1, 3, 32, 32), np.float32)}
    assert len(calibration_data(sample, _image_spec(), preprocessing=ImagePreprocessing())) == 1


def test_a_single_image_file(tmp_path):
    path = _stripes(tmp_path / "one.jpg")
    data = calibration_data(path, _image_spec())
    assert len(data) == 1 and data.description.startswith(f"1 image from {path} (")


def test_parse_preprocessing():
    parsed = ImagePreprocessing.parse(
        "size=320x320,resize=letterbox,mean=0.485/0.456/0.406,std=0.229/0.224/0.225,order=rgb,layout=nchw"
    )
    assert parsed == ImagePreprocessing(
        size=(320, 320), resize="letterbox", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        order="rgb", layout="nchw",
    )
    assert ImagePreprocessing.parse("size=224, scale=1/127.5, order=BGR") == ImagePreprocessing(
        size=(224, 224), scale=1 / 127.5, order="bgr")
    assert ImagePreprocessing.parse("") == ImagePreprocessing()


@pytest.mark.parametrize("text, message", [
    ("colour=rgb", "unknown key 'colour'"),
    ("size=big", "bad size 'big'"),
    ("size=0x3", "bad size '0x3'"),
    ("resize=zoom", "bad resize 'zoom'; use stretch, letterbox, center-crop"),
    ("mean=1/2", "bad mean '1/2'"),
    ("std=0", "std cannot be 0"),
    ("scale=-1", "scale must be a positive number"),
    ("layout", "'layout' is not KEY=VALUE"),
])
def test_parse_errors_name_the_key_or_value(text, message):
    with pytest.raises(UsageError, match=message):
        ImagePreprocessing.parse(text)


# --- In memory and generated ---------------------------------------------------------------------------------

def test_a_dict_a_list_and_a_generator_of_samples():
    specs = _two_input_specs()
    sample = {"x": np.zeros((1, 4)), "mask": np.zeros((1, 4), np.int32)}
    single = calibration_data(sample, specs)
    assert len(single) == 1 and next(iter(single))["x"].dtype == np.float32
    listed = calibration_data([sample] * 4, specs, limit=3)
    assert len(listed) == len(list(listed)) == 3 and listed.description == "3 samples given in memory"
    generated_once = calibration_data((dict(sample) for _ in range(5)), specs)
    assert len(generated_once) == 5 and len(list(generated_once)) == len(list(generated_once)) == 5


def test_a_reiterable_without_a_length():
    specs = _two_input_specs()

    class Dataset:
        def __iter__(self):
            for index in range(3):
                yield {"x": np.full((1, 4), index, np.float32), "mask": np.zeros((1, 4), np.int64)}

    data = calibration_data(Dataset(), specs)
    assert [float(s["x"][0, 0]) for s in data] == [0.0, 1.0, 2.0]
    assert len(data) == 3 and data.description == "samples given from a Dataset"


def test_bad_samples_in_memory():
    specs = _two_input_specs()
    with pytest.raises(UsageError, match="calibration data is empty"):
        calibration_data([], specs)
    with pytest.raises(UsageError, match="missing input.*mask"):
        calibration_data([{"x": np.zeros((1, 4))}], specs)
    with pytest.raises(UsageError, match="sample 0 is a int"):
        calibration_data([1, 2], specs)
    with pytest.raises(UsageError, match="'x' is int64, the model expects float32"):
        calibration_data({"x": np.zeros((1, 4), np.int64), "mask": np.zeros((1, 4), np.int64)}, specs)
    with pytest.raises(UsageError, match="not int"):
        calibration_data(3, specs)
    with pytest.raises(UsageError, match="positive integer"):
        calibration_data(None, specs, limit=0)
    good = {"x": np.zeros((1, 4)), "mask": np.zeros((1, 4), np.int64)}
    bad_later = calibration_data([good, {"x": np.zeros(4)}], specs)
    with pytest.raises(UsageError, match=r"\(sample 1\): missing input"):
        list(bad_later)


def test_no_data_generates_random_samples_with_a_loud_warning(caplog):
    specs = _two_input_specs()
    with caplog.at_level(logging.WARNING, logger="optimizer"):
        data = calibration_data(None, specs, shapes={"x": (2, 4)})
    assert data.generated and "no calibration data given" in data.warning and "--calibration" in data.warning
    assert data.warning in caplog.text
    samples = list(data)
    assert len(data) == len(samples) == GENERATED_SAMPLES
    assert samples[0]["x"].shape == (2, 4) and samples[0]["mask"].shape == (2, 4)
    assert not np.array_equal(samples[0]["x"], samples[1]["x"])  # different seeds
    np.testing.assert_array_equal(samples[0]["x"], next(iter(data))["x"])  # the same on each iteration
    assert len(calibration_data(None, specs, limit=2)) == 2
    assert calibration_data(data, specs) is data
    with pytest.raises(UsageError, match="no known rank"):
        calibration_data(None, [InputSpec("x", FLOAT, None)])


def test_calibration_data_is_its_own_source():
    data = calibration_data([{"images": np.zeros((1, 3, 32, 32), np.float32)}] * 5, _image_spec())
    limited = calibration_data(data, _image_spec(), limit=2)
    assert isinstance(limited, CalibrationData) and len(limited) == len(list(limited)) == 2
