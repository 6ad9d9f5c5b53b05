"""liifsr.tiling: the encoder runs channels-last whatever the strides of the image it is given.

oneDNN's convolutions run channels-last activations without a layout reorder around each of
them (bf16 on an AMX CPU: 4x faster than NCHW). An image from a file or an array arrives as
a permuted HWC array, channels-last in memory but with a batch stride of 3, which a
convolution takes for NCHW: the whole encoder then ran NCHW."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liifsr.inference import upscale
from liifsr.models import ModelConfig, build_model
from liifsr.models.edsr import EDSRConfig
from liifsr.models.thermal import ThermalConfig


def encoder_layouts(model, image, **options) -> list[bool]:
    """Whether each encoder convolution's output was channels-last, in one upscale of `image`."""
    layouts = []
    hooks = [conv.register_forward_hook(lambda m, i, out: layouts.append(out.is_contiguous(memory_format=torch.channels_last)))
             for conv in (model.encoder.head[0], model.encoder.body[-1])]
    try:
        upscale(model, image, scale=2, **options)
    finally:
        for hook in hooks:
            hook.remove()
    return layouts


@pytest.mark.parametrize("kind", ["uint8 array", "PIL image", "NCHW tensor", "permuted HWC tensor"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_encoder_runs_channels_last_whatever_the_inputs_strides(kind: str, precision: str) -> None:
    from PIL import Image

    torch.manual_seed(0)
    model = build_model(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), ThermalConfig(components=4))).eval()
    array = np.random.default_rng(0).integers(0, 256, (20, 24, 3), np.uint8)
    image = {"uint8 array": array, "PIL image": Image.fromarray(array),
             "NCHW tensor": torch.from_numpy(array).permute(2, 0, 1).float().div(255).contiguous(),
             "permuted HWC tensor": torch.from_numpy(array).float().div(255).permute(2, 0, 1)}[kind]
    layouts = encoder_layouts(model, image, precision=precision)
    assert layouts and all(layouts), layouts
