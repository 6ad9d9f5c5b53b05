"""The encoder contract: what the rest of liifsr reads of an encoder.

Every registered encoder subclasses `Encoder` (`ENCODERS` refuses any other builder), and
so declares the two facts that the decoders (`models.base`), tiled inference
(`liifsr.tiling`) and ONNX export read of it.
"""

from __future__ import annotations

from torch import nn


class Encoder(nn.Module):
    """An LR image (B, 3, H, W) -> a feature map (B, out_dim, H, W), at the input's resolution.

    out_dim           the feature map's channels: the decoder's input width
    receptive_radius  how many pixels on each side of its own a feature depends on: tiled
                      inference encodes each tile with that margin (so that its features are
                      the whole image's), and ONNX export records it in the model file
    """

    def __init__(self, out_dim: int, receptive_radius: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.receptive_radius = receptive_radius
