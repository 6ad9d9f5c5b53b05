"""CUDA correctness check, for a machine with a GPU (not part of the CPU test suite).

Runs the official-LIIF fixtures and the fast-vs-literal comparison on CUDA, in fp32
with TF32 off (exact path) and on (PyTorch's cuDNN default), plus tiled inference and
the MATLAB imresize, and prints the max abs differences.

    python benchmarks/check_cuda.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from liifsr.models import model_preset
from liifsr.models.liif import LIIF
from liifsr.reference import literal_query
from liifsr.resize import imresize
from liifsr.runtime import machine_summary
from liifsr.tiling import upscale_tensor
from liifsr.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]

FIXTURES = ROOT / "tests" / "fixtures" / "liif-reference"


def main() -> int:
    device = torch.device("cuda")
    print(machine_summary())
    cases = np.load(FIXTURES / "cases.npz")
    worst = 0.0
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for name in ("tiny-full", "tiny-no-unfold", "tiny-no-ensemble", "tiny-no-cell"):
            model = load_model(FIXTURES / f"{name}.pth", device=device)
            for key, prefix in (("pred", ""), ("batch_pred", "batch_")):
                inp, coord, cell = (torch.from_numpy(cases[prefix + k]).to(device) for k in ("inp", "coord", "cell"))
                with torch.no_grad():
                    diff = (model(inp, coord, cell).cpu() - torch.from_numpy(cases[f"{name}/{key}"])).abs().max().item()
                print(f"tf32={tf32} fixture {name}/{key}: max abs diff {diff:.2e}")
                worst = max(worst, diff) if not tf32 else worst
        torch.manual_seed(0)
        for preset in ("edsr-liif-relu", "edsr-liif-siren30"):
            model = LIIF(model_preset(preset)).to(device).eval()
            inp = torch.rand(2, 3, 48, 48, device=device) * 2 - 1
            coord = torch.rand(2, 2304, 2, device=device) * 2 - 1
            cell = torch.full_like(coord, 2 / 150)
            with torch.no_grad():
                diff = (model(inp, coord, cell) - literal_query(model, inp, coord, cell)).abs().max().item()
            print(f"tf32={tf32} fast vs literal {preset}: {diff:.2e}")
            worst = max(worst, diff) if not tf32 else worst
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = LIIF(model_preset("edsr-liif-relu")).to(device).eval()
    lr = torch.rand(1, 3, 200, 170, device=device)
    tiled = upscale_tensor(model, lr, (500, 425), tile_size=64)
    whole = upscale_tensor(model, lr, (500, 425), tile_size=1000)
    diff = (tiled - whole).abs().max().item()
    print(f"tiled vs untiled on CUDA: {diff:.2e}")
    x = torch.rand(2, 3, 64, 48, dtype=torch.float64)
    diff = (imresize(x.to(device), scale=1 / 3).cpu() - imresize(x, scale=1 / 3)).abs().max().item()
    print(f"imresize CUDA vs CPU (float64): {diff:.2e}")
    worst = max(worst, diff)
    print(f"worst exact-path difference: {worst:.2e} -> {'OK' if worst <= 1e-5 else 'FAIL'}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
