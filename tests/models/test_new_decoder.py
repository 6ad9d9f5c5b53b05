"""A new decoder is one new file in src/liifsr/models/: with nothing else changed it has a
preset in `liifsr models`, trains, tiles exactly and exports to ONNX.

The file below (nearest upsampling plus a learned 1x1 projection of each pixel's code)
is put on the package's path and imported, as the package imports each of its modules,
so its registration is the one a file in src/liifsr/models/ makes; the fixture then
takes it out of the registry and the package again.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch

import liifsr.models
from liifsr import coords as C
from liifsr.cli import main
from liifsr.data import DataConfig, make_sample, sample_generator
from liifsr.imageio import read_uint8, sample_image
from liifsr.models import DECODERS, MODEL_PRESETS
from liifsr.tiling import upscale_tensor
from liifsr.training.config import TrainConfig, check_config, resolve_model
from liifsr.training.loop import make_optimizer, train_step

NEW_FILE = '''
from dataclasses import dataclass

from torch import nn

from liifsr.models.base import ImplicitModel
from liifsr.models.registry import DECODERS, DecoderConfig


@dataclass
class NearestPlusConfig(DecoderConfig):
    name: str = "nearest-plus"


@DECODERS.register("nearest-plus", NearestPlusConfig)
class NearestPlus(ImplicitModel):
    """Nearest upsampling plus a 1x1 convolution of the nearest code."""

    global_skip = True

    def __init__(self, config):
        super().__init__(config)
        self.head = nn.Conv2d(self.encoder.out_dim, 3, 1)

    def latent_projection(self, feat):
        return self.head(feat).permute(0, 2, 3, 1).contiguous()

    def decode_codes(self, window, codes, cell):
        return window.flat_table().index_select(0, codes.index()).view(window.table.shape[0], -1, 3)

    def sample_skip(self, window, coord):
        return window.nearest_skip(coord)
'''
MODULE = "liifsr.models.nearest_plus"


@pytest.fixture
def new_decoder(tmp_path, monkeypatch):
    """The file above as a module of `liifsr.models`, registered for this test only."""
    (tmp_path / "nearest_plus.py").write_text(textwrap.dedent(NEW_FILE))
    monkeypatch.setattr(liifsr.models, "__path__", [*liifsr.models.__path__, str(tmp_path)])
    monkeypatch.setattr(DECODERS, "configs", dict(DECODERS.configs))  # restored afterwards: the registry as it was
    monkeypatch.setattr(DECODERS, "_builders", dict(DECODERS._builders))
    try:
        yield importlib.import_module(MODULE)
    finally:
        sys.modules.pop(MODULE, None)
        if hasattr(liifsr.models, "nearest_plus"):
            delattr(liifsr.models, "nearest_plus")


def test_a_new_decoder_file_has_a_preset_in_liifsr_models(new_decoder, capsys) -> None:
    assert "edsr-nearest-plus" in MODEL_PRESETS
    assert main(["models"]) == 0
    presets = capsys.readouterr().out.split("presets")[-1]
    assert "edsr-nearest-plus: EDSR (16 blocks, 64 features) + nearest-plus" in presets


def test_a_new_decoder_trains_for_one_step_by_its_preset(new_decoder) -> None:
    config = TrainConfig(model="edsr-nearest-plus")
    check_config(config)
    torch.manual_seed(0)
    model = liifsr.models.build_model(resolve_model(config)).train()
    assert isinstance(model, new_decoder.NearestPlus)
    image = read_uint8(sample_image())
    samples = [make_sample(image, DataConfig(), sample_generator(0, 1, index)) for index in range(2)]
    batch = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
    before = [parameter.detach().clone() for parameter in model.parameters()]
    optimizer, _ = make_optimizer(model, config)
    loss = float(train_step(model, optimizer, batch, "fp32"))
    assert 0 < loss < 1
    assert all(bool((parameter != old).any()) for parameter, old in zip(model.parameters(), before))


def tiny(new_decoder) -> torch.nn.Module:
    torch.manual_seed(0)
    config = liifsr.models.model_preset("edsr-nearest-plus")
    config.encoder.n_resblocks, config.encoder.n_feats = 1, 8
    model = liifsr.models.build_model(config).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 0.3)
    return model


def test_a_new_decoder_tiles_exactly(new_decoder) -> None:
    model = tiny(new_decoder)
    lr = torch.rand(1, 3, 13, 15)
    out_hw = (40, 47)
    coord, cell = C.make_coord(out_hw).unsqueeze(0), C.cell_size(out_hw).expand(1, 40 * 47, 2)
    with torch.no_grad():
        forward = C.denormalise(model(C.normalise(lr), coord, cell)).clamp(0, 1).view(1, *out_hw, 3).permute(0, 3, 1, 2)
        tiled = upscale_tensor(model, lr, out_hw, tile_size=4, chunk_size=97)
        nearest = C.denormalise(C.nearest_sample(C.normalise(lr), coord, (13, 15))).view(1, *out_hw, 3).permute(0, 3, 1, 2)
    assert (tiled - forward).abs().max() < 1e-5
    assert (tiled - nearest).abs().max() > 0.05  # the decoder adds something


def test_a_new_decoder_exports_to_onnx(new_decoder, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'liifsr[onnx]')")
    from liifsr.onnx_export import export_onnx
    from liifsr.onnx_runtime import load_onnx_model

    model = tiny(new_decoder)
    export_onnx(model, tmp_path / "m.onnx")
    lr = torch.rand(1, 3, 20, 24)
    expected = upscale_tensor(model, lr, (50, 60), tile_size=12, chunk_size=300)
    got = upscale_tensor(load_onnx_model(tmp_path / "m.onnx"), lr, (50, 60), tile_size=12, chunk_size=300)
    assert (got - expected).abs().max() <= 1e-4
