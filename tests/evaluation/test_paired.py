"""Paired statistics from `liifsr evaluate` reports (liifsr.evaluation.paired, tools/paired_stats.py):
the estimate and its bootstrap interval against their literal formulas on hand-made reports."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from liifsr.evaluation.paired import Cell, Paired, bootstrap_differences, difference, main, paired_stats, read_reports


def record(model: str, scores: dict[str, float], dataset: str = "Set5", scale: float = 4.0, degrade: str = "clean",
           precision: str = "fp32", metric: str = "psnr") -> dict:
    """A JSON record as `liifsr evaluate` writes it, with these per-image scores."""
    per_image = [{"image": name, "psnr": 0.0, "ssim": 0.0, "edge_width": 0.0, metric: value} for name, value in scores.items()]
    return {"model": model, "dataset": dataset, "protocol": "benchmark", "precision": precision, "scale": scale,
            "psnr": 30.0, "ssim": 0.9, "images": len(scores), "seconds": 1.0,
            "edge_width": 2.0, "degrade": degrade, "per_image": per_image}


def images(values) -> dict[str, float]:
    return {f"img{i:03d}.png": float(v) for i, v in enumerate(values)}


def write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records))
    return path


def only_row(records, a=None, b=None, **options):
    _, (row,), _ = paired_stats(records, a, b, **options)
    return row


def test_a_constant_difference_has_a_zero_width_interval() -> None:
    a = images([30.0, 28.5, 33.25, 31.0, 26.75])
    b = {name: value + 0.25 for name, value in a.items()}  # exact in binary: the same 0.25 on every image
    row = only_row([record("relu", a), record("siren", b)])
    assert (row.estimate, row.low, row.high) == (0.25, 0.25, 0.25)
    assert (row.images, row.seeds_a, row.seeds_b) == (5, 1, 1)
    assert row.mean_a == pytest.approx(np.mean(list(a.values()))) and row.mean_b == pytest.approx(row.mean_a + 0.25)


def test_the_estimate_is_the_mean_paired_difference_by_image() -> None:
    """Pairs by image name, whatever the order of the records' lists."""
    a = images([30.0, 20.0, 25.0])
    b = dict(reversed(list(images([31.0, 20.5, 24.0]).items())))
    row = only_row([record("A", a), record("B", b)])
    assert row.estimate == pytest.approx(((31 - 30) + (20.5 - 20) + (24 - 25)) / 3, abs=1e-12)


def test_the_interval_is_the_exact_bootstrap_distributions_percentiles() -> None:
    """With one seed per side the bootstrap draws n of the n differences with replacement; for
    n = 4 its exact distribution is the mean of each of the 4^4 equally likely draws. The
    interval from 200,000 resamples matches that distribution's 2.5 and 97.5 percentiles."""
    differences = np.array([0.0, 1.0, 3.0, 10.0])
    exact = np.sort([np.mean(draw) for draw in itertools.product(differences, repeat=4)])
    paired = Paired(Cell("Set5", "benchmark", "clean", 4.0), ("a", "b", "c", "d"), np.zeros((1, 4)), differences[None])
    row = difference(paired, resamples=200_000)
    low, high = np.quantile(exact, [0.025, 0.975])
    step = np.min(np.diff(np.unique(exact)))  # the distribution's resolution: 0.25
    assert abs(row.low - low) <= step and abs(row.high - high) <= step
    assert row.estimate == 3.5


