"""Feature encoders: EDSR without upsampler (baseline and LESS) and LIIF's RDN.

Module and parameter names follow LIIF's checkpoints (`head.0`, `body.{i}.body.{0,2}`,
`SFENet1`, `RDBs.{i}.convs.{c}.conv.0`, ...) so official weights load by name. LIIF's
EDSR also holds two mean-shift convs that its forward pass never uses; we leave them
out (they are dropped when converting a LIIF checkpoint).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from liifsr.config import EncoderConfig
from liifsr.decoders import relu_backward
from liifsr.runtime import kernel_dtype, onednn_eager


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def fused_conv(x: Tensor, conv: nn.Conv2d, relu: bool = False, add: Tensor | None = None) -> Tensor:
    """conv(x) followed by ReLU or by `+ add`, as one oneDNN convolution whose epilogue
    applies them: no extra pass over the output, the slow part of a bf16 encoder (a
    bf16 ReLU or add costs as much as a third of its convolution). Only where
    `runtime.onednn_eager(x)`; the convolution runs in `kernel_dtype(x)`. With gradients
    enabled it is `FusedConv`, whose backward is aten's convolution backward."""
    if relu and add is not None:
        raise ValueError("fused_conv applies ReLU or an addition, not both")
    dtype = kernel_dtype(x)
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    if torch.is_grad_enabled():
        return FusedConv.apply(x.to(dtype), conv.weight, conv.bias, add, relu, geometry)
    return _pointwise_conv(x.to(dtype), conv.weight.to(dtype), conv.bias.to(dtype), add, relu, geometry)


def _pointwise_conv(x: Tensor, weight: Tensor, bias: Tensor, add: Tensor | None, relu: bool, geometry: tuple) -> Tensor:
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
    def backward(ctx, grad_out: Tensor):
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


class ResBlock(nn.Module):
    """EDSR residual block: conv-ReLU-conv, scaled, plus the input."""

    def __init__(self, features: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(features, features), nn.ReLU(inplace=True), conv3x3(features, features))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        if self.res_scale == 1 and onednn_eager(x):
            return fused_conv(fused_conv(x, self.body[0], relu=True), self.body[2], add=x)
        res = self.body(x)
        if self.res_scale != 1:  # EDSR-baseline's 1 would cost a full pass for nothing
            res = res * self.res_scale
        return res.add_(x)


class EDSR(nn.Module):
    """EDSR body as LIIF's encoder: head conv, residual blocks, a conv, long skip."""

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(in_channels, n_feats))
        blocks: list[nn.Module] = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        blocks.append(conv3x3(n_feats, n_feats))
        self.body = nn.Sequential(*blocks)
        self.out_dim = n_feats
        # Every 3x3 conv widens the receptive field by one pixel on each side.
        self.receptive_radius = 2 * n_resblocks + 2

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(x)
        if onednn_eager(x):  # the long skip added in the last convolution's epilogue
            return fused_conv(self.body[:-1](x), self.body[-1], add=x)
        return self.body(x) + x


class RDBConv(nn.Module):
    """One densely connected layer: its output is concatenated to its input."""

    def __init__(self, in_channels: int, growth: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, growth, kernel_size, padding=kernel_size // 2), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(x)], dim=1)


class RDB(nn.Module):
    """Residual dense block: C dense layers, 1x1 local feature fusion, local skip."""

    def __init__(self, G0: int, G: int, C: int, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[RDBConv(G0 + c * G, G, kernel_size) for c in range(C)])
        self.LFF = nn.Conv2d(G0 + C * G, G0, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.LFF(self.convs(x)) + x


class RDN(nn.Module):
    """RDN without upsampler, as in LIIF (configuration B: G0 64, D 16, C 8, G 64)."""

    def __init__(self, G0: int = 64, D: int = 16, C: int = 8, G: int = 64, kernel_size: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.SFENet1 = nn.Conv2d(in_channels, G0, kernel_size, padding=pad)
        self.SFENet2 = nn.Conv2d(G0, G0, kernel_size, padding=pad)
        self.RDBs = nn.ModuleList([RDB(G0, G, C, kernel_size) for _ in range(D)])
        self.GFF = nn.Sequential(nn.Conv2d(D * G0, G0, 1), nn.Conv2d(G0, G0, kernel_size, padding=pad))
        self.out_dim = G0
        self.receptive_radius = pad * (2 + D * C + 1)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.SFENet1(x)
        x = self.SFENet2(f1)
        block_outputs = []
        for block in self.RDBs:
            x = block(x)
            block_outputs.append(x)
        return self.GFF(torch.cat(block_outputs, dim=1)) + f1


def make_encoder(config: EncoderConfig) -> nn.Module:
    if config.name == "edsr":
        return EDSR(config.n_resblocks, config.n_feats, config.res_scale)
    if config.name == "rdn":
        return RDN(config.G0, config.D, config.C, config.G, config.kernel_size)
    raise ValueError(f"unknown encoder {config.name!r} (choose 'edsr' or 'rdn')")
