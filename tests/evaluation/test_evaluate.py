"""Tests for `liifsr evaluate`: record format, report layouts, LIIF's test protocol, CLI errors."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image
from safetensors import safe_open

from liifsr import LIIF, ModelConfig, save_model
from liifsr.checkpoint import read_metadata
from liifsr.cli import main
from liifsr.evaluation.datasets import find_dataset, hr_images, make_pair, parse_scales, resolve_protocol, spread_subset, to_float
from liifsr.evaluation.loop import IMAGE_KEYS, JSON_KEYS, RECORD_KEYS, evaluate
from liifsr.evaluation.reports import format_csv, format_json, format_markdown, write_report
from liifsr.imageio import read_uint8, sample_image
from liifsr.metrics import calc_psnr, edge_slope, edge_width, ssim
from liifsr.models import model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.resize import bicubic_upsample, imresize_uint8
from liifsr.tiling import upscale_tensor
from liifsr.zoo import DEFAULT_MODEL, bundled_models, load_model


def synthetic_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour pattern plus mild noise, uint8 (H, W, 3): textured enough for PSNR to move."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 7.0
    base = np.stack([np.sin(x + y), np.cos(x - 0.5 * y), np.sin(0.7 * x) * np.cos(0.3 * y)], axis=-1)
    noisy = 0.5 + 0.4 * base + 0.05 * rng.standard_normal((height, width, 3))
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


def make_dataset(root: Path, name: str = "Tiny", images: dict[str, np.ndarray] | None = None) -> Path:
    dataset = root / name
    (dataset / "HR").mkdir(parents=True)
    for stem, pixels in (images or {"a": synthetic_rgb(48, 40)}).items():
        Image.fromarray(pixels).save(dataset / "HR" / f"{stem}.png")
    return dataset


def tiny_model_file(path: Path) -> Path:
    torch.manual_seed(0)
    model = LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16, 16])))
    save_model(model, path)
    return path


def fake_records(datasets: list[str], models: list[str], scales: list[float], protocol: str = "benchmark") -> list[dict]:
    return [
        {"model": m, "dataset": d, "protocol": protocol, "precision": "-", "scale": float(s), "psnr": 30.0 + i + s / 100,
         "ssim": 0.9, "images": 5, "seconds": 1.5, "edge_width": 2.5 + i + s / 100, "degrade": "clean",
         "edge_slope": 0.5 + i / 10}
        for d in datasets
        for i, m in enumerate(models)
        for s in scales
    ]


# --- record format ----------------------------------------------------------------


def test_json_record_format_is_stable(tmp_path: Path) -> None:
    """Other tools read these files: exactly these keys, with these types (new keys last)."""
    dataset = make_dataset(tmp_path)
    records = evaluate(["bicubic"], [dataset], [2, 6], progress=False)
    assert list(RECORD_KEYS) == ["model", "dataset", "protocol", "precision", "scale", "psnr", "ssim", "images", "seconds",
                                 "edge_width", "degrade", "edge_slope"]
    assert list(JSON_KEYS) == [*RECORD_KEYS, "per_image"]
    assert list(IMAGE_KEYS) == ["image", "psnr", "ssim", "edge_width", "edge_slope"]
    out = tmp_path / "report.json"
    write_report(records, out)
    loaded = json.loads(out.read_text())
    assert isinstance(loaded, list) and len(loaded) == 2
    for record in loaded:
        assert list(record) == list(JSON_KEYS)
        for key, kind in JSON_KEYS.items():
            assert type(record[key]) is kind, (key, record[key])
        assert record["degrade"] == "clean"
        (image,) = record["per_image"]
        assert list(image) == list(IMAGE_KEYS) and image["image"] == "a.png"
        for key, kind in IMAGE_KEYS.items():
            assert type(image[key]) is kind, (key, image[key])
    assert [(r["model"], r["dataset"], r["protocol"], r["scale"], r["images"]) for r in loaded] == [
        ("bicubic", "Tiny", "benchmark", 2.0, 1),
        ("bicubic", "Tiny", "benchmark", 6.0, 1),
    ]
    assert all(math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in loaded)


def test_csv_has_the_record_columns() -> None:
    text = format_csv(fake_records(["Set5"], ["bicubic"], [2]))
    header, row = text.splitlines()
    assert header == "model,dataset,protocol,precision,scale,psnr,ssim,images,seconds,edge_width,degrade,edge_slope"
    assert row.startswith("bicubic,Set5,benchmark,-,2.0,") and row.endswith(",1.5,2.52,clean,0.5")
    no_edge = format_csv([{**fake_records(["Set5"], ["bicubic"], [2])[0], "edge_width": None, "edge_slope": None}])
    assert no_edge.splitlines()[1].endswith(",1.5,,clean,")  # null: no image had an edge


def test_records_keep_each_images_scores_and_their_means(tmp_path: Path) -> None:
    """per_image holds each image's PSNR, SSIM and edge width as the metrics compute them on
    that image alone; the record's scores are their means."""
    images = {stem: synthetic_rgb(48, 40, seed) for seed, stem in enumerate("cab")}
    dataset = make_dataset(tmp_path, "Three", images)
    (record,) = evaluate(["bicubic"], [dataset], [2], progress=False)
    assert [entry["image"] for entry in record["per_image"]] == ["a.png", "b.png", "c.png"]  # sorted, as scored
    for entry in record["per_image"]:
        hr, lr = make_pair(find_dataset(dataset), dataset / "HR" / entry["image"], 2)
        sr = bicubic_upsample(to_float(lr), (48, 40))
        assert entry["psnr"] == pytest.approx(float(calc_psnr(sr, to_float(hr), "benchmark", 2)), abs=1e-9)
        assert entry["ssim"] == pytest.approx(ssim(sr, to_float(hr), 2, "benchmark"), abs=1e-12)
        assert entry["edge_width"] == pytest.approx(edge_width(sr, to_float(hr), 2, "benchmark"), abs=1e-12)
        assert entry["edge_slope"] == pytest.approx(edge_slope(sr, to_float(hr), 2, "benchmark"), abs=1e-12)
    for key in ("psnr", "ssim", "edge_width", "edge_slope"):
        assert record[key] == pytest.approx(sum(e[key] for e in record["per_image"]) / 3, abs=1e-12)
    assert len({e["psnr"] for e in record["per_image"]}) == 3  # three images, three scores