def test_seeds_are_resampled_then_images() -> None:
    """Scores constant over images, so only the seeds vary: A's two seeds score 30, B's 31 and 33.
    The resampled B mean is 31, 32 or 33 with probabilities 1/4, 1/2, 1/4: the interval is
    [1, 3] around the estimate 2, where one seed per side would give a zero-width interval."""
    flat = lambda value: images([value] * 6)  # noqa: E731
    records = [record("relu-0", flat(30)), record("relu-1", flat(30)), record("siren-0", flat(31)), record("siren-1", flat(33))]
    row = only_row(records, ["relu-0", "relu-1"], ["siren-0", "siren-1"])
    assert (row.estimate, row.low, row.high) == (2.0, 1.0, 3.0)
    assert (row.seeds_a, row.seeds_b) == (2, 2)
    single = only_row(records, ["relu-0"], ["siren-1"])
    assert (single.estimate, single.low, single.high) == (3.0, 3.0, 3.0)
    draws = bootstrap_differences(np.full((2, 6), 30.0), np.array([[31.0] * 6, [33.0] * 6]), 40_000,
                                  np.random.default_rng(0))
    assert [np.mean(draws == v) for v in (1.0, 2.0, 3.0)] == pytest.approx([0.25, 0.5, 0.25], abs=0.01)


def test_a_large_sample_covers_the_true_mean_with_the_normal_width() -> None:
    """2,000 images whose differences are N(0.3, 0.5^2): the interval holds 0.3 and is as wide
    as the normal theory's 2 x 1.96 x 0.5 / sqrt(2000), within 10 %."""
    rng = np.random.default_rng(1)
    a = rng.normal(30, 2, 2000)
    b = a + rng.normal(0.3, 0.5, 2000)
    row = only_row([record("A", images(a)), record("B", images(b))])
    assert row.low < 0.3 < row.high
    assert row.high - row.low == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(2000), rel=0.1)
    assert row.estimate == pytest.approx(float(np.mean(b - a)), abs=1e-12)


def test_the_interval_covers_the_true_mean_about_95_times_in_100() -> None:
    """400 samples of 40 images (differences skewed: exponential, mean 0.5): the percentile
    interval holds the true mean in 88-98 % of them (it runs a little short of 95 % on small
    skewed samples, as percentile intervals do)."""
    rng = np.random.default_rng(2)
    cell = Cell("Set5", "benchmark", "clean", 4.0)
    covered = 0
    for trial in range(400):
        d = rng.exponential(0.5, 40)
        row = difference(Paired(cell, tuple(map(str, range(40))), np.zeros((1, 40)), d[None]), resamples=2000, seed=trial)
        covered += row.low < 0.5 < row.high
    assert 0.88 <= covered / 400 <= 0.98


def test_the_table_is_deterministic_and_each_cell_independent_of_the_others() -> None:
    rng = np.random.default_rng(3)
    cells = [(dataset, scale) for dataset in ("Set5", "Set14") for scale in (2.0, 4.0)]
    records = []
    for model, shift in (("A", 0.0), ("B", 0.1)):
        records += [record(model, images(rng.normal(30 + shift, 1, 8)), dataset, scale) for dataset, scale in cells]
    text, rows, partial = paired_stats(records, None, None)
    assert paired_stats(records, None, None)[0] == text and partial == []
    assert len(rows) == 4 and text.count("| Set") == 4
    alone = [r for r in records if (r["dataset"], r["scale"]) == ("Set14", 4.0)]
    assert only_row(alone) == rows[3]  # the same interval without the other cells
    assert paired_stats(records, None, None, seed=1)[1][3] != rows[3]  # another seed draws other resamples


def test_cells_pair_like_with_like() -> None:
    """Degraded and clean inputs are different cells; a cell one model lacks is left out and
    reported; seeds that scored different images are an error."""
    a, b = images([30, 31, 32]), images([31, 32, 33])
    records = [record("A", a), record("B", b), record("A", a, degrade="jpeg:75"), record("B", b, degrade="jpeg:75"),
               record("A", a, scale=8.0)]
    text, rows, partial = paired_stats(records, ["A"], ["B"])
    assert [row.cell.degrade for row in rows] == ["clean", "jpeg:75"]
    assert "| Set5 | benchmark | jpeg:75 | x4 | 3 | 1 / 1 |" in text
    assert partial == [Cell("Set5", "benchmark", "clean", 8.0)]
    with pytest.raises(ValueError, match="different images"):
        paired_stats([record("A", a), record("B", images([1, 2]))], None, None)


