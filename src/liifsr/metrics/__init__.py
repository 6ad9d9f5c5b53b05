"""Scores of an output against its ground truth: PSNR and SSIM under LIIF's evaluation
protocols (`fidelity`), and edge sharpness (`edges`). See each module for the protocols
and the definitions."""

from liifsr.metrics.edges import edge_reach, edge_slope, edge_width
from liifsr.metrics.fidelity import (
    PROTOCOLS,
    SSIM_WINDOW,
    calc_psnr,
    filter_valid,
    gaussian_filter_valid,
    gaussian_window,
    psnr,
    rgb_to_y,
    shave_for,
    ssim,
)

__all__ = [
    "PROTOCOLS",
    "SSIM_WINDOW",
    "calc_psnr",
    "edge_reach",
    "edge_slope",
    "edge_width",
    "filter_valid",
    "gaussian_filter_valid",
    "gaussian_window",
    "psnr",
    "rgb_to_y",
    "shave_for",
    "ssim",
]
