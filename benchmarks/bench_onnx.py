"""onnxruntime against PyTorch on the same model: output kilopixels per second.

Exports the bundled default model (`liifsr export`), then upscales the same real LR
crops with both through `upscale_tensor` (same tiles; chunks of --chunk queries), in
one process, interleaved, best of --repeats. Prints kpx/s of each, their ratio and the
largest difference between the two outputs (in [0, 1] units).

    python benchmarks/bench_onnx.py [--scales 2,4,12] [--repeats 3] [--chunk 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from liifsr.imageio import sample_image
from liifsr.onnx_export import export_onnx
from liifsr.onnx_runtime import load_onnx_model
from liifsr.runtime import machine_summary
from liifsr.tiling import upscale_tensor
from liifsr.zoo import load_model

OUTPUT_SIDE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="2,4,12")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args()
    model = load_model()
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(model, Path(folder) / "model.onnx")
        runtime = load_onnx_model(Path(folder) / "model.onnx")
        photo = np.asarray(Image.open(sample_image()).convert("RGB"), dtype=np.float32) / 255
        print(f"{machine_summary()}; output {OUTPUT_SIDE}x{OUTPUT_SIDE}; chunk {args.chunk}")
        print("| scale | PyTorch kpx/s | onnxruntime kpx/s | onnxruntime / PyTorch | max abs diff |")
        print("|---|---|---|---|---|")
        for scale in (float(s) for s in args.scales.split(",")):
            side = round(OUTPUT_SIDE / scale)
            lr = torch.from_numpy(photo[128 : 128 + side, 160 : 160 + side]).permute(2, 0, 1).unsqueeze(0).contiguous()
            best = {"torch": float("inf"), "ort": float("inf")}
            outputs = {}
            for _ in range(args.repeats):
                for name, runner in (("torch", model), ("ort", runtime)):
                    start = time.perf_counter()
                    outputs[name] = upscale_tensor(runner, lr, (OUTPUT_SIDE, OUTPUT_SIDE), chunk_size=args.chunk)
                    best[name] = min(best[name], time.perf_counter() - start)
            kpx = OUTPUT_SIDE**2 / 1000
            diff = (outputs["torch"] - outputs["ort"]).abs().max().item()
            print(f"| x{scale:g} | {kpx / best['torch']:.0f} | {kpx / best['ort']:.0f} | {best['torch'] / best['ort']:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
