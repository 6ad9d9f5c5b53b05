"""liifsr.kernels: the fused oneDNN ops probed once, their plain fallbacks, the 16-bit tricks."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from liifsr import kernels
from liifsr.kernels import fused_conv, fused_on, linear, probe, relu, relu_, relu_backward, row_sum


def test_the_probe_accepts_the_real_fused_ops_in_fp32() -> None:
    """oneDNN ships in every x86-64 CPU build of PyTorch: its fp32 ops run and agree."""
    assert torch.backends.mkldnn.is_available()
    assert probe(torch.ops.mkldnn, torch.float32)


def test_the_probe_refuses_fused_ops_that_are_missing_fail_or_disagree() -> None:
    real = torch.ops.mkldnn
    missing = SimpleNamespace()
    def raising(*args, **kwargs):
        raise RuntimeError("could not create a primitive")
    failing = SimpleNamespace(_linear_pointwise=raising, _convolution_pointwise=real._convolution_pointwise)
    wrong = SimpleNamespace(_linear_pointwise=lambda x, w, b, *rest: real._linear_pointwise(x, w, b * 1.01, *rest),
                            _convolution_pointwise=real._convolution_pointwise)
    for ops in (missing, failing, wrong):
        assert not probe(ops, torch.float32)


def test_the_switch_sends_every_caller_to_the_plain_ops(monkeypatch) -> None:
    monkeypatch.delenv(kernels.SWITCH, raising=False)  # whatever the suite runs with
    x = torch.randn(4, 8)
    assert fused_on(x) == kernels.fused_works(torch.float32)
    monkeypatch.setenv(kernels.SWITCH, "0")
    assert not fused_on(x)
    calls = []
    monkeypatch.setattr(kernels, "fused_works", lambda dtype: calls.append(dtype) or True)
    assert not fused_on(x) and calls == []  # switched off: not even probed
    monkeypatch.setenv(kernels.SWITCH, "1")
    assert fused_on(x) and calls == [torch.float32]
    assert not fused_on(x.to("meta"))  # CPU tensors only


@pytest.mark.usefixtures("kernel_branch")
@pytest.mark.parametrize("relu_after", [False, True])
def test_linear_is_the_affine_map_then_relu(relu_after: bool) -> None:
    torch.manual_seed(0)
    h, weight, bias = torch.randn(300, 40), torch.randn(24, 40), torch.randn(24)
    expected = h.double() @ weight.double().t() + bias.double()
    if relu_after:
        expected = expected.relu()
    # fp32 sums of 40 unit-scale products: rounding stays far below 1e-4 whatever the summation order
    assert torch.allclose(linear(h, weight, bias, relu=relu_after).double(), expected, atol=1e-4)


@pytest.mark.usefixtures("kernel_branch")
def test_fused_conv_is_the_convolution_then_relu_or_the_addition() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 6, 3, padding=1)
    x, add = torch.randn(2, 6, 9, 11), torch.randn(2, 6, 9, 11)
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        assert torch.allclose(fused_conv(x, conv, relu=True), plain.relu(), atol=1e-5)
        assert torch.allclose(fused_conv(x, conv, add=add), plain + add, atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        fused_conv(x, conv, relu=True, add=add)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_relu_on_the_sign_bit_equals_torch_relu(dtype: torch.dtype) -> None:
    special = torch.tensor([0.0, -0.0, 1e-30, -1e-30, float("inf"), -float("inf"), 3.5, -3.5])
    z = torch.cat([special, torch.randn(1000)]).to(dtype)
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    before = z.view(bits).clone()
    expected = torch.relu(z)
    out_of_place, in_place = relu(z), relu_(z.clone())
    assert torch.equal(z.view(bits), before)  # relu left its input alone, -0.0 included
    for result in (out_of_place, in_place):
        assert result.dtype == dtype
        assert torch.equal(result, expected)  # as floats: -0.0 == +0.0
        if dtype != torch.float32:
            assert not torch.signbit(result).any()  # -0.0 comes out as +0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_relu_backward_on_the_integers_equals_threshold_backward(dtype: torch.dtype) -> None:
    """The gradient passes exactly where the ReLU's output is positive: h = -0.0 (which
    oneDNN's ReLU can give), +0.0 and the smallest subnormal included."""
    torch.manual_seed(0)
    tiny = torch.finfo(dtype).smallest_normal / 4
    h = torch.cat([torch.tensor([0.0, tiny, float("inf"), 2.0] + [-0.0] * 20), torch.randn(976).relu()]).to(dtype)
    grad = torch.cat([torch.tensor([1.0, 3.0, -4.0, -0.0]), torch.randn(996)]).to(dtype)
    expected = torch.where(h > 0, grad, torch.zeros_like(grad))
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    out = torch.empty_like(grad)
    for result in (relu_backward(grad, h), relu_backward(grad, h, out)):
        assert result.dtype == dtype and torch.equal(result.view(bits), expected.view(bits))  # to the bit
    assert torch.equal(out.view(bits), expected.view(bits))  # written into `out`


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_row_sum_is_the_sum_of_the_rows_in_fp32(dtype: torch.dtype) -> None:
    """Bias gradients: exact in fp32; for 16-bit rows, the fp32 sum rounded once to 16 bits."""
    torch.manual_seed(0)
    grad = (torch.randn(5000, 40) + torch.linspace(-3, 3, 40)).to(dtype)  # columns of every sign and size
    exact = grad.double().sum(0)
    summed = row_sum(grad)
    assert summed.dtype == torch.float32 and summed.shape == (40,)
    if dtype == torch.float32:
        assert torch.allclose(summed.double(), exact, rtol=1e-5, atol=1e-3)
    else:  # one rounding to the 16-bit format, not one per addition
        assert ((summed.double() - exact).abs() <= exact.abs() * 2.0 ** -8 + 1e-3).all()




def test_graphs_take_the_plain_ops_without_probing(monkeypatch) -> None:
    """A compiled or traced graph must not trace the probe (nor the private ops)."""
    monkeypatch.setattr(kernels, "fused_works", lambda dtype: pytest.fail("probed inside a graph"))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not fused_on(torch.randn(4, 8))
