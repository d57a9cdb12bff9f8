"""Calibration data for post-training quantization: where the samples come from, checked against the model.

`calibration_data(source, specs)` accepts
  - an `.npz` path whose keys are the model's input names: an array with one more axis than its input is a
    stack of samples along axis 0, any other array is the same in every sample;
  - a folder of images (jpg, png, bmp, webp; sorted by name), or one image, for a model with one image input,
    turned into inputs as an `ImagePreprocessing` says (resize, scale, mean/std, channel order, layout);
  - a dict of arrays (one sample), or an iterable of dicts;
  - None: random inputs generated from the specs, with a warning, since ranges from noise are a guess.
The result is a `CalibrationData`: it has a length and a description, and each iteration reads the samples
again (images are decoded one at a time), so calibrating on a thousand photos holds one of them in memory.
Every sample goes through `optimizer.inputs.check_feeds`: right input names, dtypes cast, ranks checked.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from optimizer.errors import UsageError
from optimizer.inputs import Feeds, check_feeds, generate_inputs, read_npz
from optimizer.ir import InputSpec

logger = logging.getLogger("optimizer")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# YOLO pads letterboxed images with this grey (in 0..255 pixel values, before scaling).
LETTERBOX_PAD = 114
# Random samples generated when no calibration data is given: a few seeds, so ranges are not from one draw.
GENERATED_SAMPLES = 8
GENERATED_WARNING = (
    "no calibration data given: quantization ranges come from random inputs; give --calibration "
    "(an .npz of inputs or a folder of images) for real accuracy"
)

ResizeMode = Literal["stretch", "letterbox", "center-crop"]
ChannelOrder = Literal["rgb", "bgr"]
Layout = Literal["nchw", "nhwc"]
RESIZE_MODES: tuple[ResizeMode, ...] = ("stretch", "letterbox", "center-crop")
CHANNEL_ORDERS: tuple[ChannelOrder, ...] = ("rgb", "bgr")
LAYOUTS: tuple[Layout, ...] = ("nchw", "nhwc")


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an image becomes a model input: pixel = ((value * scale) - mean) / std, per channel.

    Fields left as None come from the model: `size` from its input's static height and width, `layout` from
    where its channel axis (of size 1 or 3) is. `mean` and `std` are in the model's channel order (after
    `order`), one value for all channels or one per channel. "letterbox" fits the image inside `size` and pads
    with grey (114) like YOLO; "center-crop" resizes the shorter side to cover `size` and crops the middle.
    """

    size: tuple[int, int] | None = None  # (height, width)
    resize: ResizeMode = "stretch"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    order: ChannelOrder = "rgb"
    layout: Layout | None = None

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or any(int(d) < 1 for d in self.size)):
            raise UsageError(f"image preprocessing: size must be HEIGHTxWIDTH of positive sizes, not {self.size}")
        if self.resize not in RESIZE_MODES:
            raise UsageError(f"image preprocessing: unknown resize '{self.resize}'; use {', '.join(RESIZE_MODES)}")
        if self.order not in CHANNEL_ORDERS:
            raise UsageError(f"image preprocessing: unknown order '{self.order}'; use rgb or bgr")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise UsageError(f"image preprocessing: unknown layout '{self.layout}'; use nchw or nhwc")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise UsageError(f"image preprocessing: scale must be a positive number, not {self.scale}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, 3) or not all(math.isfinite(v) for v in values):
                raise UsageError(f"image preprocessing: {name} needs 1 or 3 numbers, not {values}")
        if any(v == 0 for v in self.std):
            raise UsageError(f"image preprocessing: std cannot be 0 ({'/'.join(map(str, self.std))})")

    @classmethod
    def parse(cls, text: str) -> ImagePreprocessing:
        """From the CLI's KEY=VALUE list, e.g. "size=320x320,resize=letterbox,mean=0.485/0.456/0.406".

        Keys: size (HxW, or one number for a square), resize, scale (a number or a fraction like 1/255),
        mean and std (numbers separated by /), order (rgb|bgr), layout (nchw|nhwc).
        """
        fields: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, equals, value = (part.strip() for part in item.partition("="))
            key = key.lower()
            if not equals or not value:
                raise UsageError(f"image preprocessing: '{item}' is not KEY=VALUE")
            if key not in _PARSERS:
                raise UsageError(f"image preprocessing: unknown key '{key}'; use {', '.join(_PARSERS)}")
            try:
                fields[key] = _PARSERS[key](value)
            except ValueError:
                raise UsageError(f"image preprocessing: bad {key} '{value}'; {_FORMATS[key]}") from None
        return cls(**fields)

    def describe(self) -> str:
        """E.g. "letterbox 320x320, rgb, nchw", plus the normalization when it is not 0..1."""
        size = "x".join(map(str, self.size)) if self.size else "model size"
        parts = [f"{self.resize} {size}", self.order, self.layout or "model layout"]
        if self.scale != 1 / 255:
            parts.append(f"scale {self.scale:.6g}")
        if self.mean != (0.0,) or self.std != (1.0,):
            parts.append("mean " + "/".join(f"{v:g}" for v in self.mean))
            parts.append("std " + "/".join(f"{v:g}" for v in self.std))
        return ", ".join(parts)


def _parse_size(value: str) -> tuple[int, int]:
    dims = [int(d) for d in value.lower().split("x")]
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1:
        raise ValueError(value)
    return dims[0], dims[1]


def _parse_choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in choices:
            raise ValueError(value)
        return value.lower()
    return parse


def _parse_number(value: str) -> float:
    """A number, or a fraction like 1/255 or 1/127.5."""
    numerator, slash, denominator = value.partition("/")
    return float(numerator) / float(denominator) if slash else float(value)


def _parse_numbers(value: str) -> tuple[float, ...]:
    numbers = tuple(float(v) for v in value.split("/"))
    if len(numbers) not in (1, 3):
        raise ValueError(value)
    return numbers


_PARSERS: dict[str, Callable[[str], object]] = {
    "size": _parse_size,
    "resize": _parse_choice(RESIZE_MODES),
    "scale": _parse_number,
    "mean": _parse_numbers,
    "std": _parse_numbers,
    "order": _parse_choice(CHANNEL_ORDERS),
    "layout": _parse_choice(LAYOUTS),
}
_FORMATS = {
    "size": "give HEIGHTxWIDTH like 320x320, or one size for a square",
    "resize": f"use {', '.join(RESIZE_MODES)}",
    "scale": "give a number or a fraction like 1/255",
    "mean": "give 1 or 3 numbers separated by / like 0.485/0.456/0.406",
    "std": "give 1 or 3 numbers separated by / like 0.229/0.224/0.225",
    "order": "use rgb or bgr",
    "layout": "use nchw or nhwc",
}


class CalibrationData:
    """Calibration samples (feeds by input name), read again on each iteration.

    `description` says what they are ("64 images from photos/ (letterbox 320x320, rgb, nchw)"); `generated`
    is True for random inputs, which then carry a `warning` for the report to print.
    """

    def __init__(
        self,
        samples: Callable[[], Iterator[Mapping[str, np.ndarray]]],
        length: int | None,
        specs: Sequence[InputSpec],
        *,
        description: str,
        source: str,
        generated: bool = False,
        warning: str | None = None,
    ) -> None:
        self._samples = samples
        self._length = length
        self._specs = list(specs)
        self._source = source
        self.description = description
        self.generated = generated
        self.warning = warning

    def __iter__(self) -> Iterator[Feeds]:
        for index, sample in enumerate(self._samples()):
            if not isinstance(sample, Mapping):
                raise UsageError(f"{self._source}: sample {index} is a {type(sample).__name__}, "
                                 "not a dict of arrays by input name")
            yield check_feeds(sample, self._specs, source=f"{self._source} (sample {index})")

    def __len__(self) -> int:
        if self._length is None:  # an iterable without a length: counted once, when first asked
            self._length = sum(1 for _ in self._samples())
        return self._length

    def __repr__(self) -> str:
        return f"CalibrationData({self.description!r})"


def calibration_data(
    source: object,
    specs: Sequence[InputSpec],
    *,
    preprocessing: ImagePreprocessing | None = None,
    limit: int | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> CalibrationData:
    """Calibration samples for a model with inputs `specs`, from `source` (see the module docstring).

    `preprocessing` applies to images and is ignored for other sources (one set of options may serve both
    calibration images and an .npz of evaluation inputs). `limit` keeps the first samples only; `shapes`
    (input name -> shape, as with --shape) sizes generated inputs and, when `preprocessing` has no size, the
    images.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"the calibration sample limit must be a positive integer, not {limit!r}")
    shapes = shapes or {}
    is_path = isinstance(source, (str, os.PathLike))
    if isinstance(source, CalibrationData):
        return source if limit is None else _limited(source, limit)
    if source is None:
        return _generated(specs, shapes, limit)
    if is_path:
        path = Path(source)
        if not path.exists():
            raise UsageError(f"{path}: no such calibration file or folder")
        if _is_image_source(path):
            return _images(path, specs, preprocessing or ImagePreprocessing(), limit, shapes)
        return _npz(path, specs, limit)
    if isinstance(source, Mapping):
        sample = check_feeds(source, specs, source="calibration data")
        return CalibrationData(lambda: iter([sample]), 1, specs, description="1 sample given in memory",
                               source="calibration data")
    if isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray)):
        return _iterable(source, specs, limit)
    raise UsageError(f"calibration data must be an .npz path, a folder of images, a dict of arrays or an "
                     f"iterable of dicts, not {type(source).__name__}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _limited(data: CalibrationData, limit: int) -> CalibrationData:
    return CalibrationData(
        # The raw samples: the new CalibrationData checks each one, as `data` would have.
        lambda: itertools.islice(data._samples(), limit), min(len(data), limit), data._specs,
        description=f"first {min(len(data), limit)} of {data.description}", source=data._source,
        generated=data.generated, warning=data.warning,
    )


# --- Random inputs -----------------------------------------------------------------------------------------

def _generated(specs: Sequence[InputSpec], shapes: Mapping[str, Sequence[int]], limit: int | None
               ) -> CalibrationData:
    count = min(GENERATED_SAMPLES, limit or GENERATED_SAMPLES)
    generate_inputs(specs, shapes, seed=0)  # fails now, naming the input, if data cannot be generated
    logger.warning(GENERATED_WARNING)
    return CalibrationData(
        lambda: (generate_inputs(specs, shapes, seed=seed) for seed in range(count)), count, specs,
        description=f"{_plural(count, 'sample')} of random inputs", source="generated calibration data",
        generated=True, warning=GENERATED_WARNING,
    )


# --- Samples in memory -------------------------------------------------------------------------------------

def _iterable(source: Iterable, specs: Sequence[InputSpec], limit: int | None) -> CalibrationData:
    label = "calibration data"
    one_shot = iter(source) is source
    if one_shot:
        # A generator can be read once only, and the samples are wanted again (statistics, then checks):
        # keep them. Pass a list or any object whose __iter__ starts over to stream them instead.
        source = list(itertools.islice(source, limit))
    try:
        length: int | None = len(source)  # type: ignore[arg-type]
    except TypeError:
        length = None
    if length is not None and limit is not None:
        length = min(length, limit)

    def reader() -> Iterator:
        return itertools.islice(iter(source), limit)

    first = next(reader(), None)
    if first is None:
        raise UsageError(f"{label} is empty")
    if not isinstance(first, Mapping):
        raise UsageError(f"{label}: sample 0 is a {type(first).__name__}, not a dict of arrays by input name")
    check_feeds(first, specs, source=f"{label} (sample 0)")
    what = _plural(length, "sample") if length is not None else "samples"
    kind = "in memory" if one_shot or isinstance(source, (list, tuple)) else f"from a {type(source).__name__}"
    return CalibrationData(reader, length, specs, description=f"{what} given {kind}", source=label)


# --- .npz files --------------------------------------------------------------------------------------------

def _npz(path: Path, specs: Sequence[InputSpec], limit: int | None) -> CalibrationData:
    headers = _npz_headers(path)
    missing = [spec.name for spec in specs if spec.name not in headers]
    if missing:
        raise UsageError(f"{path}: missing input(s) {', '.join(missing)}; has {', '.join(headers) or 'none'}")
    stacks: dict[str, int] = {}
    for spec in specs:
        shape, dtype = headers[spec.name]
        if dtype.hasobject:
            raise UsageError(f"{path}: array '{spec.name}' holds Python objects, not numbers")
        if spec.shape is None:
            continue
        if len(shape) == len(spec.shape) + 1:
            stacks[spec.name] = shape[0]
        elif len(shape) != len(spec.shape):
            raise UsageError(f"{path}: array '{spec.name}' has rank {len(shape)}; input '{spec.name}' has rank "
                             f"{len(spec.shape)} (or {len(spec.shape) + 1} for a stack of samples)")
    if len(set(stacks.values())) > 1:
        sizes = ", ".join(f"{name}: {count}" for name, count in stacks.items())
        raise UsageError(f"{path}: stacked inputs hold different numbers of samples ({sizes})")
    available = next(iter(stacks.values()), 1)
    if available == 0:
        raise UsageError(f"{path}: holds no samples (the stacked arrays are empty along axis 0)")
    count = min(available, limit or available)
    names = [spec.name for spec in specs]

    def samples() -> Iterator[dict[str, np.ndarray]]:
        arrays = read_npz(path, names)
        for index in range(count):
            yield {name: arrays[name][index] if name in stacks else arrays[name] for name in names}

    what = _plural(count, "sample") if count == available else f"first {count} of {available} samples"
    return CalibrationData(samples, count, specs, description=f"{what} from {path}", source=str(path))


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype, read from the .npy headers inside the zip without loading the data."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                headers[info.filename[: -len(".npy")]] = (tuple(shape), np.dtype(dtype))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"{path}: not a readable .npz of input arrays ({error})") from None
    return headers


# --- Images ------------------------------------------------------------------------------------------------

def _is_image_source(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


def _image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    # Dot files are skipped: macOS leaves "._photo.jpg" companions that are not images.
    files = sorted(
        (p for p in path.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )
    if not files:
        hint = "; give one .npz file (samples stacked along a first axis) instead of their folder" \
            if any(path.glob("*.npz")) else ""
        raise UsageError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder{hint}")
    return files


def _images(
    path: Path,
    specs: Sequence[InputSpec],
    preprocessing: ImagePreprocessing,
    limit: int | None,
    shapes: Mapping[str, Sequence[int]],
) -> CalibrationData:
    image = {spec.name: spec for spec in specs if spec.shape is None or len(spec.shape) == 4}
    if len(specs) != 1 or len(image) != 1:
        inputs = ", ".join(f"{spec.name} {list(spec.shape) if spec.shape else '[?]'}" for spec in specs)
        raise UsageError(f"{path}: images can feed a model with one 4-D image input; this one has {inputs}. "
                         "Give calibration inputs as an .npz instead")
    spec = specs[0]
    preprocessing, channels = _resolve_image_input(spec, preprocessing, shapes.get(spec.name))
    files = _image_files(path)
    for file in files:
        _check_image_header(file)
    batch_dim = shapes[spec.name][0] if spec.name in shapes else (spec.shape or (None,))[0]
    batch = int(batch_dim) if isinstance(batch_dim, (int, np.integer)) and batch_dim > 0 else 1
    available = math.ceil(len(files) / batch)
    count = min(available, limit or available)

    def samples() -> Iterator[dict[str, np.ndarray]]:
        # A last, partial batch is completed with the first images again.
        cycle = itertools.cycle(files)
        for _ in range(count):
            batch_files = list(itertools.islice(cycle, batch))
            yield {spec.name: np.stack([load_image(f, preprocessing, channels, spec.dtype)
                                        for f in batch_files])}

    images = min(len(files), count * batch)
    what = _plural(images, "image") if images == len(files) else f"first {images} of {len(files)} images"
    if batch > 1:
        what += f" in {count} batches of {batch}"
    where = f"{path}/" if path.is_dir() else str(path)
    return CalibrationData(samples, count, specs, description=f"{what} from {where} ({preprocessing.describe()})",
                           source=str(path))


def _resolve_image_input(
    spec: InputSpec, preprocessing: ImagePreprocessing, given_shape: Sequence[int] | None
) -> tuple[ImagePreprocessing, int]:
    """The preprocessing with size and layout filled in from the model, and the number of channels."""
    shape = tuple(given_shape) if given_shape is not None else spec.shape or (None,) * 4
    if len(shape) != 4:
        raise UsageError(f"input '{spec.name}': a shape for images needs 4 dims, not {list(shape)}")
    layout = preprocessing.layout
    if layout is None:
        layout = "nhwc" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "nchw"
    channel_axis, height_axis = (1, 2) if layout == "nchw" else (3, 1)
    model_size = tuple(shape[height_axis: height_axis + 2])
    static = all(isinstance(d, int) and d > 0 for d in model_size)
    size = preprocessing.size
    if size is None:
        if not static:
            raise UsageError(f"input '{spec.name}' has no fixed height and width "
                             f"({'x'.join(str(d) for d in model_size)}); give the image size, e.g. size=640x640")
        size = model_size
    elif static and tuple(size) != model_size:
        raise UsageError(f"image size {'x'.join(map(str, size))} does not fit input '{spec.name}', which takes "
                         f"{'x'.join(map(str, model_size))} ({layout})")
    channels = shape[channel_axis] if isinstance(shape[channel_axis], int) and shape[channel_axis] > 0 else 3
    if channels not in (1, 3):
        raise UsageError(f"input '{spec.name}' has {channels} channels on its {layout} channel axis; "
                         "images give 1 or 3 (set layout=nchw or layout=nhwc if that is the wrong axis)")
    for name in ("mean", "std"):
        if len(getattr(preprocessing, name)) not in (1, channels):
            raise UsageError(f"image preprocessing: {name} has {len(getattr(preprocessing, name))} values; "
                             f"input '{spec.name}' has {channels} channel(s)")
    return dataclasses.replace(preprocessing, size=(int(size[0]), int(size[1])), layout=layout), channels


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise UsageError("reading calibration images needs Pillow: pip install pillow") from None
    return Image, ImageOps


def _check_image_header(file: Path) -> None:
    Image, _ = _pil()
    try:
        with Image.open(file) as image:
            image.size  # noqa: B018 - the header is read; the pixels are decoded when the sample is used
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"{file}: not a readable image ({error})") from None


def load_image(
    file: str | os.PathLike, preprocessing: ImagePreprocessing, channels: int = 3, dtype: np.dtype = np.float32
) -> np.ndarray:
    """One image as a model input without the batch axis: [C, H, W] or [H, W, C] by the layout.

    `preprocessing` must have its size and layout set. Integer inputs get the resized pixel values as they
    are (no scale, mean or std).
    """
    Image, ImageOps = _pil()
    height, width = preprocessing.size  # type: ignore[misc]
    try:
        with Image.open(file) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB" if channels == 3 else "L")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"{file}: not a readable image ({error})") from None
    bilinear = Image.Resampling.BILINEAR
    if preprocessing.resize == "stretch":
        image = image.resize((width, height), bilinear)
    elif preprocessing.resize == "letterbox":
        ratio = min(width / image.width, height / image.height)
        fitted = image.resize((max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), bilinear)
        image = Image.new(image.mode, (width, height), LETTERBOX_PAD if channels == 1 else (LETTERBOX_PAD,) * 3)
        image.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    else:  # center-crop
        ratio = max(width / image.width, height / image.height)
        covering = (max(width, round(image.width * ratio)), max(height, round(image.height * ratio)))
        image = image.resize(covering, bilinear)
        left, top = (covering[0] - width) // 2, (covering[1] - height) // 2
        image = image.crop((left, top, left + width, top + height))
    pixels = np.asarray(image).reshape(height, width, channels)
    if preprocessing.order == "bgr":
        pixels = pixels[:, :, ::-1]
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        values = pixels.astype(np.float32) * np.float32(preprocessing.scale)
        values -= np.asarray(preprocessing.mean, dtype=np.float32)
        values /= np.asarray(preprocessing.std, dtype=np.float32)
    else:
        values = pixels
    if preprocessing.layout == "nchw":
        values = values.transpose(2, 0, 1)
    return np.ascontiguousarray(values, dtype=dtype)
