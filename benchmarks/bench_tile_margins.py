"""The encoder's work in a tiled upscale written in bands: LR pixels encoded per pixel of the
input, at several scales, with thin bands sharing the features encoded for their tile row
(`tiling.FEATURE_CACHE_BYTES`) and with every band encoding its own rows (`decode_bands`'
`feature_cache_bytes=0`), side by side in one run.

Above x4 a band of `tiling.BAND_PIXELS` output pixels holds only a few LR rows, and each
window the encoder reads carries its receptive radius (34 pixels for EDSR) above and below
them: without sharing, the encoder's work grows with the scale. The count comes from the
schedule alone: the model's encoder and decoder are replaced by stand-ins that return
zeros of the right shapes, so any input size runs in seconds and the figure does not
depend on the CPU.

    python benchmarks/bench_tile_margins.py [--model edsr-thermal-refined] [--size 2048x2048]
                                            [--scales 2,4,8,16,30]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from liifsr import tiling
from liifsr.checks import output_size
from liifsr.zoo import load_model


@contextmanager
def counted_stand_ins(model: torch.nn.Module) -> Iterator[list[int]]:
    """The model's encoder and decoder replaced by zeros of their outputs' shapes; yields the
    list of pixels each encoder call received."""
    encoded: list[int] = []
    out_dim = model.encoder.out_dim

    def encode(inp: torch.Tensor) -> torch.Tensor:
        encoded.append(inp.shape[-2] * inp.shape[-1])
        return inp.new_zeros(inp.shape[0], out_dim, *inp.shape[-2:])

    def decode_window(window, coord: torch.Tensor, cell: torch.Tensor | None) -> torch.Tensor:
        return coord.new_zeros(*coord.shape[:2], 3)

    model.encode, model.decode_window = encode, decode_window
    try:
        yield encoded
    finally:
        del model.encode, model.decode_window  # the class's methods again


def encoded_per_pixel(model: torch.nn.Module, in_hw: tuple[int, int], scale: float, cache_bytes: int) -> float:
    """LR pixels encoded per input pixel by `upscale_bands`' schedule at `scale`."""
    inp = torch.zeros(1, 3, *in_hw)
    out_hw = output_size(in_hw, scale, None)
    with counted_stand_ins(model) as encoded, torch.no_grad():
        for _, blocks in tiling.decode_bands(model, inp, out_hw, 2**31, band_pixels=tiling.BAND_PIXELS,
                                             feature_cache_bytes=cache_bytes):
            for _ in blocks:
                pass
    return sum(encoded) / (in_hw[0] * in_hw[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="edsr-thermal-refined")
    parser.add_argument("--size", default="2048x2048", help="the input's HEIGHTxWIDTH")
    parser.add_argument("--scales", default="2,4,8,16,30")
    args = parser.parse_args()
    in_hw = tuple(int(side) for side in args.size.split("x"))
    model = load_model(args.model)
    print(f"{args.model}, {in_hw[0]}x{in_hw[1]} input, bands of {tiling.BAND_PIXELS:,} output pixels, "
          f"tiles of {tiling.DEFAULT_TILE}, encoder receptive radius {model.encoder.receptive_radius}")
    print("| scale | shared features (encoded / input pixels) | each band its own | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for scale in (float(s) for s in args.scales.split(",")):
        shared = encoded_per_pixel(model, in_hw, scale, tiling.FEATURE_CACHE_BYTES)
        own = encoded_per_pixel(model, in_hw, scale, 0)
        print(f"| x{scale:g} | {shared:.2f} | {own:.2f} | {own / shared:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
