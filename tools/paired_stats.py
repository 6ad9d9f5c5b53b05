#!/usr/bin/env python3
"""Mean paired difference B - A of two models per dataset and scale, with a 95 % bootstrap
interval over images (and over seeds where a side names several), from `liifsr evaluate
--out X.json` reports; a Markdown table on stdout.

    .venv/bin/python tools/paired_stats.py eval/*.json --a relu-seed0 relu-seed1 \\
        --b siren30-seed0 siren30-seed1 [--metric psnr|ssim|edge_width|edge_slope] [--precision bf16]
        [--resamples 10000] [--seed 0]

The statistics and their definition: liifsr.evaluation.paired.
"""

import sys

from liifsr.evaluation.paired import main

if __name__ == "__main__":
    sys.exit(main())