def test_images_without_a_score_leave_their_cell_for_both_sides() -> None:
    a = {**images([2.0, 3.0]), "flat.png": None}
    b = {**images([2.5, 2.5]), "flat.png": 4.0}
    row = only_row([record("A", a, metric="edge_width"), record("B", b, metric="edge_width")], metric="edge_width")
    assert row.images == 2 and row.estimate == pytest.approx(0.0)


def test_models_are_named_by_record_file_name_or_stem_and_precision_filters() -> None:
    scores = images([30, 31])
    records = [record("runs/models/relu-seed0.safetensors", scores), record("bicubic", scores, precision="-"),
               record("runs/models/siren-seed0.safetensors", scores, precision="bf16"),
               record("runs/models/siren-seed0.safetensors", scores, precision="fp32")]
    with pytest.raises(ValueError, match="two records.*--precision"):
        paired_stats(records, ["relu-seed0"], ["siren-seed0"])
    assert only_row(records, ["relu-seed0.safetensors"], ["siren-seed0"], precision="fp32").estimate == 0.0
    assert only_row(records, ["bicubic"], ["siren-seed0"], precision="bf16").images == 2  # bicubic's '-' is kept
    with pytest.raises(ValueError, match="no model 'lte'"):
        paired_stats(records, ["lte"], ["bicubic"])
    with pytest.raises(ValueError, match="holds 3 models|hold 3 models"):
        paired_stats(records, None, None, precision="fp32")
    with pytest.raises(ValueError, match="both sides"):
        paired_stats(records, ["bicubic"], ["bicubic"])


def test_the_tool_prints_a_markdown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    a = write(tmp_path / "relu.json", [record("relu", images([30.0, 28.0, 29.0]))])
    b = write(tmp_path / "siren.json", [record("siren", images([30.5, 28.25, 29.0]))])
    spec = importlib.util.spec_from_file_location("paired_stats", Path(__file__).parents[2] / "tools" / "paired_stats.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(a), str(b), "--resamples", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Paired differences of PSNR (dB), B - A by image: A = relu; B = siren. 95 % interval")
    assert lines[2] == ("| Dataset | Protocol | Inputs | Scale | Images | Seeds A / B | A | B | B - A | 95 % interval "
                        "| Interval vs 0 |")
    assert lines[4].startswith("| Set5 | benchmark | clean | x4 | 3 | 1 / 1 | 29.00 | 29.25 | +0.250 | [+0.000, +0.")


def test_the_tool_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = {k: v for k, v in record("relu", images([30.0])).items() if k != "per_image"}
    path = write(tmp_path / "old.json", [old])
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paired_stats: error: ") and "no per-image scores" in err and "\n" not in err
    (tmp_path / "bad.json").write_text("{")
    assert main([str(tmp_path / "bad.json")]) == 2
    assert "not a JSON report" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 2


def test_reports_of_liifsr_evaluate_pair(tmp_path: Path) -> None:
    """End to end: two real reports of one dataset, bicubic on clean and a model on the same images."""
    import torch
    from PIL import Image

    from liifsr import LIIF, ModelConfig, save_model
    from liifsr.cli import main as liifsr
    from liifsr.models.edsr import EDSRConfig
    from liifsr.models.liif import LIIFConfig

    folder = tmp_path / "Tiny" / "HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(folder / f"{name}.png")
    torch.manual_seed(0)
    save_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16]))), tmp_path / "tiny.safetensors")
    for model, out in (("bicubic", "a.json"), (str(tmp_path / "tiny.safetensors"), "b.json")):
        assert liifsr(["evaluate", "--model", model, "--dataset", str(folder.parent), "--scales", "2", "--quiet",
                       "--out", str(tmp_path / out)]) == 0
    records = read_reports([tmp_path / "a.json", tmp_path / "b.json"])
    row = only_row(records, ["bicubic"], ["tiny"])
    a, b = (np.array([e["psnr"] for e in r["per_image"]]) for r in records)
    assert row.images == 3 and row.estimate == pytest.approx(float(np.mean(b - a)), abs=1e-9)
    assert row.low <= row.estimate <= row.high
