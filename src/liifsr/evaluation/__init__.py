"""Evaluation, `liifsr evaluate`: PSNR / SSIM of models on benchmark or DIV2K folders, as LIIF measures them,
the edge width (metrics.edge_width: the 10-90 % rise across the ground truth's strongest edges) and
the edge slope (metrics.edge_slope: the output's steepest slope across them over the ground truth's).

Two folder layouts are read as they are downloaded:

* EDSR's benchmark layout (`liifsr data download benchmark`): a set folder with `HR/`
  and optionally `LR_bicubic/X{s}/` (`HR/baby.png` pairs with `LR_bicubic/X2/babyx2.png`);
* DIV2K's layout (`liifsr data download div2k`): the `DIV2K` folder, holding
  `DIV2K_valid_HR/` and optionally `DIV2K_valid_LR_bicubic/X{s}/` (`0801.png` pairs with
  `X2/0801x2.png`), or the `DIV2K_valid_HR` folder itself.

Test pairs are made as LIIF makes them:

* scales up to 4 (in-domain): the LR file when the `X{s}` folder exists, else MATLAB
  bicubic `imresize` of the modcropped HR rounded to uint8 (which is how those files
  were made); the HR is cropped to s times the LR size (LIIF's paired-folder rule);
* scales above 4 (out-of-domain): LIIF's on-the-fly downsampler (`liif_downsample`).

Protocols (LIIF's `calc_psnr`): 'benchmark' is Y channel, shave = scale; 'div2k' is RGB,
shave = scale + 6; SSIM is on Y with the same shave. `--protocol auto` picks 'div2k'
for the DIV2K layout and for folders named like DIV2K, 'benchmark' otherwise; the
choice is printed for every dataset and stored in every record.

Every HR image (and pre-made LR image) is read once before any model runs: a corrupt
file, or an image too small for a scale and its shave, stops the evaluation at the
start with one line naming the file, never after hours and never with a partial
report (published averages over a subset would not be comparable). Where a full set is
too slow, `--images N` scores N images spread evenly over its sorted list, and the
records name the set with the count (e.g. "Urban100 (20 of 100)").

Grayscale HR images are read as RGB (channel replicated), as LIIF's loader does.
Models are scored on their clamped float output, as LIIF's test script does; the
built-in `bicubic` method upsamples with MATLAB `imresize` and rounds to uint8, as
the standard bicubic tables do. Per-image values are averaged over the dataset, and
JSON reports keep them (`per_image`) for paired statistics (`paired.py`).

With `--degrade SPEC` (liifsr.degrade's fixed chains, e.g. `jpeg:75`), every LR input is
degraded after the protocol made it and before any method, bicubic included, sees it;
the noise of each image comes from its own generator (dataset folder, file name, scale
and chain), so every model and every run gets the same input. Records name the chain
(`degrade`, 'clean' for none).

Reports: JSON (a list of records, see `JSON_KEYS`), CSV (`RECORD_KEYS`: the same but the
per-image scores) or Markdown laid out like the paper's Table 3 (benchmark protocol:
dataset and model rows) or Table 4 (div2k protocol: model rows), with scales above 4
grouped as out-of-domain; one table each for PSNR, SSIM and the edge width.

    datasets.py   folders, protocols, LR/HR pairs, the checks before any model runs
    loop.py       methods (models and bicubic), scoring, `evaluate`
    reports.py    JSON, CSV and Markdown (Tables 3 and 4) reports
    paired.py     paired differences between two models' reports with bootstrap intervals
                  (tools/paired_stats.py)

The command, `liifsr evaluate`, is `liifsr.commands.evaluate`.
"""
