"""Property-based tests (Hypothesis): random arguments, shapes, dtypes and byte strings
thrown at the Python API, the argument parsers and the file readers. Each call must
return a correct result or raise the documented error type (all subclasses of
ValueError, which the command line prints in one line), never anything else."""

from __future__ import annotations

import argparse
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from liifsr.checkpoint import CheckpointError, save_model
from liifsr.checks import UpscaleError, output_size
from liifsr.commands.upscale import parse_scale, parse_size
from liifsr.config import ConfigError, apply_override, from_dict
from liifsr.evaluation.datasets import parse_scales
from liifsr.imageio import ImageError, LoadedImage, read_image
from liifsr.inference import upscale
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.training.config import TrainConfig
from liifsr.zoo import load_model

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def model() -> LIIF:
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8], global_skip=True))
    return LIIF(config).eval()


# --- argument parsers -------------------------------------------------------------------------

@FAST
@given(st.text(max_size=12) | st.from_regex(r"-?\d{0,3}(\.\d{0,2})?(e-?\d)?(,-?\d{0,2}(\.\d)?)?", fullmatch=True))
def test_parse_scale(text):
    try:
        sy, sx = parse_scale(text)
    except argparse.ArgumentTypeError:
        return
    assert all(isinstance(s, float) and math.isfinite(s) and s > 0 for s in (sy, sx))


POSITIVE_SCALES = st.floats(min_value=0, exclude_min=True, allow_infinity=False) | st.integers(1, 10**6).map(float)


@FAST
@given(POSITIVE_SCALES, POSITIVE_SCALES)
def test_parse_scale_accepts_every_positive_finite_scale(sy, sx):
    # test_parse_scale passes on a refusal, so it would pass a parser that refused everything
    assert parse_scale(repr(sy)) == (sy, sy)
    assert parse_scale(f"{sy!r},{sx!r}") == (sy, sx)


@FAST
@given(st.text(max_size=12) | st.from_regex(r"\d{0,4}[xX]\d{0,4}", fullmatch=True))
def test_parse_size(text):
    try:
        height, width = parse_size(text)
    except argparse.ArgumentTypeError:
        return
    assert height >= 1 and width >= 1 and parse_size(f"{height}x{width}") == (height, width)


@FAST
@given(st.text(max_size=16))
def test_parse_scales(text):
    try:
        scales = parse_scales(text)
    except ValueError:
        return
    assert scales and all(s >= 1 and s == int(s) for s in scales)


ANY = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=3) | st.lists(
    st.integers(-2, 50) | st.floats(allow_nan=True) | st.booleans(), max_size=3).map(tuple)


@FAST
@given(st.tuples(st.integers(1, 50), st.integers(1, 50)), ANY, ANY)
def test_output_size(in_hw, scale, size):
    try:
        height, width = output_size(in_hw, scale, size)
    except UpscaleError:
        return
    assert type(height) is int and type(width) is int and height >= 1 and width >= 1


# --- the Python API ---------------------------------------------------------------------------

ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.int32, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
)


@FAST
@given(ARRAYS, st.floats(0.1, 3) | st.tuples(st.floats(0.2, 3), st.floats(0.2, 3)))
def test_upscale_numpy_arrays(model, image, scale):
    try:
        out = upscale(model, image, scale=scale)
    except UpscaleError:
        return
    expected = output_size(image.shape[:2], scale, None)
    assert out.dtype == image.dtype and out.shape[:2] == expected and out.shape[2:] == image.shape[2:]


@FAST
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5),
               elements=st.floats(-1, 2, width=32) | st.just(float("nan"))),
    st.sampled_from([None, 1, 3, 64]), st.sampled_from([None, 2, 100]),
)
def test_upscale_tensors(model, values, tile_size, chunk_size):
    image = torch.from_numpy(values)
    try:
        out = upscale(model, image, size=(7, 5), tile_size=tile_size, chunk_size=chunk_size)
    except UpscaleError:
        assert (image.dim() not in (3, 4) or 0 in image.shape or image.shape[-3] != 3 or torch.isnan(image).any()
                or not 0 <= image.min() <= image.max() <= 1)  # values outside [0, 1] are refused, not clipped
        return
    assert out.shape == (*image.shape[:-2], 7, 5) and torch.isfinite(out).all() and 0 <= out.min() <= out.max() <= 1


# --- file readers -----------------------------------------------------------------------------


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """A real file with bytes changed, cut short, or extended."""
    def damage(data, edits, cut):
        raw = bytearray(original)
        for position, value in edits:
            raw[position % len(raw)] = value
        return bytes(raw[:cut])
    return st.builds(damage, st.just(original), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
                     st.integers(0, len(original) + 1))


@FAST
@given(st.binary(max_size=300) | damaged(_png_bytes()), st.sampled_from([".png", ".jpg", ".tif", ".gif", ".bmp", ".webp"]))
def test_read_image_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except ImageError:
            return
    assert isinstance(image, LoadedImage) and image.rgb.dtype == np.float32 and image.rgb.ndim == 3
    assert image.rgb.shape[2] == 3 and min(image.rgb.shape[:2]) >= 1 and 0 <= image.rgb.min() <= image.rgb.max() <= 1


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory, model) -> bytes:
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    save_model(model, path)
    return path.read_bytes()


@FAST
@given(data=st.data(), suffix=st.sampled_from([".safetensors", ".pth", ".ckpt"]))
def test_load_model_bytes(model_bytes, data, suffix):
    raw = data.draw(st.binary(max_size=200) | damaged(model_bytes))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m{suffix}"
        path.write_bytes(raw)
        try:
            loaded = load_model(path)
        except CheckpointError:
            return
    assert isinstance(loaded, LIIF)


# --- configs ----------------------------------------------------------------------------------

VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)
KEYS = st.sampled_from(["model", "model.decoder.hidden", "model.encoder.n_feats", "optim.lr", "optim.gamma", "epochs",
                        "data.patch_size", "val_scales", "nope", "data", "optim.milestones.x", ""])


@FAST
@given(st.dictionaries(st.sampled_from(["model", "data", "optim", "epochs", "seed", "x"]), VALUES, max_size=3))
def test_from_dict(data):
    try:
        config = from_dict(TrainConfig, data)
    except ConfigError:
        return
    assert isinstance(config, TrainConfig)


@FAST
@given(st.lists(st.tuples(KEYS, st.text(max_size=8) | st.from_regex(r"-?\d(\.\d)?e-?\d", fullmatch=True)), max_size=3))
def test_overrides(overrides):
    data: dict = {}
    try:
        for key, value in overrides:
            apply_override(data, f"{key}={value}")
        config = from_dict(TrainConfig, data)
    except ConfigError:
        return
    assert isinstance(config, TrainConfig)
