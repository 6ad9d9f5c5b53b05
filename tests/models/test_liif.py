import itertools

import pytest
import torch
from conftest import FIXTURES, shared_path

from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.models.relu import ReLUConfig
from liifsr.models.siren import SineConfig
from liifsr.reference import literal_query
from liifsr.zoo import load_model

TINY = ["tiny-full", "tiny-no-unfold", "tiny-no-ensemble", "tiny-no-cell"]


def tensors(cases, prefix):
    return [torch.from_numpy(cases[prefix + key]) for key in ("inp", "coord", "cell")]


@pytest.mark.parametrize("name", TINY + ["edsr-baseline-liif"])
@pytest.mark.usefixtures("kernel_branch")
def test_reproduces_official_liif_outputs(cases, name):
    path = FIXTURES / f"{name}.pth" if name in TINY else shared_path("fixtures", "liif-reference", f"{name}.pth")
    model = load_model(path)
    with torch.no_grad():
        for key, prefix in (("pred", ""), ("batch_pred", "batch_")):
            out = model(*tensors(cases, prefix))
            expected = torch.from_numpy(cases[f"{name}/{key}"])
            assert (out - expected).abs().max() <= 1e-5, f"{name}/{key}"


SWITCHES = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize("activation", ["relu", "sine"])
@pytest.mark.parametrize("unfold,ensemble,cell", SWITCHES)
@pytest.mark.usefixtures("kernel_branch")
def test_fast_decoder_equals_literal_formulation(cases, activation, unfold, ensemble, cell):
    torch.manual_seed(0)
    config = ModelConfig(
        EDSRConfig(n_resblocks=2, n_feats=16),
        LIIFConfig(hidden=[64, 64, 64], activation=ReLUConfig() if activation == "relu" else SineConfig(),
                   feature_unfold=unfold, local_ensemble=ensemble, cell_decode=cell),
    )
    model = LIIF(config).eval()
    with torch.no_grad():
        for prefix in ("", "batch_"):  # one image with a dense grid, and a batch of two
            inp, coord, cell_ = tensors(cases, prefix)
            fast = model(inp, coord, cell_)
            literal = literal_query(model, inp, coord, cell_)
            assert (fast - literal).abs().max() <= 1e-5


@pytest.mark.usefixtures("kernel_branch")
def test_fast_decoder_gradients_equal_literal():
    torch.manual_seed(0)
    model = LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[32, 32], activation=SineConfig())))
    inp, coord, cell = torch.rand(2, 3, 12, 10) * 2 - 1, torch.rand(2, 100, 2) * 2 - 1, torch.full((2, 100, 2), 0.05)
    grads = []
    for fn in (model.forward, lambda *a: literal_query(model, *a)):
        model.zero_grad()
        fn(inp, coord, cell).abs().mean().backward()
        grads.append(torch.cat([p.grad.view(-1) for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_global_skip_adds_bilinear_input():
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16], global_skip=True))
    model = LIIF(config).eval()
    inp, coord, cell = torch.rand(1, 3, 7, 9) * 2 - 1, torch.rand(1, 50, 2) * 2 - 1, torch.full((1, 50, 2), 0.1)
    with torch.no_grad():
        assert (model(inp, coord, cell) - literal_query(model, inp, coord, cell)).abs().max() <= 1e-5


def test_constant_image_stays_constant_with_constant_decoder():
    # With the MLP's last layer zeroed, every output equals its bias: no query leaks.
    model = LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16])))
    with torch.no_grad():
        model.imnet.layers[-1].weight.zero_()
        model.imnet.layers[-1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        out = model(torch.rand(1, 3, 5, 5), torch.rand(1, 40, 2) * 2 - 1, torch.full((1, 40, 2), 0.1))
    assert torch.allclose(out, torch.tensor([0.1, -0.2, 0.3]).expand_as(out), atol=1e-6)
