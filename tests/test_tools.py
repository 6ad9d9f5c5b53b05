"""The experiment's tools: the results tables and the model shipping facts."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from liifsr.config import to_dict
from liifsr.data import DataConfig, split_paths
from liifsr.training.config import TrainConfig

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


results_tables = load_tool("results_tables")
ship_model = load_tool("ship_model")


def record(model: str, dataset: str, scale: float, psnr: float, protocol: str = "benchmark",
           precision: str = "bf16") -> dict:
    return {"model": model, "dataset": dataset, "protocol": protocol, "precision": precision, "scale": scale,
            "psnr": psnr, "ssim": 0.5, "images": 5, "seconds": 1.0}


def run_file(preset: str, seed: int) -> str:
    return f"/runs/models/{preset}-seed{seed}.safetensors"


def test_run_names_become_the_papers_names() -> None:
    assert results_tables.run_of(run_file("edsrless-liif-siren30", 1)) == ("edsrless-liif-siren30", 1)
    assert results_tables.label(run_file("edsr-liif-siren15", 0)) == "EDSR-LIIF-SIREN-15, seed 0"
    assert results_tables.label("bicubic") == "bicubic"
    assert results_tables.label(run_file("edsr-thermal", 0)) == "EDSR-heat field, seed 0"


def test_the_decoders_beyond_the_paper_follow_its_models_and_have_no_paper_column(tmp_path: Path) -> None:
    records = [record(run_file("edsr-thermal", 0), "Set5", 2.0, 35.0), record(run_file("edsr-lte", 0), "Set5", 2.0, 35.1),
               record("bicubic", "Set5", 2.0, 32.0)]
    text = results_tables.render(records)
    assert "Ours / the paper's" not in text  # no model of the paper's tables was scored
    lines = [line for line in text.split("## Table 3")[1].split("SSIM")[0].splitlines() if "seed 0" in line]
    assert ["EDSR-LTE" in lines[0], "EDSR-heat field" in lines[1]] == [True, True]
    text = results_tables.render(records + [record(run_file("edsr-liif-relu", 0), "Set5", 2.0, 34.0)])
    side = results_tables.first_table(text, "## Ours / the paper's Table 3").splitlines()
    assert [line.split(" | ")[1] for line in side[2:]] == ["EDSR-LIIF-ReLU"]  # only the scored model's row
    assert side[2].split(" | ")[2] == "34.00 / 37.96"


def test_claim_differences_are_ours_and_the_papers() -> None:
    psnr = {("edsr-liif-relu", 0): 30.00, ("edsr-liif-siren30", 0): 30.25, ("edsr-liif-siren15", 0): 29.90,
            ("edsrless-liif-relu", 0): 29.50, ("edsrless-liif-siren30", 0): 29.40,
            ("edsr-liif-relu", 1): 30.10, ("edsr-liif-siren15", 1): 29.85}
    records = [record(run_file(p, s), "Set5", 4.0, v) for (p, s), v in psnr.items()]
    lines = results_tables.differences(records, results_tables.PAPER_TABLE_3, results_tables.PAPER_SCALES_3)
    rows = {line.split(" | ")[1]: line.split(" | ")[2].rstrip(" |") for line in lines[2:]}
    paper = results_tables.PAPER_TABLE_3["Set5"]
    i = results_tables.PAPER_SCALES_3.index(4)
    assert rows["SIREN-30 - ReLU, EDSR"] == f"+0.25 ({paper['edsr-liif-siren30'][i] - paper['edsr-liif-relu'][i]:+.2f})"
    assert rows["SIREN-15 - ReLU, EDSR"] == "-0.10 (+0.02)"  # 32.13 - 32.11 in the paper
    assert rows["EDSR - EDSR-LESS, ReLU"] == "+0.50 (+0.08)"
    assert rows["EDSR - EDSR-LESS, SIREN-30"] == "+0.85 (+0.12)"
    assert rows["seed spread, EDSR-LIIF-ReLU (seed 1 - seed 0)"] == "+0.10"  # the paper has one seed
    assert rows["seed spread, EDSR-LIIF-SIREN-15 (seed 1 - seed 0)"] == "-0.05"


def test_tables_put_bicubic_first_and_check_bf16_against_fp32(tmp_path: Path) -> None:
    reports = {
        "a.json": [record(run_file("edsr-liif-siren15", 0), "Set5", 2.0, 33.0),
                   record(run_file("edsr-liif-relu", 0), "Set5", 2.0, 34.0)],
        "b.json": [record("bicubic", "Set5", 2.0, 32.0, precision="-"),
                   record(run_file("edsr-liif-relu", 0), "Set5", 2.0, 34.004, precision="fp32")],
    }
    for name, records in reports.items():
        (tmp_path / name).write_text(json.dumps(records))
    text = results_tables.render(results_tables.read_records(tmp_path))
    table3 = text.split("## Table 3")[1].split("SSIM")[0]
    order = [line.split(" | ")[1] for line in table3.splitlines() if line.startswith("| ") and " | x" not in line
             and "---" not in line and "Method" not in line]
    assert order == ["bicubic", "EDSR-LIIF-ReLU, seed 0", "EDSR-LIIF-SIREN-15, seed 0"]
    assert "34.00" in table3 and "34.004" not in table3  # the table shows bf16
    assert "| Set5 | EDSR-LIIF-ReLU, seed 0 | -0.0040 |" in text and "Largest difference: 0.0040 dB." in text
    assert "| Set5 | EDSR-LIIF-ReLU | 34.00 / 37.96 |" in text  # ours / the paper's Table 3 at x2
    (tmp_path / "c.json").write_text(json.dumps(reports["a.json"][:1]))
    with pytest.raises(SystemExit, match="repeats"):
        results_tables.read_records(tmp_path)


def write_run(folder: Path, train_dir: Path, epochs_logged: int) -> Path:
    for i in range(12):
        Image.new("RGB", (8, 8)).save(train_dir / f"{i:02d}.png")
    config = TrainConfig(data=DataConfig(train_dirs=[str(train_dir)], val_count=2, repeat=3), epochs=3, batch_size=4,
                         val_scales=[2, 4])
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(config)))
    rows = ["epoch,lr,train_loss,val_psnr,seconds,data_seconds,val_psnr_x2,val_psnr_x4"]
    rows += [f"{e},0.0001,0.1,{26 + e}.5,{30 * e},0.1,{28 + e},{25 + e}" for e in range(1, epochs_logged + 1)]
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_ship_model_facts_come_from_the_run(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    run = write_run(tmp_path / "run", tmp_path / "images", epochs_logged=3)
    facts = ship_model.run_facts(run, "configs/x.yaml", "a test machine")
    # 10 training images x repeat 3 / batch 4 = 7 iterations per epoch; 30 + 60 + 90 s of epochs
    assert facts["training"] == ("configs/x.yaml, seed 0: 21 iterations (3 epochs of 7) at batch 4, fp32, "
                                 "on a test machine, 3 minutes of epochs")
    assert facts["trained_on"] == "images (10 images; 2 held out for validation); clean bicubic LR inputs"
    assert facts["val_psnr"] == "29.5000" and "x2 31.00, x4 28.00 dB" in facts["val_detail"]
    unfinished = write_run(tmp_path / "unfinished", tmp_path / "images", epochs_logged=2)
    with pytest.raises(SystemExit, match="has not finished"):
        ship_model.run_facts(unfinished, "configs/x.yaml", "a test machine")


def test_runs_table_counts_the_logged_epochs(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    write_run(tmp_path / "edsr-liif-relu-seed0", tmp_path / "images", epochs_logged=2)
    lines = results_tables.runs_table(tmp_path)
    # 2 of 3 epochs of 7 iterations; 30 + 60 s of epochs, median 45 s; validated last at epoch 2
    assert lines[2] == "| EDSR-LIIF-ReLU, seed 0 | 2 of 3 | 14 | 2 | 45 | 0.1000 | 30.00 / 27.00 (epoch 2) |"


def test_a_subset_of_urban100_is_set_beside_the_papers_div2k_table(tmp_path: Path) -> None:
    records = [record(run_file("edsr-liif-relu", 0), "Urban100 (5 of 100)", 2.0, 28.35, protocol="div2k"),
               record(run_file("edsrless-liif-relu", 0), "Urban100 (5 of 100)", 2.0, 28.25, protocol="div2k")]
    (tmp_path / "t4.json").write_text(json.dumps(records))
    text = results_tables.render(results_tables.read_records(tmp_path))
    assert "| Urban100 (5 of 100) | EDSR-LIIF-ReLU | 28.35 / 34.62 |" in text
    assert "| Urban100 (5 of 100) | EDSR - EDSR-LESS, ReLU | +0.10 (+0.23) |" in text  # 34.62 - 34.39


def test_into_replaces_only_the_marked_blocks() -> None:
    tables = "## Table 3: benchmark sets\n\nPSNR.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nSSIM\n\n| c |\n"
    document = "Intro.\n<!-- table3 -->\nold table\n<!-- /table3 -->\n<!-- table4 -->\nkept\n<!-- /table4 -->\n"
    filled = results_tables.fill(document, tables)
    assert filled == "Intro.\n<!-- table3 -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /table3 -->\n<!-- table4 -->\nkept\n<!-- /table4 -->\n"
    expected = "<!-- table3 -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /table3 -->"
    assert results_tables.fill("<!-- table3 -->\n<!-- /table3 -->", tables) == expected
    assert results_tables.fill(filled, tables) == filled  # filling again changes nothing


@pytest.mark.parametrize(("name", "models"), [("tables.md", 7), ("decoders-tables.md", 3), ("decoders-skip-tables.md", 1)])
def test_every_model_in_the_committed_table_3_beats_bicubic(name: str, models: int) -> None:
    """docs/results/*tables.md, Table 3 (PSNR): each model row is above bicubic at every scale, on every set."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "results" / name).read_text()
    table = results_tables.first_table(text, "## Table 3: benchmark sets")
    rows = [line.split(" | ") for line in table.splitlines()[3:]]
    bicubic, checked = None, 0
    for cells in rows:
        values = [float(v.strip(" |")) for v in cells[2:]]
        if cells[1] == "bicubic":
            bicubic = values
        else:
            assert all(v > b for v, b in zip(values, bicubic, strict=True)), cells
            checked += 1
    assert checked == 4 * models  # every model on each of the four sets


budget_study = load_tool("budget_study")


def test_budget_study_takes_the_mean_lead_and_half_the_seed_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed, relu, siren in ((0, 30.0, 31.5), (1, 30.2, 31.3)):
        records = [record("bicubic", "Set5", 2.0, 29.0), record(f"/m/edsrless-liif-relu-i1200-seed{seed}.safetensors", "Set5", 2.0, relu),
                   record(f"/m/edsrless-liif-siren30-i1200-seed{seed}.safetensors", "Set5", 2.0, siren)]
        (tmp_path / f"i1200-seed{seed}-set5.json").write_text(json.dumps(records))
    (tmp_path / "i3600-seed0-set5.json").write_text(json.dumps([record("edsrless-liif-relu", "Set5", 2.0, 31.0),
                                                                record("edsrless-liif-siren30", "Set5", 2.0, 31.25)]))
    (tmp_path / "other.json").write_text("[]")  # not a budget report: ignored
    scores = budget_study.read_scores(tmp_path)
    assert budget_study.lead(scores[(1200, "Set5", 2.0)]) == pytest.approx((1.3, 0.2))  # leads 1.5 and 1.1
    table = budget_study.format_table(scores)
    assert table.splitlines() == ["| Dataset | Iterations | x2 |", "|---|---|---:|",  # two budgets: no line
                                  "| Set5 | 1,200 | +1.30 ± 0.20 |", "| Set5 | 3,600 | +0.25 |",
                                  "| Set5 | 600,000 (the paper) | -0.03 |"]  # 37.76 - 37.79
    psnr = budget_study.format_psnr_table(scores, budget_study.read_bicubic(tmp_path)).splitlines()
    assert psnr == ["| Dataset | Iterations | x2: ReLU / SIREN-30 |", "|---|---|---:|", "| Set5 | bicubic | 29.00 |",
                    "| Set5 | 1,200 | 30.10 / 31.40 |", "| Set5 | 3,600 | 31.00 / 31.25 |",  # means over seeds
                    "| Set5 | 600,000 (the paper) | 37.79 / 37.76 |"]
    out = budget_study.plot(scores, tmp_path / "budget.png")
    assert Image.open(out).size[1] > 600  # a lead panel above a PSNR panel
    # --into: the two tables land in their marked blocks, the text around them stays
    document = tmp_path / "results.md"
    document.write_text("A\n<!-- budget-lead -->\nold\n<!-- /budget-lead -->\nB\n<!-- budget-psnr -->\n<!-- /budget-psnr -->\n")
    monkeypatch.setattr(sys, "argv", ["budget_study.py", str(tmp_path), "-o", str(out), "--into", str(document)])
    assert budget_study.main() == 0
    assert document.read_text() == (f"A\n<!-- budget-lead -->\n{table}<!-- /budget-lead -->\nB\n"
                                     f"<!-- budget-psnr -->\n{chr(10).join(psnr)}\n<!-- /budget-psnr -->\n")


def test_budget_study_fits_the_lead_per_tripling_as_weighted_least_squares() -> None:
    """A line in log3(iterations): exact on points on a line; otherwise numpy's weighted
    polyfit, and the slope's deviation is the textbook sigma / sqrt(Sxx). The table gives the
    slope and the largest miss, never the line's value at the paper's budget."""
    on_line = [(1200, 1.0, 2), (3600, 0.7, 1), (10800, 0.4, 1)]
    fit = budget_study.tripling_fit(on_line, noise=0.1)
    assert fit.slope == pytest.approx(-0.3) and fit.at(32400) == pytest.approx(0.1)
    assert fit.largest_miss == pytest.approx(0, abs=1e-12)
    points = [(1200, 1.26, 2), (3600, 0.96, 1), (10800, 0.81, 1)]
    fit = budget_study.tripling_fit(points, noise=0.08)
    xs = np.log([p[0] for p in points]) / np.log(3)
    weights = np.array([p[2] for p in points], dtype=float)
    slope, intercept = np.polyfit(xs, [p[1] for p in points], 1, w=np.sqrt(weights))  # polyfit squares w
    assert fit.slope == pytest.approx(slope) and fit.at(600_000) == pytest.approx(intercept + slope * np.log(600_000) / np.log(3))
    sxx = np.sum(weights * (xs - np.average(xs, weights=weights)) ** 2)
    assert fit.slope_sd == pytest.approx(0.08 / np.sqrt(sxx))
    assert fit.largest_miss == pytest.approx(np.max(np.abs(np.array([p[1] for p in points]) - intercept - slope * xs)))
    with pytest.raises(ValueError, match="two budgets"):
        budget_study.tripling_fit([(1200, 1.0, 1), (1200, 1.1, 1)], noise=0.1)
    # the seed noise: the per-run standard deviation between seeds, pooled over budgets
    by_budget = [{"relu": {0: 30.0, 1: 30.2}, "siren30": {0: 31.5, 1: 31.3}},  # leads 1.5, 1.1
                 {"relu": {0: 31.0}, "siren30": {0: 31.25}}]  # one seed: no information
    assert budget_study.seed_noise(by_budget) == pytest.approx(np.std([1.5, 1.1], ddof=1))
    assert budget_study.seed_noise(by_budget[1:]) is None
    # from reports: three budgets, seeds 0 and 1 at the first
    scores = {(1200, "Set5", 2.0): by_budget[0], (3600, "Set5", 2.0): by_budget[1],
              (10800, "Set5", 2.0): {"relu": {0: 31.5}, "siren30": {0: 31.6}}}
    (fit,) = budget_study.fits(scores).values()
    expected = budget_study.tripling_fit([(1200, 1.3, 2), (3600, 0.25, 1), (10800, 0.1, 1)], np.std([1.5, 1.1], ddof=1))
    assert fit.slope == pytest.approx(expected.slope) and fit.noise == pytest.approx(expected.noise)
    rows = budget_study.format_table(scores).splitlines()[2:]
    assert rows == ["| Set5 | 1,200 | +1.30 ± 0.20 |", "| Set5 | 3,600 | +0.25 |", "| Set5 | 10,800 | +0.10 |",
                    f"| Set5 | dB per tripling (the line) | {fit.slope:+.2f} ± {fit.slope_sd:.2f} |",
                    f"| Set5 | the line's largest miss (seed SD) | {fit.largest_miss:.2f} ({fit.noise:.2f}) |",
                    "| Set5 | 600,000 (the paper) | -0.03 |"]  # the line is not carried to 600,000
    assert budget_study.fits({k: v for k, v in scores.items() if k[0] != 10800}) == {}  # two budgets: no fit


def test_photo_table_lays_out_models_by_degradation_and_scale(tmp_path):
    photo_table = load_tool("photo_table")
    reports = []
    for spec, offset in (("clean", 0.0), ("jpeg:75", -2.0)):
        records = [{**record(model, "Set14", scale, 30 - scale + offset + bonus), "degrade": spec}
                   for model, bonus in (("bicubic", 0.0), ("edsr-thermal-photo", 1.5)) for scale in (2.0, 4.0)]
        reports.append(tmp_path / f"{spec}.json")
        reports[-1].write_text(json.dumps(records))
    table = photo_table.photo_table(photo_table.read_records(reports)).splitlines()
    assert table[0] == "| dataset | model | clean x2 | clean x4 | jpeg:75 x2 | jpeg:75 x4 |"
    assert table[2] == "| Set14 | bicubic | 28.00 | 26.00 | 26.00 | 24.00 |"
    assert table[3] == "| Set14 | `edsr-thermal-photo` | 29.50 | 27.50 | 27.50 | 25.50 |"


def test_precision_change_is_bf16_minus_fp32_and_names_models_above_the_line() -> None:
    precision_change = load_tool("precision_change")
    fp32 = [record(model, dataset, scale, 30.0, precision="fp32")
            for model in ("a", "b") for dataset in ("Set5", "Set14") for scale in (2.0, 8.0)]
    bf16 = [{**r, "precision": "bf16", "psnr": r["psnr"] + (0.004 if r["model"] == "a" else -0.02 * (r["scale"] == 8.0))}
            for r in fp32]
    table, above = precision_change.change_table(fp32, bf16)
    lines = table.splitlines()
    assert lines[0] == "| model | Set5 x2 | Set5 x8 | Set14 x2 | Set14 x8 | largest magnitude |"
    assert lines[2] == "| `a` | +0.0040 | +0.0040 | +0.0040 | +0.0040 | 0.0040 |"
    assert lines[3] == "| `b` | +0.0000 | -0.0200 | +0.0000 | -0.0200 | 0.0200 |"
    assert above == ["b"]
    with pytest.raises(SystemExit, match="differ"):
        precision_change.change_table(fp32, bf16[1:])


def test_recipe_table_ranks_arms_by_their_last_held_out_score(tmp_path: Path) -> None:
    recipe_table = load_tool("recipe_table")
    (tmp_path / "images").mkdir()
    runs = {"short": write_run(tmp_path / "short", tmp_path / "images", epochs_logged=2),
            "long": write_run(tmp_path / "long", tmp_path / "images", epochs_logged=3)}
    lines = recipe_table.recipe_table({name: recipe_table.read_run(path) for name, path in runs.items()}).splitlines()
    assert lines[0] == "| arm | recipe | held-out (dB) | held-out x2 | held-out x4 | iterations | s per epoch | minutes |"
    # 3 epochs of 7 iterations; epochs of 30, 60 and 90 s; the last validation 29.5 (x2 31, x4 28)
    assert lines[2] == ("| long | Adam 0.0001, x0.5 at epochs 200, 400, 600, 800; batch 4, 48 px patches "
                        "| 29.50 | 31.00 | 28.00 | 21 | 60 | 3 |")
    assert lines[3].startswith("| short | ") and "| 28.50 | 30.00 | 27.00 | 14 |" in lines[3]


def per_image_record(model: str, dataset: str, scale: float, psnr: list[float], widths: list[float | None],
                     protocol: str = "benchmark", slopes: list[float] | None = None) -> dict:
    images = [{"image": f"img{i}.png", "psnr": p, "ssim": 0.5, "edge_width": w,
               **({} if slopes is None else {"edge_slope": slopes[i]})}
              for i, (p, w) in enumerate(zip(psnr, widths))]
    return {**record(model, dataset, scale, sum(psnr) / len(psnr), protocol,
                     "-" if model == "bicubic" else "bf16"), "per_image": images}


def test_claims_table_sets_each_difference_beside_its_interval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    claims_table = load_tool("claims_table")
    from liifsr.evaluation.paired import paired_stats

    records = [
        per_image_record("relu", "Set5", 2.0, [30.0, 31.0, 33.0], [3.0, 4.0, 5.0]),
        per_image_record("siren", "Set5", 2.0, [30.5, 31.5, 33.5], [2.0, 3.5, None]),  # B - A: +0.5 on each image
        per_image_record("bicubic", "Urban100 (2 of 100)", 30.0, [16.0, 17.0], [180.0, 60.0], "div2k", [0.2, 0.3]),
        per_image_record("relu", "Urban100 (2 of 100)", 30.0, [16.2, 17.1], [180.0, 44.0], "div2k",  # 180: lost at x30
                         [0.25, 0.35]),
        per_image_record("siren", "Urban100 (2 of 100)", 30.0, [16.5, 17.2], [36.0, 42.0], "div2k", [0.4, 0.5]),
        per_image_record("relu", "Urban100 (2 of 100)", 12.0, [19.0, 20.0], [9.0, 9.0], "div2k"),
        per_image_record("siren", "Urban100 (2 of 100)", 12.0, [19.4, 20.0], [8.0, 9.0], "div2k"),
    ]
    tables = claims_table.claims_tables(records, [("SIREN - ReLU", "relu", "siren")],
                                        [("SIREN - ReLU", "relu", "siren")], [4.0, 30.0], resamples=500)
    assert list(tables) == ["claims-intervals-benchmark", "claims-intervals-div2k", "claims-edge"]
    assert tables["claims-intervals-benchmark"].splitlines() == [
        "| Dataset | Difference | x2 |", "| --- | --- | ---: |", "| Set5 | SIREN - ReLU | +0.50 [+0.50, +0.50] |"]
    div2k = tables["claims-intervals-div2k"].splitlines()
    assert div2k[0] == "| Dataset | Difference | x12 | x30 |"
    # the same estimate and interval as tools/paired_stats.py's (same function, seed, resamples)
    _, rows, _ = paired_stats(records, ["relu"], ["siren"], "psnr", 500, 0)
    x12, x30 = (next(d for d in rows if d.cell.scale == scale) for scale in (12.0, 30.0))
    assert (x12.estimate, x30.estimate) == (pytest.approx(0.2), pytest.approx(0.2))  # +0.4, 0 and +0.3, +0.1
    assert claims_table.interval_text(x30) == f"+0.20 [{x30.low:+.2f}, {x30.high:+.2f}]"
    assert div2k[2] == (f"| Urban100 (2 of 100) | SIREN - ReLU | {claims_table.interval_text(x12)} | "
                        f"{claims_table.interval_text(x30)} |")
    # the edge table: x30 only (no cell at x4); bicubic's, A's and B's mean widths, how many images score
    # the lost-edge width (2 x 90 at x30), the width's difference, the mean slopes and their difference, PSNR's
    _, edge_rows, _ = paired_stats(records, ["relu"], ["siren"], "edge_width", 500, 0)
    edge_x30 = next(d for d in edge_rows if d.cell == x30.cell)
    assert edge_x30.estimate == pytest.approx(-73.0)  # -144 and -2
    _, slope_rows, _ = paired_stats(records, ["relu"], ["siren"], "edge_slope", 500, 0)
    (slope_x30,) = slope_rows  # only the x30 records have slopes
    assert slope_x30.estimate == pytest.approx(0.15)
    assert tables["claims-edge"].splitlines()[2:] == [
        (f"| Urban100 (2 of 100), div2k protocol | x30 | SIREN - ReLU | 120.00 / 112.00 / 39.00 | 1 / 1 / 0 of 2 | "
         f"{claims_table.interval_text(edge_x30)} | 0.2500 / 0.3000 / 0.4500 | {claims_table.interval_text(slope_x30, 4)} | "
         f"{claims_table.interval_text(x30)} |")]
    # --into fills the marked blocks only; -o gets the same tables
    (tmp_path / "r.json").write_text(json.dumps(records))
    document = tmp_path / "results.md"
    document.write_text("A\n<!-- claims-edge -->\nold\n<!-- /claims-edge -->\nB\n")
    args = [str(tmp_path / "r.json"), "--pair", "SIREN - ReLU", "relu", "siren", "--edge-pair", "SIREN - ReLU", "relu",
            "siren", "--resamples", "500", "-o", str(tmp_path / "claims.md"), "--into", str(document)]
    assert claims_table.main(args) == 0
    assert document.read_text() == f"A\n<!-- claims-edge -->\n{tables['claims-edge']}<!-- /claims-edge -->\nB\n"
    assert tables["claims-intervals-div2k"] in (tmp_path / "claims.md").read_text()
    # bad input: one line naming the problem, exit 2, nothing written
    capsys.readouterr()
    assert claims_table.main([str(tmp_path / "r.json"), "--pair", "x", "relu", "lte", "-o", str(tmp_path / "bad.md")]) == 2
    assert "no model 'lte'" in capsys.readouterr().err and not (tmp_path / "bad.md").exists()
    assert claims_table.main([str(tmp_path / "r.json")]) == 2
    assert "no pairs" in capsys.readouterr().err


def test_recipe_control_table_picks_each_decoders_best_rate_and_pools_its_seeds(tmp_path: Path) -> None:
    recipe_control_table = load_tool("recipe_control_table")
    (tmp_path / "images").mkdir()
    (tmp_path / "eval").mkdir()
    held_out = {("edsrless-liif-relu", "1e-4", 0): (28.0, 24.0), ("edsrless-liif-relu", "4e-4", 0): (29.0, 25.0),
                ("edsrless-liif-siren30", "1e-4", 0): (29.5, 25.5), ("edsrless-liif-siren30", "4e-4", 0): (30.0, 26.0),
                ("edsrless-liif-siren30", "4e-4", 1): (30.2, 26.2)}
    set5 = {("edsrless-liif-relu", "4e-4", 0): [30.0, 32.0, 28.0], ("edsrless-liif-relu", "1e-4", 0): [29.0, 31.0, 27.0],
            ("edsrless-liif-siren30", "4e-4", 0): [31.0, 32.5, 29.0], ("edsrless-liif-siren30", "4e-4", 1): [31.5, 33.0, 28.5]}
    for (preset, rate, seed), (x2, x4) in held_out.items():
        run = write_run(tmp_path / f"{preset}-lr{rate}-seed{seed}", tmp_path / "images", epochs_logged=3)
        rows = ["epoch,lr,train_loss,val_psnr,seconds,data_seconds,val_psnr_x2,val_psnr_x4"]
        rows += [f"{e},0.0001,0.1,{(x2 + x4) / 2 - 3 + e},30,0.1,{x2 - 3 + e},{x4 - 3 + e}" for e in (1, 2, 3)]
        (run / "log.csv").write_text("\n".join(rows) + "\n")
        if (preset, rate, seed) in set5:
            report = [per_image_record(str(run / "last.safetensors"), "Set5", 4.0, set5[(preset, rate, seed)], [None] * 3)]
            (tmp_path / "eval" / f"set5-{run.name}.json").write_text(json.dumps(report))
    write_run(tmp_path / "edsrless-liif-relu-lr1e-3-seed0", tmp_path / "images", epochs_logged=2)  # unfinished

    lines = recipe_control_table.control_table(tmp_path, resamples=200).splitlines()
    assert lines[0] == ("| dataset | scale | ReLU, 1e-4 | ReLU, 4e-4 | SIREN-30, 1e-4 | SIREN-30, 4e-4 "
                        "| ReLU, 4e-4, seed 0 | SIREN-30, 4e-4, mean of seeds 0, 1 "
                        "| lead, SIREN-30 4e-4 - ReLU 4e-4 [95 %] |")
    # the grid is seed 0's (the rates were chosen on it); the lead is between the best rates' seed means
    assert lines[2] == "| held-out (2 images) | x2 | 28.00 | **29.00** | 29.50 | **30.00** | 29.00 | 30.10 | +1.10 |"
    assert lines[3] == "| held-out (2 images) | x4 | 24.00 | **25.00** | 25.50 | **26.00** | 25.00 | 26.10 | +1.10 |"
    # SIREN-30 at 4e-4 has two seeds: per image, their mean minus ReLU's: +1.25, +0.75, +0.75
    set5_row = lines[4].split(" | ")
    assert set5_row[:8] == ["| Set5", "x4", "29.00", "**30.00**", "-", "**30.83**", "30.00", "30.92"]
    assert set5_row[8].startswith("+0.92 [") and set5_row[8].endswith(", seeds 1 / 2 |")
    # the reports name the model files as the folder was spelled then; another spelling finds them too
    assert recipe_control_table.control_table(tmp_path / "eval" / "..", resamples=200).splitlines() == lines


def test_link_heldout_links_the_configs_held_out_images_once(tmp_path: Path) -> None:
    link_heldout = load_tool("link_heldout")
    (tmp_path / "images").mkdir()
    run = write_run(tmp_path / "run", tmp_path / "images", epochs_logged=1)  # 12 images, 2 held out
    moved = tmp_path / "copy" / "images"
    moved.parent.mkdir()
    (tmp_path / "images").rename(moved)
    assert link_heldout.main([str(run / "config.yaml"), str(tmp_path / "HR"), "--train-dirs", str(moved)]) == 0
    config = TrainConfig(data=DataConfig(train_dirs=[str(moved)], val_count=2))
    held_out = split_paths(config.data)[1]
    links = sorted((tmp_path / "HR").iterdir())
    assert len(held_out) == 2 and [p.name for p in links] == sorted(f"images-{p.name}" for p in held_out)
    assert all(p.is_symlink() and p.resolve().parent == moved.resolve() for p in links)
    assert link_heldout.main([str(run / "config.yaml"), str(tmp_path / "HR"), "--train-dirs", str(moved)]) == 0
    assert sorted((tmp_path / "HR").iterdir()) == links


def test_claims_table_pools_a_sides_seeds(tmp_path: Path) -> None:
    claims_table = load_tool("claims_table")
    records = [per_image_record("relu", "Set5", 4.0, [30.0, 31.0], [4.0, 30.0], slopes=[0.2, 0.1]),  # 30: lost at x4
               per_image_record("siren-s0", "Set5", 4.0, [30.5, 31.0], [3.0, 5.0], slopes=[0.3, 0.2]),
               per_image_record("siren-s1", "Set5", 4.0, [30.1, 31.4], [3.5, 24.0], slopes=[0.3, 0.1])]
    tables = claims_table.claims_tables(records, [], [("SIREN - ReLU", "relu", "siren-s0, siren-s1")], [4.0],
                                        resamples=300)
    (row,) = tables["claims-edge"].splitlines()[2:]
    cells = row.split(" | ")
    # B's mean width over its seeds and images: (3 + 5 + 3.5 + 24) / 4; PSNR per image: +0.3, +0.2
    assert cells[3:5] == ["- / 17.00 / 8.88", "- / 1 / (0, 1) of 2"]
    assert cells[5].startswith("-8.12 [") and cells[-1].startswith("+0.25 [")
    with pytest.raises(ValueError, match="no model 'siren-s2'"):
        claims_table.claims_tables(records, [], [("x", "relu", "siren-s0,siren-s2")], [4.0], resamples=10)
