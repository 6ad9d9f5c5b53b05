import math

import pytest
import torch

from liifsr.models import model_preset
from liifsr.models.liif import LIIF, GatheredRows
from liifsr.models.mlp import MLP, cast_folded
from liifsr.models.relu import ReLU, ReLUConfig
from liifsr.models.siren import Sine, SineConfig


def activation(name: str, w0_first: float = 30.0, w0_hidden: float = 30.0):
    return ReLUConfig() if name == "relu" else SineConfig(w0_first=w0_first, w0_hidden=w0_hidden)


def linears(mlp):
    return [m for m in mlp.layers if isinstance(m, torch.nn.Linear)]


def test_relu_mlp_layout_matches_liif():
    mlp = MLP(580, [256] * 4, 3, ReLUConfig())
    assert [(layer.in_features, layer.out_features) for layer in linears(mlp)] == [(580, 256), (256, 256), (256, 256), (256, 256), (256, 3)]
    assert all(isinstance(mlp.layers[i], ReLU) for i in (1, 3, 5, 7))


def test_siren_initial_weight_ranges():
    torch.manual_seed(0)
    for name, w0 in (("edsr-liif-siren30", 30.0), ("edsr-liif-siren15", 15.0)):
        mlp = LIIF(model_preset(name)).imnet
        layers = linears(mlp)
        first_bound = 1 / layers[0].in_features
        w = layers[0].weight
        assert w.abs().max() <= first_bound and w.abs().max() > 0.99 * first_bound
        for layer in layers[1:]:
            bound = math.sqrt(6 / layer.in_features) / w0
            assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.98 * bound
            # uniform on [-b, b] has standard deviation b / sqrt(3)
            assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.05 * bound


def test_sine_activation_is_sin_of_w0_times_affine_on_every_hidden_layer():
    torch.manual_seed(0)
    mlp = MLP(6, [5, 4], 3, SineConfig(w0_first=7.0, w0_hidden=3.0))
    x = torch.rand(10, 6)
    l0, l1, l2 = linears(mlp)
    h = torch.sin(7.0 * (x @ l0.weight.t() + l0.bias))
    h = torch.sin(3.0 * (h @ l1.weight.t() + l1.bias))
    expected = h @ l2.weight.t() + l2.bias  # last layer linear
    assert torch.allclose(mlp(x), expected, atol=1e-6)
    assert [m.w0 for m in mlp.layers if isinstance(m, Sine)] == [7.0, 3.0]


def test_siren15_presets_cover_both_readings_of_the_paper():
    """SIREN-15: w0 = 15 in every sine layer, or (the other reading) in the first layer only."""
    every = LIIF(model_preset("edsr-liif-siren15")).imnet
    first_only = LIIF(model_preset("edsr-liif-siren15-first")).imnet
    assert [m.w0 for m in every.layers if isinstance(m, Sine)] == [15.0] * 4
    assert [m.w0 for m in first_only.layers if isinstance(m, Sine)] == [15.0, 30.0, 30.0, 30.0]
    later = linears(first_only)[1]
    assert later.weight.abs().max() <= math.sqrt(6 / later.in_features) / 30.0  # initialised for w0 = 30


