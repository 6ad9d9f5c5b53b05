"""`liifsr.checks`: what an upscale may ask. Scales, output sizes, tuning options,
precisions, models and input tensors are checked here once; every refusal is an
`UpscaleError` (or a TypeError for a model that is not one) in one line naming the problem."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from liifsr.checks import (
    MAX_OUTPUT_PIXELS,
    MAX_SIDE,
    Fit,
    UpscaleError,
    check_input,
    check_model,
    check_model_precision,
    check_output_size,
    check_scale,
    check_tuning,
    check_unit_range,
    output_size,
    shape_text,
)
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig


def one_line(caught: pytest.ExceptionInfo) -> str:
    message = str(caught.value)
    assert message and "\n" not in message and len(message) < 300, message
    return message


def test_an_upscale_error_is_a_value_error():
    """Callers that catch ValueError (the command line, the server) catch it too."""
    assert issubclass(UpscaleError, ValueError)


# --- scales -----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 0.001, 0.5, 1, 2, 3.7, 1e300, np.float32(0.25), np.float64(2.5),
                                   np.int64(3), np.uint8(4), 10**300])
def test_every_positive_finite_number_is_a_scale(scale):
    value = check_scale(scale)
    assert type(value) is float and value == float(scale)


@pytest.mark.parametrize("scale, shown", [
    (0, "0"), (0.0, "0.0"), (-0.0, "-0.0"), (-2, "-2"), (-1e-9, "-1e-09"), (float("nan"), "nan"), (float("inf"), "inf"),
    (float("-inf"), "-inf"), (np.float32("nan"), repr(np.float32("nan"))), (True, "True"), (False, "False"),
    (np.bool_(True), repr(np.bool_(True))), ("2", "'2'"), (None, "None"), ([2], "[2]"), (2 + 0j, "(2+0j)"), (Decimal("2"), "Decimal('2')"),
    (10**400, "an integer of 401 digits"),
])
def test_anything_else_is_refused_naming_the_rule_and_the_value(scale, shown):
    with pytest.raises(UpscaleError) as caught:
        check_scale(scale)
    assert one_line(caught) == f"scale must be a positive finite number, got {shown}"


@pytest.mark.parametrize("scale", [1, 2, 3.0, np.int32(4), 1e15])
def test_whole_scales_pass_when_whole_numbers_are_asked(scale):
    assert check_scale(scale, whole=True) == float(scale)


@pytest.mark.parametrize("scale", [2.5, 0.5, 1.000001, 1e-300])
def test_fractions_are_refused_when_whole_numbers_are_asked(scale):
    with pytest.raises(UpscaleError) as caught:
        check_scale(scale, whole=True)
    assert one_line(caught) == f"scale must be a positive whole number, got {scale!r}"


def test_a_lower_bound_is_inclusive_and_named_with_its_reason():
    assert check_scale(1, at_least=1) == 1.0
    assert check_scale(1.5, at_least=1) == 1.5
    with pytest.raises(UpscaleError) as caught:
        check_scale(0.999, at_least=1, why=" (compare's crops are upscaled)")
    assert one_line(caught) == "scale must be a finite number >= 1 (compare's crops are upscaled), got 0.999"
    with pytest.raises(UpscaleError) as caught:
        check_scale(2.5, at_least=2, whole=True)
    assert one_line(caught) == "scale must be a whole number >= 2, got 2.5"
    with pytest.raises(UpscaleError, match="a whole number >= 2"):
        check_scale(1, at_least=2, whole=True)


# --- output sizes -----------------------------------------------------------------------


def test_scaled_sides_round_to_the_nearest_pixel_and_never_to_zero():
    assert output_size((10, 7), 0.33, None) == (3, 2)  # 3.3, 2.31
    assert output_size((10, 7), 1.17, None) == (12, 8)  # 11.7, 8.19
    assert output_size((10, 7), (0.5, 3), None) == (5, 21)  # per axis: (sy, sx)
    assert output_size((10, 7), [2, 0.6], None) == (20, 4)  # 4.2; a list as well as a tuple
    assert output_size((3, 1000), 0.001, None) == (1, 1)  # 0.003 and 1.0: at least one pixel


@pytest.mark.parametrize("seed", range(5))
def test_each_scaled_side_is_within_half_a_pixel_of_the_exact_length(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        in_hw = (int(rng.integers(1, 5000)), int(rng.integers(1, 5000)))
        sy, sx = (float(s) for s in np.exp(rng.uniform(-4, 4, 2)))
        out = output_size(in_hw, (sy, sx), None)
        for side, exact in zip(out, (in_hw[0] * sy, in_hw[1] * sx)):
            assert isinstance(side, int) and side >= 1
            assert abs(side - exact) <= 0.5 or (side == 1 and exact < 1), (in_hw, sy, sx, out)


def test_an_explicit_size_is_kept_as_given():
    assert output_size((10, 7), None, (7, 9)) == (7, 9)
    assert output_size((10, 7), None, [np.int64(1), 3]) == (1, 3)
    assert output_size((10, 7), None, (1, MAX_SIDE)) == (1, MAX_SIDE)


@pytest.mark.parametrize("scale, size", [(None, None), (2, (20, 20)), (2, Fit(long_side=20))])
def test_exactly_one_of_scale_and_size(scale, size):
    with pytest.raises(UpscaleError) as caught:
        output_size((10, 10), scale, size)
    assert one_line(caught) == "give exactly one of scale or size"


@pytest.mark.parametrize("size", [(0, 5), (5, -1), (5,), (5, 5, 5), (2.0, 3), (True, 3), "7x9", 7])
def test_a_size_must_be_two_positive_integers(size):
    with pytest.raises(UpscaleError) as caught:
        output_size((10, 10), None, size)
    assert one_line(caught).startswith("size must be two positive integers (HEIGHT, WIDTH), got ")


@pytest.mark.parametrize("scale", [(2,), (2, 2, 2), ()])
def test_a_scale_per_axis_is_two_numbers(scale):
    with pytest.raises(UpscaleError) as caught:
        output_size((10, 10), scale, None)
    assert one_line(caught) == f"scale must be one number or (sy, sx), got {scale!r}"


def test_a_bad_scale_per_axis_is_named_by_the_scale_rule():
    with pytest.raises(UpscaleError) as caught:
        output_size((10, 10), (2, -1), None)
    assert one_line(caught) == "scale must be a positive finite number, got -1"


def test_sides_beyond_the_largest_are_refused_at_the_bound():
    assert output_size((1, 1), float(MAX_SIDE), None) == (MAX_SIDE, MAX_SIDE)
    # MAX_SIDE + 0.5: round() would go (to even) past the largest side
    beyond = ((MAX_SIDE + 1.0, None), (None, (1, MAX_SIDE + 1)), (MAX_SIDE + 0.6, None), (MAX_SIDE + 0.5, None))
    for scale, size in beyond:
        with pytest.raises(UpscaleError) as caught:
            output_size((1, 1), scale, size)
        assert "beyond the largest liifsr writes (2,147,483,647, PNG's limit)" in one_line(caught)


def test_sizes_beyond_any_side_are_refused_by_the_api():
    for make in (lambda: Fit(long_side=10**30), lambda: Fit(long_side=10**400), lambda: Fit(box=(1, 2**31))):
        with pytest.raises(UpscaleError, match="at most 2,147,483,647"):
            make()
    for scale, size in ((1e308, None), (None, (1, 10**30)), (None, (1, 10**400)), ((1, 1e300), None)):
        with pytest.raises(UpscaleError, match="beyond the largest"):
            output_size((40, 48), scale, size)
    with pytest.raises(UpscaleError, match="beyond the largest"):
        output_size((1, 1000), None, Fit(short_side=2**31 - 1))  # its long side is 1,000 times that
    assert output_size((40, 48), None, Fit(long_side=2**31 - 1)) == (1789569706, 2**31 - 1)


@pytest.mark.parametrize("seed", range(3))
def test_a_fit_in_a_box_fills_one_side_and_stays_inside(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        in_hw = (int(rng.integers(1, 3000)), int(rng.integers(1, 3000)))
        box = (int(rng.integers(1, 3000)), int(rng.integers(1, 3000)))
        out = output_size(in_hw, None, Fit(box=box))
        assert out[0] <= box[0] and out[1] <= box[1] and (out[0] == box[0] or out[1] == box[1]), (in_hw, box, out)
        # The aspect is kept to within the rounding of the side that does not bind.
        scale = min(box[0] / in_hw[0], box[1] / in_hw[1])
        assert all(abs(o - n * scale) <= 0.5 or o == 1 for o, n in zip(out, in_hw)), (in_hw, box, out)


@pytest.mark.parametrize("fit", [dict(long_side=10.0), dict(short_side="10"), dict(box=(10, 10.0)), dict(box=[10, True])])
def test_a_fit_takes_integers_only(fit):
    with pytest.raises(UpscaleError) as caught:
        Fit(**fit)
    assert one_line(caught).startswith("a Fit's sides must be positive integers (a box two of them), got ")


def test_outputs_beyond_the_pixel_limit_need_allow_huge():
    side = math.isqrt(MAX_OUTPUT_PIXELS)
    check_output_size((side, side), allow_huge=False)  # at the limit: allowed
    with pytest.raises(UpscaleError) as caught:
        check_output_size((side, side + 1), allow_huge=False)
    message = one_line(caught)
    assert message.startswith(f"output of {side}x{side + 1} (HEIGHTxWIDTH) pixels exceeds the limit of 400,000,000 pixels")
    assert "--allow-huge / allow_huge=True" in message
    check_output_size((side, side + 1), allow_huge=True)
    check_output_size((MAX_SIDE, MAX_SIDE), allow_huge=True)


# --- tuning and precision ---------------------------------------------------------------


def test_tuning_options_are_positive_integers_or_none():
    check_tuning()
    check_tuning(chunk_size=1, tile_size=np.int64(64))
    for bad in (0, -8, 8.0, True, "8"):
        with pytest.raises(UpscaleError) as caught:
            check_tuning(chunk_size=bad)
        assert one_line(caught) == f"chunk_size (--chunk) must be a positive integer, got {bad!r}"
        with pytest.raises(UpscaleError) as caught:
            check_tuning(tile_size=bad)
        assert one_line(caught) == f"tile_size (--tile) must be a positive integer, got {bad!r}"


def test_a_precision_must_be_known_run_here_and_run_by_the_model():
    cpu = torch.device("cpu")
    every, onnx_like = SimpleNamespace(precisions=("fp32", "bf16", "fp16")), SimpleNamespace(precisions=("fp32",))
    check_model_precision(every, cpu, "bf16")
    check_model_precision(onnx_like, cpu, "fp32")
    with pytest.raises(UpscaleError) as caught:
        check_model_precision(every, cpu, "fp8")
    assert one_line(caught) == "unknown precision 'fp8' (choose one of: fp32, bf16, fp16)"
    with pytest.raises(UpscaleError) as caught:
        check_model_precision(every, cpu, "fp16")
    assert one_line(caught) == "fp16 runs on CUDA GPUs only, not on cpu (use bf16 or fp32 there)"
    with pytest.raises(UpscaleError) as caught:
        check_model_precision(onnx_like, cpu, "bf16")
    assert one_line(caught).startswith("this model runs in fp32 only, not bf16 (an exported ONNX model runs in fp32")


# --- models and tensors -----------------------------------------------------------------


def test_a_model_is_an_object_with_the_implicit_model_methods():
    check_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8]))))
    for name in ("edsr-liif-relu", Path("model.safetensors")):
        with pytest.raises(TypeError) as caught:
            check_model(name)
        assert f"liifsr.load_model({str(name)!r})" in one_line(caught)
    with pytest.raises(TypeError) as caught:
        check_model(SimpleNamespace(encode=print, decode=print))  # no latent_projection
    assert one_line(caught) == "upscale takes a model from liifsr.load_model (or liifsr.build_model), got a SimpleNamespace"


def test_shapes_read_as_sizes():
    assert shape_text((40, 48, 3)) == "40x48x3"
    assert shape_text(torch.Size([1, 3, 0, 4])) == "1x3x0x4"
    assert shape_text(np.zeros((2, 5)).shape) == "2x5"
    assert shape_text(()) == "()"


def test_float_images_must_be_finite_and_in_0_1():
    check_unit_range(torch.tensor([0.0, 0.5, 1.0]))  # both ends included
    check_unit_range(torch.empty(1, 3, 0, 4))  # empty: check_input names it
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(UpscaleError) as caught:
            check_unit_range(torch.tensor([0.5, bad]))
        assert one_line(caught) == "the image contains NaN or infinite values (expected floats in [0, 1])"
    with pytest.raises(UpscaleError) as caught:
        check_unit_range(torch.tensor([-0.25, 0.5, 255.0]))
    assert one_line(caught).startswith("tensor values must be in [0, 1], got -0.25 to 255 (divide 8-bit values by 255")


@pytest.mark.parametrize("tensor, message", [
    (torch.rand(3, 4, 4), "expected a (1, 3, H, W) tensor, got shape 3x4x4"),
    (torch.rand(2, 3, 4, 4), "expected a (1, 3, H, W) tensor, got shape 2x3x4x4"),
    (torch.rand(1, 4, 4, 4), "expected a (1, 3, H, W) tensor, got shape 1x4x4x4"),
    (torch.rand(1, 3, 0, 4), "the image is empty (0x4 pixels, HEIGHTxWIDTH)"),
    (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "tensors must be float in [0, 1], got torch.uint8"),
    (torch.full((1, 3, 2, 2), float("nan")), "the image contains NaN or infinite values (expected floats in [0, 1])"),
])
def test_an_input_tensor_is_one_float_rgb_image(tensor, message):
    with pytest.raises(UpscaleError) as caught:
        check_input(tensor)
    assert one_line(caught) == message


def test_a_good_input_tensor_passes():
    check_input(torch.rand(1, 3, 1, 1))
    check_input(torch.rand(1, 3, 5, 7, dtype=torch.float64))
