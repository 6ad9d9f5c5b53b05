"""Fused CPU kernels and their plain fallbacks: the one home of every fast path below the model.

- `linear`: h W^T + b (+ ReLU) as one oneDNN matmul with the bias and ReLU in its epilogue.
- `fused_conv` / `FusedConv`: a convolution with ReLU or a residual addition in its epilogue.
- `relu_`, `relu`, `relu_backward`: 16-bit ReLU and its backward on the sign bit.
- `row_sum`: a 16-bit bias gradient as a ones-row matmul.

The oneDNN ops (`torch.ops.mkldnn._linear_pointwise`, `_convolution_pointwise`) are private
to PyTorch: they are probed once per dtype (run on a tiny input and checked against the
plain ops), and where they are missing, fail or disagree, or where the environment sets
`LIIFSR_FUSED_KERNELS=0`, every caller takes the plain ops instead. The 16-bit integer tricks
use public ops only and need no probe. Outputs of the two branches agree to rounding
(tests/test_kernels.py runs the exactness tests on both).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liifsr.runtime import kernel_dtype

HALF_DTYPES = (torch.bfloat16, torch.float16)

# Set to 0 (or false, no, off) to take the plain PyTorch ops everywhere (a test switch, and
# a way out should a PyTorch release change the private ops' behaviour).
SWITCH = "LIIFSR_FUSED_KERNELS"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def fused_allowed() -> bool:
    """Whether the environment allows the fused ops: `LIIFSR_FUSED_KERNELS` unset, empty or
    1/true/yes/on (any case); 0/false/no/off turn them off; any other value is refused,
    rather than read as one or the other."""
    value = os.environ.get(SWITCH, "").strip().lower()
    if value in _OFF:
        return False
    if value in _ON or not value:
        return True
    raise ValueError(f"environment variable {SWITCH}={os.environ[SWITCH]!r} is not a switch: set it to "
                     f"{'/'.join(_ON)} or {'/'.join(_OFF)}, or unset it")


@functools.cache
def fused_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused linear and convolutions run here in `dtype` and agree with
    the plain ops: probed once per dtype and process.

    The probe runs with autocast off: its first call usually comes from inside an
    inference's or a training step's autocast, which would run its plain reference ops in
    bf16, and its comparison would then fail and switch the fused ops off for the process."""
    if not torch.backends.mkldnn.is_available():
        return False
    with torch.autocast("cpu", enabled=False):
        return probe(torch.ops.mkldnn, dtype)


def probe(ops: Any, dtype: torch.dtype) -> bool:
    """Run the fused ops of namespace `ops` (`torch.ops.mkldnn`) on tiny inputs in `dtype`:
    whether they all run and agree with the plain ops to `dtype`'s rounding."""
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(shape, generator=generator) for shape in ((4, 8), (5, 8), (5,)))
    image, kernel, kernel_bias = (torch.randn(shape, generator=generator) for shape in ((1, 2, 5, 5), (2, 2, 3, 3), (2,)))
    geometry = ([1, 1], [1, 1], [1, 1], 1)
    conv = F.conv2d(image, kernel, kernel_bias, padding=1)
    expected = [torch.relu(x @ weight.t() + bias), conv.relu(), conv + image]
    tolerance = 1e-4 if dtype == torch.float32 else 0.1  # inputs of unit scale, sums of 8-18 terms
    try:
        x, weight, bias, image, kernel, kernel_bias = (t.to(dtype) for t in (x, weight, bias, image, kernel, kernel_bias))
        got = [ops._linear_pointwise(x, weight, bias, "relu", [], ""),
               ops._convolution_pointwise(image, kernel, kernel_bias, *geometry, "relu", [], ""),
               ops._convolution_pointwise.binary(image, image, kernel, kernel_bias, *geometry, "add", None, None, [], None)]
        return all(a.shape == b.shape and torch.allclose(a.float(), b, atol=tolerance, rtol=tolerance)
                   for a, b in zip(got, expected))
    except Exception:  # missing from this build, or unsupported on this CPU: use the plain ops
        return False