@pytest.mark.parametrize("name", ["relu", "sine"])
@pytest.mark.parametrize("block_rows", [7, 64, 4096])
@pytest.mark.usefixtures("kernel_branch")
def test_blockwise_mlp_equals_the_plain_layers_forward_and_backward(name: str, block_rows: int) -> None:
    """after_first_linear (blocks of rows, fused oneDNN Linears, the hand-written backward)
    gives the Sequential's output and gradients, whatever the block size (7 leaves a remainder)."""
    torch.manual_seed(0)
    mlp = MLP(12, [32, 32, 32], 3, activation(name))
    pre = torch.randn(50, 32) * 0.3
    plain_pre, block_pre = pre.clone().requires_grad_(), pre.clone().requires_grad_()
    target = torch.randn(50, 3)

    plain = mlp.layers[1:](plain_pre.clone())  # the in-place ReLU needs a non-leaf
    (plain - target).abs().sum().backward()
    plain_grads = [None if p.grad is None else p.grad.clone() for p in mlp.parameters()]
    mlp.zero_grad()
    blocked = mlp.after_first_linear(block_pre, block_rows)
    (blocked - target).abs().sum().backward()

    assert torch.allclose(blocked, plain, atol=1e-5)
    assert torch.allclose(block_pre.grad, plain_pre.grad, atol=1e-4)
    for name, (param, expected) in zip([n for n, _ in mlp.named_parameters()], zip(mlp.parameters(), plain_grads)):
        if name.startswith("layers.0."):  # the first Linear is the caller's (liif.py)
            assert param.grad is None
        else:
            assert torch.allclose(param.grad, expected, atol=1e-4), name
    with torch.no_grad():  # inference takes the forward-only path
        assert torch.allclose(mlp.after_first_linear(pre.clone(), block_rows), plain.detach(), atol=1e-5)


@pytest.mark.usefixtures("kernel_branch")
def test_blockwise_mlp_in_bf16_stays_close_to_fp32() -> None:
    torch.manual_seed(0)
    mlp = MLP(12, [256, 256, 256, 256], 3, ReLUConfig())
    pre = torch.randn(3000, 256) * 0.5
    with torch.no_grad():
        fp32 = mlp.after_first_linear(pre.clone())
        bf16 = mlp.after_first_linear(pre.bfloat16())
    assert bf16.dtype == torch.bfloat16
    assert (bf16.float() - fp32).abs().max() < 0.05 * fp32.abs().max()


def test_bf16_folds_w0_into_the_weights_and_fp32_stays_literal() -> None:
    torch.manual_seed(0)
    mlp = MLP(12, [32, 32, 32], 3, SineConfig(w0_first=15.0, w0_hidden=30.0))
    params = mlp._later_params()
    same, acts = cast_folded(params, mlp.activations(), torch.float32)
    assert [a.w0 for a in acts] == [15.0, 30.0, 30.0] and all(a is b or torch.equal(a, b) for a, b in zip(same, params))
    folded, acts = cast_folded(params, mlp.activations(), torch.bfloat16)
    assert [a.w0 for a in acts] == [15.0, 1.0, 1.0]  # the first sine acts on the caller's Linear: not folded
    assert torch.equal(folded[0], (30.0 * params[0]).bfloat16()) and torch.equal(folded[1], (30.0 * params[1]).bfloat16())
    assert torch.equal(folded[-2], params[-2].bfloat16())  # the linear output layer keeps its weights
    pre = torch.randn(300, 32) * 0.05
    with torch.no_grad():
        fp32 = mlp.layers[1:](pre.clone())
        bf16 = mlp.after_first_linear(pre.bfloat16())
    assert (bf16.float() - fp32).abs().max() < 0.05 * fp32.abs().max()


@pytest.mark.parametrize("name", ["relu", "sine"])
def test_a_row_source_is_decoded_block_by_block_as_its_rows(name: str) -> None:
    """Inference makes the first layer's rows block by block (liif.GatheredRows): the same
    output as the whole tensor, whatever the block size (7 leaves a remainder)."""
    torch.manual_seed(0)
    mlp = MLP(12, [32, 32, 32], 3, activation(name))
    source = GatheredRows(table=torch.randn(20, 32) * 0.1, index=torch.randint(0, 20, (50,)),
                          terms=torch.randn(50, 4), weight=torch.randn(32, 4) * 0.1)
    whole = source.all_rows()
    expected = whole[7:19].clone()
    assert torch.equal(source.rows(7, 19), expected)
    assert torch.equal(expected, source.table[source.index[7:19]] + source.terms[7:19] @ source.weight.t())
    with torch.no_grad():
        plain = mlp.layers[1:](whole.clone())
        for block_rows in (7, 64):
            assert torch.allclose(mlp.after_first_linear(source, block_rows), plain, atol=1e-6)