def test_an_image_without_edges_has_no_edge_width_and_leaves_the_mean(tmp_path: Path) -> None:
    flat = np.full((48, 40, 3), 128, np.uint8)
    dataset = make_dataset(tmp_path, "Mixed", {"edges": synthetic_rgb(48, 40), "flat": flat})
    (record,) = evaluate(["bicubic"], [dataset], [2], progress=False)
    edges, none = record["per_image"]
    assert none["image"] == "flat.png" and none["edge_width"] is None and none["edge_slope"] is None
    assert record["edge_width"] == edges["edge_width"] > 0 and record["edge_slope"] == edges["edge_slope"] > 0
    (only_flat,) = evaluate(["bicubic"], [make_dataset(tmp_path, "Flat", {"flat": flat})], [2], progress=False)
    assert only_flat["edge_width"] is None and only_flat["edge_slope"] is None
    assert json.loads(format_json([only_flat]))[0]["edge_width"] is None


# --- Markdown layouts -------------------------------------------------------------


def test_markdown_benchmark_layout_is_table_3() -> None:
    """Dataset and model rows; in-domain x2-x4 and out-of-domain columns; dataset named once."""
    records = fake_records(["Set5", "Set14"], ["relu", "siren"], [2, 3, 4, 6, 8])
    lines = format_markdown(records).splitlines()
    start = lines.index("| Dataset | Method | In-domain |  |  | Out-of-domain |  |")
    assert lines[start + 1] == "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    assert lines[start + 2] == "|  |  | x2 | x3 | x4 | x6 | x8 |"
    assert lines[start + 3] == "| Set5 | relu | 30.02 | 30.03 | 30.04 | 30.06 | 30.08 |"
    assert lines[start + 4] == "|  | siren | 31.02 | 31.03 | 31.04 | 31.06 | 31.08 |"
    assert lines[start + 5] == "| Set14 | relu | 30.02 | 30.03 | 30.04 | 30.06 | 30.08 |"
    assert lines[start + 6] == "|  | siren | 31.02 | 31.03 | 31.04 | 31.06 | 31.08 |"
    assert any(line.startswith("SSIM") for line in lines)


