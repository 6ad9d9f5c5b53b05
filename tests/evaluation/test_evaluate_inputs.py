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


# --- degraded inputs (--degrade) -------------------------------------------------------------


def tiny_model(path: Path) -> Path:
    import torch

    from liifsr import LIIF, ModelConfig, save_model
    from liifsr.models.edsr import EDSRConfig
    from liifsr.models.liif import LIIFConfig

    torch.manual_seed(0)
    save_model(LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16]))), path)
    return path


def seen_inputs(monkeypatch, models, folder, degrade, images=None) -> dict:
    """The LR input every method got, by (image, scale, method call), from a real evaluation."""
    import liifsr.evaluation.loop as loop
    from liifsr.evaluation.loop import evaluate

    seen: dict = {}
    real = loop.score

    def spy(method, hr, lr, protocol, scale):
        seen.setdefault((hr.shape, scale), []).append(lr.clone())
        return real(method, hr, lr, protocol, scale)

    monkeypatch.setattr(loop, "score", spy)
    records = evaluate(models, [folder], [2, 6], progress=False, degrade=degrade, images=images)
    monkeypatch.setattr(loop, "score", real)
    return {"inputs": seen, "records": records}


def test_a_degradation_is_the_same_for_every_model_and_every_run(tmp_path, monkeypatch):
    import torch

    from liifsr.degrade import apply_steps, image_generator, parse_spec, to_uint8
    from liifsr.evaluation.datasets import find_dataset, make_pair

    folder = dataset(tmp_path, {"a": (40, 48), "b": (36, 44)})
    models = ["bicubic", str(tiny_model(tmp_path / "tiny.safetensors"))]
    clean = seen_inputs(monkeypatch, models, folder, None)["inputs"]
    first = seen_inputs(monkeypatch, models, folder, "noise:5,jpeg:75")
    again = seen_inputs(monkeypatch, models, folder, "noise:5,jpeg:75")["inputs"]
    assert len(first["inputs"]) == 4  # two images at two scales (x6: LIIF's on-the-fly protocol)
    for key, inputs in first["inputs"].items():
        bicubic_lr, model_lr = inputs
        assert torch.equal(bicubic_lr, model_lr) and bicubic_lr.dtype == torch.uint8  # bicubic is degraded too
        assert all(torch.equal(x, y) for x, y in zip(inputs, again[key]))  # and so is every run
        assert bicubic_lr.shape == clean[key][0].shape and not torch.equal(bicubic_lr, clean[key][0])
    # The literal chain: the protocol's LR, then degrade's fixed steps with the image's own generator.
    steps = parse_spec("noise:5,jpeg:75")
    _, lr = make_pair(find_dataset(folder), folder / "HR" / "a.png", 2)
    expected = to_uint8(apply_steps(lr.float() / 255, steps, image_generator("Tiny/a.png", 2.0, steps)))
    assert any(torch.equal(expected, inputs[0]) for inputs in first["inputs"].values())
    assert {r["degrade"] for r in first["records"]} == {"noise:5,jpeg:75"}


def test_jpeg_changes_the_lr_and_lowers_bicubics_score(tmp_path, monkeypatch):

    folder = dataset(tmp_path, {"a": (40, 48)})
    clean = seen_inputs(monkeypatch, ["bicubic"], folder, "clean")
    jpeg = seen_inputs(monkeypatch, ["bicubic"], folder, "jpeg:75")
    for key, (lr,) in jpeg["inputs"].items():
        difference = (lr.float() - clean["inputs"][key][0].float()).abs()
        assert difference.max() > 10 and difference.mean() > 1  # 8-bit levels
    assert [r["degrade"] for r in clean["records"]] == ["clean", "clean"]
    for clean_record, jpeg_record in zip(clean["records"], jpeg["records"]):
        assert jpeg_record["psnr"] < clean_record["psnr"]


def test_a_subset_gets_each_images_own_degradation(tmp_path, monkeypatch):
    folder = dataset(tmp_path, {"a": (40, 48), "b": (36, 44), "c": (40, 40)})
    whole = seen_inputs(monkeypatch, ["bicubic"], folder, "noise:10")
    subset = seen_inputs(monkeypatch, ["bicubic"], folder, "noise:10", images=2)
    assert subset["records"][0]["dataset"] == "Tiny (2 of 3)"
    scores = {e["image"]: e for e in whole["records"][0]["per_image"]}
    assert len(subset["records"][0]["per_image"]) == 2
    for part in subset["records"][0]["per_image"]:
        assert part == scores[part["image"]]  # the same scores: the same degraded input


def test_the_reports_name_the_degradation(tmp_path, capsys):
    import csv
    import json

    folder = dataset(tmp_path, {"a": (40, 48)})
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["evaluate", "--model", "bicubic", "--dataset", str(folder), "--scales", "2", "--quiet", "--degrade", "jpeg:75"]
    assert main([*argv, "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert "PSNR (dB), benchmark protocol (Y channel, `scale` border pixels shaved), LR inputs degraded by jpeg:75." in out
    assert json.loads(report.read_text())[0]["degrade"] == "jpeg:75"
    assert main([*argv, "--out", str(table)]) == 0
    assert next(csv.DictReader(table.open()))["degrade"] == "jpeg:75"


@pytest.mark.parametrize("spec, words", [("jpeg:750", "jpeg takes an integer"), ("sharpen:2", "unknown degradation"),
                                         ("noise:x", "is not a number"), ("jpeg:75,", "unknown degradation")])
def test_a_bad_degradation_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, spec, words):
    import liifsr.evaluation.loop as loop

    folder = dataset(tmp_path, {"a": (40, 48)})
    monkeypatch.setattr(loop, "load_methods", lambda *a, **k: pytest.fail("loaded a model before checking --degrade"))
    report = tmp_path / "r.json"
    err = fails(capsys, "evaluate", "--model", "bicubic", "--dataset", folder, "--degrade", spec, "--out", report)
    assert words in err and not report.exists()
