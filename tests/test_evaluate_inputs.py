"""`liifsr evaluate` with bad images: it stops before any model runs, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liifsr.cli import main


def dataset(root: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder = root / "Tiny"
    (folder / "HR").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem, (height, width) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(folder / "HR" / f"{stem}.png")
    return folder


def fails(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("liifsr: error: ") and "\n" not in err and captured.out == "", err
    return err


def test_a_corrupt_image_stops_the_evaluation_before_any_scoring(tmp_path, capsys, monkeypatch):
    import liifsr.evaluation.loop as evaluate

    folder = dataset(tmp_path, {"a": (40, 40), "b": (40, 40)})
    (folder / "HR" / "b.png").write_bytes((folder / "HR" / "b.png").read_bytes()[:200])
    scored = []
    monkeypatch.setattr(evaluate, "score", lambda *args: scored.append(args) or (0.0, 0.0, 0.0))
    report = tmp_path / "r.json"
    err = fails(capsys, "evaluate", "--model", "bicubic", "--dataset", folder, "--scales", "2", "--quiet", "--out", report)
    assert "b.png" in err and "truncated" in err
    assert scored == [] and not report.exists()


@pytest.mark.parametrize("scale, protocol", [(4, "benchmark"), (8, "benchmark"), (2, "div2k")])
def test_an_hr_image_too_small_for_the_scale_is_named(tmp_path, capsys, scale, protocol):
    folder = dataset(tmp_path, {"big": (64, 64), "tiny": (9, 30)})  # x4: 8x28, nothing left after shaving
    err = fails(capsys, "evaluate", "--model", "bicubic", "--dataset", folder, "--scales", str(scale),
                "--protocol", protocol, "--quiet")
    assert "tiny.png" in err and "too small" in err and "9x30" in err


def test_small_but_sufficient_images_are_scored(tmp_path, capsys):
    folder = dataset(tmp_path, {"a": (15, 16)})  # x2 benchmark: 14x16 crop, 2 pixels shaved per border: 10x12 < 11
    assert "too small" in fails(capsys, "evaluate", "--model", "bicubic", "--dataset", folder, "--scales", "2", "--quiet")
    folder = dataset(tmp_path / "b", {"a": (16, 16)})  # 16x16 crop, 12x12 left
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(folder), "--scales", "2", "--quiet"]) == 0
    assert "Tiny" in capsys.readouterr().out