def test_markdown_div2k_layout_is_table_4() -> None:
    """Model rows and scale columns, one table per DIV2K dataset; missing values left blank."""
    records = fake_records(["DIV2K_valid"], ["relu", "siren"], [2, 3, 4, 6, 12], protocol="div2k")
    records = [r for r in records if not (r["model"] == "siren" and r["scale"] == 12)]
    lines = format_markdown(records).splitlines()
    start = lines.index("| Method | In-domain |  |  | Out-of-domain |  |")
    assert "DIV2K_valid" in lines[start - 2]
    assert lines[start + 2] == "|  | x2 | x3 | x4 | x6 | x12 |"
    assert lines[start + 3] == "| relu | 30.02 | 30.03 | 30.04 | 30.06 | 30.12 |"
    assert lines[start + 4] == "| siren | 31.02 | 31.03 | 31.04 | 31.06 |  |"


def test_markdown_has_an_edge_width_table_where_records_have_edge_widths() -> None:
    lines = format_markdown(fake_records(["Set5"], ["relu", "siren"], [2, 4])).splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Edge width (HR pixels"))
    assert "lower is sharper" in lines[title] and "benchmark protocol" in lines[title]
    assert lines[title + 5 : title + 7] == ["| Set5 | relu | 2.52 | 2.54 |", "|  | siren | 3.52 | 3.54 |"]
    # Reports written before the edge width (tools/results_tables.py reads them) keep two tables.
    old = [{k: v for k, v in r.items() if k not in ("edge_width", "degrade", "edge_slope")} for r in fake_records(["Set5"], ["relu"], [2])]
    assert "Edge width" not in format_markdown(old) and "| Set5 | relu | 30.02 |" in format_markdown(old)


def test_markdown_titles_name_the_degradation() -> None:
    clean = fake_records(["Set5"], ["relu"], [2])
    jpeg = [{**r, "degrade": "jpeg:75", "psnr": 25.0} for r in fake_records(["Set5"], ["relu"], [2])]
    div2k = [{**r, "degrade": "jpeg:75"} for r in fake_records(["DIV2K"], ["relu"], [2], "div2k")]
    text = format_markdown(clean + jpeg + div2k)
    titles = [line for line in text.splitlines() if line.startswith(("PSNR", "SSIM", "Edge"))]
    assert len(titles) == 12 and all(title.endswith("jpeg:75.") for title in titles[4:])
    assert titles[0] == "PSNR (dB), benchmark protocol (Y channel, `scale` border pixels shaved)."
    assert titles[4] == "PSNR (dB), benchmark protocol (Y channel, `scale` border pixels shaved), LR inputs degraded by jpeg:75."
    assert titles[8].startswith("PSNR (dB) on DIV2K, div2k protocol")
    assert "| Set5 | relu | 30.02 |" in text and "| Set5 | relu | 25.00 |" in text  # each in its own table


def test_markdown_layout_follows_each_records_protocol() -> None:
    records = fake_records(["MyPhotos"], ["relu"], [2], protocol="div2k") + fake_records(["Set5"], ["relu"], [2])
    text = format_markdown(records)
    assert "| Method | In-domain |" in text and "PSNR (dB) on MyPhotos, div2k protocol" in text
    assert "| Set5 | relu | 30.02 |" in text and "MyPhotos |" not in text


# --- folder layouts and protocols ---------------------------------------------------


def make_div2k(root: Path, scales: tuple[int, ...] = (2,)) -> Path:
    """DIV2K as `liifsr data download div2k` lays it out: DIV2K/DIV2K_valid_HR, DIV2K_valid_LR_bicubic/X{s}."""
    div2k = root / "DIV2K"
    (div2k / "DIV2K_valid_HR").mkdir(parents=True)
    hr = synthetic_rgb(48, 40)
    Image.fromarray(hr).save(div2k / "DIV2K_valid_HR" / "0801.png")
    for scale in scales:
        folder = div2k / "DIV2K_valid_LR_bicubic" / f"X{scale}"
        folder.mkdir(parents=True)
        lr = imresize_uint8(hr, 1 / scale)[:, ::-1]  # mirrored: proves this file is the one read
        Image.fromarray(np.ascontiguousarray(lr)).save(folder / f"0801x{scale}.png")
    return div2k


def test_protocol_auto_follows_the_layout_and_the_name(tmp_path: Path) -> None:
    div2k = find_dataset(make_div2k(tmp_path))
    assert resolve_protocol("auto", div2k) == ("div2k", "DIV2K folder layout")
    assert resolve_protocol("auto", find_dataset(make_dataset(tmp_path, "DIV2K_valid")))[0] == "div2k"
    assert resolve_protocol("auto", find_dataset(make_dataset(tmp_path, "Set5")))[0] == "benchmark"
    assert resolve_protocol("div2k", find_dataset(tmp_path / "Set5"))[0] == "div2k"
    assert resolve_protocol("benchmark", div2k)[0] == "benchmark"


def test_the_downloaded_div2k_layout_is_read_as_it_is(tmp_path: Path) -> None:
    root = make_div2k(tmp_path)
    for folder in (root, root / "DIV2K_valid_HR"):
        dataset = find_dataset(folder)
        assert dataset.hr_dir == root / "DIV2K_valid_HR" and dataset.lr_dir == root / "DIV2K_valid_LR_bicubic"
    dataset = find_dataset(root)
    hr, lr = make_pair(dataset, dataset.hr_dir / "0801.png", 2)
    assert torch.equal(lr, read_uint8(root / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png"))
    (record,) = evaluate(["bicubic"], [root], [2], progress=False)
    assert record["protocol"] == "div2k" and record["dataset"] == "DIV2K" and record["images"] == 1
    expected = calc_psnr(bicubic_upsample(to_float(lr), (48, 40)), to_float(hr), "div2k", 2)
    assert record["psnr"] == pytest.approx(float(expected), abs=1e-6)


def test_the_download_root_gets_a_hint(tmp_path: Path) -> None:
    make_div2k(tmp_path)
    with pytest.raises(ValueError, match="no HR/ subfolder.*give '.*DIV2K'"):
        find_dataset(tmp_path)


def test_cli_prints_the_protocol_of_each_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    div2k, set5 = make_div2k(tmp_path), make_dataset(tmp_path, "Set5")
    out = tmp_path / "report.json"
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(div2k), str(set5), "--scales", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "DIV2K: div2k protocol (RGB, `scale + 6` border pixels shaved; SSIM on Y) (DIV2K folder layout)" in captured.err
    assert "Set5: benchmark protocol (Y channel, `scale` border pixels shaved)" in captured.err
    assert "PSNR (dB) on DIV2K, div2k protocol" in captured.out and "| Set5 | bicubic |" in captured.out
    assert [r["protocol"] for r in json.loads(out.read_text())] == ["div2k", "benchmark"]
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(set5), "--scales", "2", "--protocol", "div2k", "--quiet"]) == 0
    assert "PSNR (dB) on Set5, div2k protocol" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "2,,3", "2,x", "0", "-2", "2.5", "nan"])