def fused_on(x: Tensor) -> bool:
    """Whether the fused ops take `x`: a CPU tensor in eager execution (graphs for inductor
    or ONNX take the plain ops, which their compilers fuse themselves), allowed, and probed
    to work in the dtype its matmuls run in."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return False  # checked first: a graph must not trace the probe
    return x.device.type == "cpu" and fused_allowed() and fused_works(kernel_dtype(x))


# --- linear -------------------------------------------------------------------------


def linear(h: Tensor, weight: Tensor, bias: Tensor, relu: bool = False) -> Tensor:
    """h W^T + b, then ReLU if `relu`. Fused: one oneDNN matmul with the bias and the ReLU
    in its epilogue, instead of a bias copy and a ReLU pass over the result."""
    if fused_on(h):
        return torch.ops.mkldnn._linear_pointwise(h, weight, bias, "relu" if relu else "none", [], "")
    z = torch.addmm(bias, h, weight.t())
    return relu_(z) if relu else z


# --- 16-bit ReLU and its backward -----------------------------------------------------


def relu_(z: Tensor) -> Tensor:
    """In-place ReLU. For bf16 and fp16 on the sign bit: the values read as int16 are
    negative exactly where the floats are, so clamping the integers at 0 is the ReLU
    (giving +0.0 for -0.0) in one integer pass, 2-3x faster than PyTorch's 16-bit
    ReLU, which converts to fp32 and back. A NaN with its sign bit set becomes 0, and
    oneDNN's fused ReLU epilogues can turn NaN into 0 as well, where the plain ops keep it: a
    model with NaN weights could work or fail by the switch. Model files with non-finite
    weights are refused when loaded (`checkpoint.check_finite`), and training stops at
    the first non-finite loss or weight, so no NaN reaches these kernels from either."""
    if z.dtype in HALF_DTYPES:
        z.view(torch.int16).clamp_min_(0)
        return z
    return z.relu_()


def relu(z: Tensor) -> Tensor:
    """`relu_` into a new tensor."""
    if z.dtype in HALF_DTYPES:
        return z.view(torch.int16).clamp_min(0).view(z.dtype)
    return torch.relu(z)


def relu_backward(grad: Tensor, h: Tensor, out: Tensor | None = None) -> Tensor:
    """ReLU's backward from its output `h`: `grad` where h > 0, else 0 (into `out` if given).
    For bf16 and fp16 on the integers: h's bits read as int16 are positive exactly where
    h > 0 (a -0.0 reads negative), so clamp(0, 1) is the mask and an integer multiply
    applies it, 1.8x faster than threshold_backward on blocks out of cache."""
    if grad.dtype in HALF_DTYPES:
        mask = h.view(torch.int16).clamp(0, 1)
        return torch.mul(grad.view(torch.int16), mask, out=None if out is None else out.view(torch.int16)).view(grad.dtype)
    if out is None:
        return torch.ops.aten.threshold_backward(grad, h, 0)
    return torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=out)


def row_sum(grad: Tensor) -> Tensor:
    """The sum of `grad`'s rows, in fp32: a bias gradient. A 16-bit `grad` is summed by a
    ones-row matmul, which accumulates in fp32 and rounds once, 2-4x faster than converting
    every element to fp32 first."""
    if grad.dtype in HALF_DTYPES:
        return (grad.new_ones(1, grad.shape[0]) @ grad).view(-1).float()
    return grad.sum(0)


# --- convolution ----------------------------------------------------------------------


def fused_conv(x: Tensor, conv: nn.Conv2d, relu: bool = False, add: Tensor | None = None) -> Tensor:
    """conv(x) followed by ReLU or by `+ add`, as one oneDNN convolution whose epilogue
    applies them: no extra pass over the output, the slow part of a bf16 encoder (a
    bf16 ReLU or add costs as much as a third of its convolution). The convolution runs
    in `kernel_dtype(x)`; with gradients enabled it is `FusedConv`. Where `fused_on(x)` is
    false (GPUs, graphs, no oneDNN) it is the plain conv, then ReLU or the addition in
    place on its fresh output, as nn.ReLU(inplace=True) would."""
    if relu and add is not None:
        raise ValueError("fused_conv applies ReLU or an addition, not both")
    if not fused_on(x):
        out = conv(x)
        return out.relu_() if relu else out if add is None else out.add_(add)
    dtype = kernel_dtype(x)
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    if torch.is_grad_enabled():
        return FusedConv.apply(x.to(dtype), conv.weight, conv.bias, add, relu, geometry)
    bias = None if conv.bias is None else conv.bias.to(dtype)
    return _pointwise_conv(x.to(dtype), conv.weight.to(dtype), bias, add, relu, geometry)


def _pointwise_conv(x: Tensor, weight: Tensor, bias: Tensor | None, add: Tensor | None, relu: bool, geometry: tuple) -> Tensor:
    if add is None:
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, *geometry, "relu" if relu else "none", [], "")
    return torch.ops.mkldnn._convolution_pointwise.binary(x, add.to(x.dtype), weight, bias, *geometry, "add", None, None, [], None)


class FusedConv(torch.autograd.Function):
    """`fused_conv` with a backward: the ReLU's mask from the kept output, then aten's
    convolution backward; the addend's gradient is the output's. The weights are cast to
    x's dtype once, and their gradients returned in the parameters' dtype, as autocast does."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, add: Tensor | None, relu: bool, geometry: tuple) -> Tensor:
        kernel_weight = weight.to(x.dtype)
        out = _pointwise_conv(x, kernel_weight, bias.to(x.dtype), add, relu, geometry)
        ctx.save_for_backward(x, kernel_weight, out if relu else None)
        ctx.relu, ctx.geometry, ctx.dtypes = relu, geometry, (weight.dtype, bias.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, out = ctx.saved_tensors
        if ctx.relu:
            grad_out = relu_backward(grad_out, out)
        padding, stride, dilation, groups = ctx.geometry
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad_out, x, weight, [weight.shape[0]], stride, padding, dilation, False, [0, 0], groups,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        grad_add = grad_out if ctx.needs_input_grad[3] else None
        return (grad_x, None if grad_weight is None else grad_weight.to(ctx.dtypes[0]),
                None if grad_bias is None else grad_bias.to(ctx.dtypes[1]), grad_add, None, None)