def test_bad_scale_lists_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="scale"):
        parse_scales(text)


def test_scale_list_parses() -> None:
    assert parse_scales("2, 3,4,2,6") == [2.0, 3.0, 4.0, 6.0]


def test_generated_lr_is_matlab_imresize_of_the_modcropped_hr(tmp_path: Path) -> None:
    dataset = find_dataset(make_dataset(tmp_path, images={"odd": synthetic_rgb(50, 43)}))
    hr, lr = make_pair(dataset, dataset.hr_dir / "odd.png", 3)
    assert hr.shape == (3, 48, 42) and lr.shape == (3, 16, 14) and lr.dtype == torch.uint8
    assert torch.equal(lr, imresize_uint8(hr, 1 / 3))
    hr8, lr8 = make_pair(dataset, dataset.hr_dir / "odd.png", 8)  # LIIF's on-the-fly protocol above x4
    assert hr8.shape == (3, 48, 40) and lr8.shape == (3, 6, 5)


def test_lr_bicubic_files_are_used_when_present(tmp_path: Path) -> None:
    hr_pixels = synthetic_rgb(48, 40)
    dataset = make_dataset(tmp_path, images={"0801": hr_pixels})
    generated = evaluate(["bicubic"], [dataset], [2], progress=False)[0]["psnr"]

    # A deliberately different LR (mirrored) in EDSR's naming: 0801.png -> X2/0801x2.png.
    _, lr = make_pair(find_dataset(dataset), dataset / "HR" / "0801.png", 2)
    mirrored = lr.flip(-1).permute(1, 2, 0).numpy()
    (dataset / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(np.ascontiguousarray(mirrored)).save(dataset / "LR_bicubic" / "X2" / "0801x2.png")
    from_file = evaluate(["bicubic"], [dataset], [2], progress=False)[0]["psnr"]

    hr = to_float(read_uint8(dataset / "HR" / "0801.png"))
    expected = calc_psnr(bicubic_upsample(to_float(torch.from_numpy(mirrored).permute(2, 0, 1)), (48, 40)), hr, "benchmark", 2)
    assert from_file == pytest.approx(float(expected), abs=1e-6)
    assert from_file < generated - 3


def test_missing_lr_file_in_an_existing_lr_folder_is_an_error(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    (dataset / "LR_bicubic" / "X2").mkdir(parents=True)
    with pytest.raises(ValueError, match="no LR image for a.png"):
        evaluate(["bicubic"], [dataset], [2], progress=False)


def test_grayscale_hr_is_evaluated_as_rgb(tmp_path: Path) -> None:
    """LIIF converts gray images to RGB (replicated) before taking Y: same result as an RGB copy."""
    gray = synthetic_rgb(48, 40)[..., 0]
    gray_set = tmp_path / "gray"
    (gray_set / "HR").mkdir(parents=True)
    Image.fromarray(gray, mode="L").save(gray_set / "HR" / "bridge.png")
    rgb_set = make_dataset(tmp_path, "rgb", {"bridge": np.repeat(gray[..., None], 3, axis=-1)})
    gray_record, rgb_record = evaluate(["bicubic"], [gray_set, rgb_set], [2], progress=False)
    assert gray_record["images"] == 1
    assert gray_record["psnr"] == pytest.approx(rgb_record["psnr"], abs=1e-9)


def test_models_are_scored_on_the_hr_size(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, images={"a": synthetic_rgb(50, 43)})
    model = tiny_model_file(tmp_path / "tiny.safetensors")
    records = evaluate([str(model), "bicubic"], [dataset], [3, 6], progress=False)
    assert [(r["model"], r["scale"]) for r in records] == [(str(model), 3.0), (str(model), 6.0), ("bicubic", 3.0), ("bicubic", 6.0)]
    assert all(math.isfinite(r["psnr"]) for r in records)


def rgb_psnr_shaved(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
    """PSNR over RGB of float (3, H, W) images in [0, 1], `shave` border pixels dropped: the formula itself."""
    diff = (sr - hr)[:, shave:-shave, shave:-shave].astype(np.float64)
    return float(-10 * np.log10(np.mean(diff**2)))


def test_div2k_layout_with_real_lr_bicubic_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DIV2K as downloaded (DIV2K_valid_HR/, DIV2K_valid_LR_bicubic/X{s}/): the LR files are used,
    the HR is cropped to s times their size, and the div2k protocol (RGB, shave scale + 6) applies."""
    root = tmp_path / "DIV2K"
    (root / "DIV2K_valid_HR").mkdir(parents=True)
    photo = Image.open(sample_image()).convert("RGB")
    hrs = {"0801": photo.crop((100, 40, 194, 140)), "0802": photo.crop((250, 300, 347, 401))}  # 94x100, 97x101
    for stem, hr in hrs.items():
        hr.save(root / "DIV2K_valid_HR" / f"{stem}.png")
        for s in (2, 3):
            # Not MATLAB's imresize, on purpose: the files must be read, not regenerated.
            folder = root / "DIV2K_valid_LR_bicubic" / f"X{s}"
            folder.mkdir(parents=True, exist_ok=True)
            hr.resize((hr.width // s, hr.height // s), Image.Resampling.BOX).save(folder / f"{stem}x{s}.png")

    out = tmp_path / "div2k.json"
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(root), "--scales", "2,3", "--out", str(out), "--quiet"]) == 0
    records = json.loads(out.read_text())
    assert "div2k protocol" in capsys.readouterr().out
    assert [(r["dataset"], r["scale"], r["images"]) for r in records] == [("DIV2K", 2.0, 2), ("DIV2K", 3.0, 2)]
    for record in records:
        s = int(record["scale"])
        values = []
        for stem, hr in hrs.items():
            lr = np.array(Image.open(root / "DIV2K_valid_LR_bicubic" / f"X{s}" / f"{stem}x{s}.png"))
            hr_crop = np.asarray(hr)[: lr.shape[0] * s, : lr.shape[1] * s].transpose(2, 0, 1) / 255
            sr = bicubic_upsample(torch.from_numpy(lr).permute(2, 0, 1).float().div(255).unsqueeze(0), hr_crop.shape[1:])[0].numpy()
            values.append(rgb_psnr_shaved(sr, hr_crop, s + 6))
        assert record["psnr"] == pytest.approx(sum(values) / len(values), abs=1e-4)
    # The HR folder itself names the same set.
    same = evaluate(["bicubic"], [root / "DIV2K_valid_HR"], [2, 3], progress=False)
    assert [r["psnr"] for r in same] == pytest.approx([r["psnr"] for r in records], abs=1e-9)


def test_out_of_domain_scales_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """x6 and x8 through `liifsr evaluate`: LIIF's on-the-fly LR (its own output, from the fixture,
    for x6), the bundled model scored on it, and the model ahead of bicubic out of domain."""
    dataset = tmp_path / "Comic"
    (dataset / "HR").mkdir(parents=True)
    shutil.copy(shared_path("data", "benchmark", "Set14", "HR", "comic.png"), dataset / "HR")
    out = tmp_path / "ood.json"
    argv = ["evaluate", "--model", "bicubic", "--model", DEFAULT_MODEL, "--dataset", str(dataset), "--scales", "6,8"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    assert "| Dataset | Method | Out-of-domain |  |" in capsys.readouterr().out
    scores = {(r["model"], r["scale"]): r["psnr"] for r in json.loads(out.read_text())}
    assert sorted(scores) == [("bicubic", 6.0), ("bicubic", 8.0), (DEFAULT_MODEL, 6.0), (DEFAULT_MODEL, 8.0)]

    cases = np.load(Path(__file__).parents[1] / "fixtures" / "liif-reference" / "cases.npz")
    hr, lr = (torch.from_numpy(cases[f"downsample/6.0/{key}"]).unsqueeze(0) for key in ("hr", "lr"))
    size = (hr.shape[-2], hr.shape[-1])
    assert scores[("bicubic", 6.0)] == pytest.approx(float(calc_psnr(bicubic_upsample(lr, size), hr, "benchmark", 6)), abs=1e-4)
    sr = upscale_tensor(load_model(DEFAULT_MODEL), lr, size)
    assert scores[(DEFAULT_MODEL, 6.0)] == pytest.approx(float(calc_psnr(sr, hr, "benchmark", 6)), abs=1e-4)
    for scale in (6.0, 8.0):
        assert scores[(DEFAULT_MODEL, scale)] > scores[("bicubic", scale)] + 0.3


# --- the published bicubic numbers -------------------------------------------------


def _benchmark(name: str) -> Path:
    return shared_path("data", "benchmark", name, "HR").parent


def test_bicubic_reproduces_the_published_set5_table() -> None:
    records = evaluate(["bicubic"], [_benchmark("Set5")], [2, 3, 4], progress=False)
    assert tuple(r["psnr"] for r in records) == pytest.approx((33.66, 30.39, 28.42), abs=0.03)


def test_bicubic_reproduces_the_published_b100_table() -> None:
    """Through evaluate's own pair-making, bicubic and PSNR; SSIM (the slow part) is left out."""
    dataset = find_dataset(_benchmark("B100"))
    measured = []
    for scale in (2, 3, 4):
        values = []
        for path in hr_images(dataset):
            hr, lr = make_pair(dataset, path, scale)
            pred = bicubic_upsample(to_float(lr), (hr.shape[-2], hr.shape[-1]))
            values.append(float(calc_psnr(pred, to_float(hr), "benchmark", scale)))
        measured.append(sum(values) / len(values))
    assert len(values) == 100
    assert tuple(measured) == pytest.approx((29.56, 27.21, 25.96), abs=0.03)


# --- the bundled models' documented quality -----------------------------------------

# Set5 x4 (benchmark protocol, fp32) of two bundled models, the default and one of the
# paper's, measured with `liifsr evaluate` on the development CPU: (PSNR dB, SSIM).
BUNDLED_SET5_X4 = {"edsr-liif-relu-skip-shared": (31.8960, 0.89210), "edsr-liif-relu": (29.1067, 0.83001)}
README = Path(__file__).resolve().parents[2] / "README.md"
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results.md"


def documented_set5_x4(name: str, document: Path) -> str:
    """The Set5 x4 cell of the model's row in a document's bundled-model table, the one
    headed | Model | Set5 x4 (dB) | ..."""
    lines = document.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| Model | Set5 x4 (dB) |")), None)
    assert start is not None, f"{document.name} has no bundled-model table"
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    row = next((line for line in table if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"{document.name}'s bundled-model table has no row for {name}"
    return row.split("|")[2].strip()


def set5_x4_psnr(model: LIIF, precision: str = "fp32") -> float:
    """Mean Set5 x4 PSNR of a model, straight through upscale_tensor (no load_model, no evaluate)."""
    dataset, values = find_dataset(_benchmark("Set5")), []
    for path in hr_images(dataset):
        hr, lr = make_pair(dataset, path, 4)
        sr = upscale_tensor(model, to_float(lr), (hr.shape[-2], hr.shape[-1]), precision=precision)
        values.append(float(calc_psnr(sr, to_float(hr), "benchmark", 4)))
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def set5_x4_records() -> dict[str, dict]:
    """`evaluate` of every bundled model on Set5 x4, as the README measured them."""
    records = evaluate(sorted(BUNDLED_SET5_X4), [_benchmark("Set5")], [4], progress=False)
    return {record["model"]: record for record in records}


def test_every_bundled_model_states_its_set5_x4_where_users_read_it() -> None:
    """Its metadata (`liifsr models`), the README's model table and docs/results.md agree."""
    assert set(BUNDLED_SET5_X4) <= set(bundled_models())
    for name, path in bundled_models().items():
        psnr = f"{float(read_metadata(path)['set5_x4_psnr']):.2f}"
        assert documented_set5_x4(name, README) == psnr, name
        assert documented_set5_x4(name, RESULTS) == psnr, name


@pytest.mark.parametrize("name", sorted(BUNDLED_SET5_X4))
def test_bundled_model_scores_its_documented_set5_x4(name: str, set5_x4_records: dict[str, dict]) -> None:
    psnr, similarity = BUNDLED_SET5_X4[name]
    record = set5_x4_records[name]
    assert record["images"] == 5
    assert record["psnr"] == pytest.approx(psnr, abs=0.01)
    assert record["ssim"] == pytest.approx(similarity, abs=1e-4)
    assert float(read_metadata(bundled_models()[name])["set5_x4_psnr"]) == pytest.approx(record["psnr"], abs=1e-4)
    assert float(documented_set5_x4(name, RESULTS)) == pytest.approx(record["psnr"], abs=0.01)


def test_fp16_weights_score_as_any_fp32_weights_they_round_from(set5_x4_records: dict[str, dict]) -> None:
    """fp16 storage costs < 0.01 dB: an fp32 model whose weights round to the file's scores the same.

    The fp32 model is built here from the file's tensors (not by load_model), each weight
    moved by up to 0.49 fp16 ULP towards its neighbours: one of the fp32 checkpoints the
    file could have been cast from.
    """
    generator = torch.Generator().manual_seed(0)
    with safe_open(str(bundled_models()[DEFAULT_MODEL]), framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    fp32 = {}
    for key, half in stored.items():
        up = torch.nextafter(half, torch.tensor(math.inf, dtype=half.dtype)).float() - half.float()
        down = half.float() - torch.nextafter(half, torch.tensor(-math.inf, dtype=half.dtype)).float()
        step = (torch.rand(half.shape, generator=generator) * 2 - 1) * 0.49
        fp32[key] = half.float() + torch.where(step > 0, step * up, step * down)
        assert torch.equal(fp32[key].half(), half), key
    model = LIIF(model_preset("edsr-liif-relu-skip")).eval()
    model.load_state_dict(fp32)
    fp16_psnr = set5_x4_records[DEFAULT_MODEL]["psnr"]
    fp32_psnr = set5_x4_psnr(model)
    assert fp32_psnr != fp16_psnr  # the weights differ, and so do the outputs
    assert abs(fp32_psnr - fp16_psnr) < 0.01


def test_bf16_inference_scores_as_fp32(set5_x4_records: dict[str, dict]) -> None:
    bf16 = set5_x4_psnr(load_model(DEFAULT_MODEL), precision="bf16")
    fp32 = set5_x4_records[DEFAULT_MODEL]["psnr"]
    assert bf16 != fp32  # bf16 really ran
    assert abs(bf16 - fp32) < 0.01


# --- command line -----------------------------------------------------------------


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("liifsr: error: "), err
    return err


def test_cli_writes_each_report_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = make_dataset(tmp_path)
    for suffix in (".md", ".csv", ".json"):
        out = tmp_path / f"report{suffix}"
        assert main(["evaluate", "--model", "bicubic", "--dataset", str(dataset), "--scales", "2", "--out", str(out), "--quiet"]) == 0
        assert out.exists()
    assert "| Tiny | bicubic |" in capsys.readouterr().out
    assert json.loads((tmp_path / "report.json").read_text())[0]["dataset"] == "Tiny"
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_cli_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path / "nope")]) == 2
    assert "does not exist" in _error_line(capsys)


def test_cli_dataset_without_hr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path)]) == 2
    assert "no HR/" in _error_line(capsys)


def test_cli_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = make_dataset(tmp_path)
    assert main(["evaluate", "--model", "no-such-model", "--dataset", str(dataset)]) == 2
    assert "unknown model" in _error_line(capsys)


def test_cli_bad_scale_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = make_dataset(tmp_path)
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(dataset), "--scales", "2,x"]) == 2
    assert "scale" in _error_line(capsys)


@pytest.mark.parametrize("out", ["missing-dir/report.json", "report.txt", "."])
def test_cli_unwritable_out_fails_before_evaluating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    dataset = make_dataset(tmp_path)
    monkeypatch.setattr("liifsr.commands.evaluate.evaluate", lambda *a, **k: pytest.fail("evaluated before checking --out"))
    before = set(tmp_path.rglob("*"))
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(dataset), "--out", str(tmp_path / out)]) == 2
    assert "cannot write report" in _error_line(capsys)
    assert set(tmp_path.rglob("*")) == before  # no file left behind


def test_evaluate_needs_models_and_scales(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    with pytest.raises(ValueError, match="model"):
        evaluate([], [dataset], [2], progress=False)
    with pytest.raises(ValueError, match="scale"):
        evaluate(["bicubic"], [dataset], [], progress=False)
    shutil.rmtree(dataset / "HR")
    with pytest.raises(ValueError, match="no HR/"):
        evaluate(["bicubic"], [dataset], [2], progress=False)


def test_datasets_need_distinct_names(tmp_path: Path) -> None:
    first = make_dataset(tmp_path / "a", "Set5")
    second = make_dataset(tmp_path / "b", "Set5")
    with pytest.raises(ValueError, match="distinct folder names"):
        evaluate(["bicubic"], [first, second], [2], progress=False)


def test_bf16_precision_reaches_the_model_and_the_records(tmp_path, monkeypatch) -> None:
    """--precision bf16 runs the model under bf16 autocast and says so in every model record."""
    import liifsr.tiling as tiling

    seen = []
    real = tiling.upscale_tensor
    monkeypatch.setattr(tiling, "upscale_tensor", lambda *a, **k: seen.append(k["precision"]) or real(*a, **k))
    dataset = tmp_path / "Set1" / "HR"
    dataset.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(dataset / "a.png")
    model = str(tiny_model_file(tmp_path / "tiny.safetensors"))
    records = evaluate(["bicubic", model], [tmp_path / "Set1"], [2], precision="bf16", progress=False)
    assert [r["precision"] for r in records] == ["-", "bf16"]
    assert seen == ["bf16"]


def test_spread_subset_spreads_evenly_from_the_first_file() -> None:
    files = [Path(f"img_{i:03d}.png") for i in range(1, 101)]
    picked = spread_subset(files, 20)
    assert [p.name for p in picked[:3]] == ["img_001.png", "img_006.png", "img_011.png"]
    assert len(set(picked)) == 20 and picked[-1].name == "img_096.png"
    assert spread_subset(files, None) == files and spread_subset(files, 500) == files
    with pytest.raises(ValueError, match=">= 1"):
        spread_subset(files, 0)


def test_images_scores_a_named_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = {stem: synthetic_rgb(48, 40, seed) for seed, stem in enumerate("abcd")}
    dataset = make_dataset(tmp_path, "Four", images)
    subset = evaluate(["bicubic"], [dataset], [2], progress=False, images=2)
    assert [(r["dataset"], r["images"]) for r in subset] == [("Four (2 of 4)", 2)]
    # the subset's mean is the mean over images a and c, scored one at a time
    alone = [evaluate(["bicubic"], [make_dataset(tmp_path / s, "One", {s: images[s]})], [2], progress=False)[0]
             for s in "ac"]
    assert subset[0]["psnr"] == pytest.approx((alone[0]["psnr"] + alone[1]["psnr"]) / 2, abs=1e-9)
    assert main(["evaluate", "--model", "bicubic", "--dataset", str(dataset), "--scales", "2", "--images", "0"]) != 0
    assert "--images" in _error_line(capsys)
