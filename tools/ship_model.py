"""Bundle a finished training run into the package as an fp16 model (src/liifsr/weights/).

    python tools/ship_model.py RUN_DIR NAME [--hardware TEXT] [--set5 DIR] [--auto-precisions fp32]

The file holds the run's `last.safetensors` cast to fp16 (the reported checkpoint, as in
docs/results.md), and in its metadata the facts `liifsr models` lists (see
`liifsr.checkpoint.MODEL_FACTS`): the training run (config, seed, iterations, precision,
hardware, time), its data, its held-out validation PSNR (the last row of `log.csv`) and
its Set5 x4 PSNR, measured here on the fp16 file itself (benchmark protocol, fp32).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from liifsr.checkpoint import AUTO_PRECISIONS_KEY, read_metadata, save_model
from liifsr.evaluation.loop import evaluate
from liifsr.training.runlog import read_run
from liifsr.zoo import bundled_models, load_model

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "liifsr" / "weights"
DEV_CPU = "the 2-core development CPU (AVX-512 + AMX)"


def run_facts(run: Path, config_file: str, hardware: str) -> dict[str, str]:
    """The training facts of a finished run, from its config.yaml and log.csv."""
    record = read_run(run)
    config, per_epoch = record.config, record.iterations_per_epoch
    if not record.finished:
        raise SystemExit(f"ship_model: {run} has not finished ({len(record.rows)} of {config.epochs} epochs logged)")
    folders = " + ".join(Path(d).name for d in config.data.train_dirs)
    last = record.rows[-1]
    scales = ", ".join(f"x{s} {float(last[f'val_psnr_x{s}']):.2f}" for s in config.val_scales)
    return {
        "training": f"{config_file}, seed {config.seed}: {config.epochs * per_epoch:,} iterations ({config.epochs} epochs of "
                    f"{per_epoch}) at batch {config.batch_size}, {config.precision}, on {hardware}, "
                    f"{record.minutes:.0f} minutes of epochs",
        "trained_on": f"{folders} ({record.train_images} images; {record.val_images} held out for validation); "
                      f"{config.data.degrade.describe()}",
        "val_psnr": f"{float(last['val_psnr']):.4f}",
        "val_detail": f"mean RGB PSNR of the {record.val_images} held-out images ({scales} dB; centre "
                      f"{config.data.val_max_size} px crops, shave = scale)",
    }


def set5_x4(path: Path, set5: Path) -> float:
    (record,) = evaluate([str(path)], [set5], [4.0], progress=False)
    return record["psnr"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder of `liifsr train`")
    parser.add_argument("name", help="the bundled name (the model's preset name)")
    parser.add_argument("--config", help="the config the run trained with (default: configs/experiment/NAME.yaml)")
    parser.add_argument("--hardware", default=DEV_CPU, help=f"where it trained (default: {DEV_CPU})")
    parser.add_argument("--set5", type=Path, default=Path("../shared/data/benchmark/Set5"))
    parser.add_argument("--training", help="the training text, for a model trained in more than one run "
                        "(default: the run's own config, iterations and time)")
    parser.add_argument("--trained-on", help="the data text, for a model trained in more than one run (default: the "
                        "run's own data and degradations)")
    parser.add_argument("--auto-precisions", help="what `--precision auto` may pick for it, e.g. fp32 for a model whose "
                        "PSNR bf16 moves by more than 0.01 dB (README, 'Which precision'; default: any)")
    args = parser.parse_args()
    facts = run_facts(args.run, args.config or f"configs/experiment/{args.name}.yaml", args.hardware)
    if args.training:
        facts["training"] = args.training
    if args.trained_on:
        facts["trained_on"] = args.trained_on
    if args.auto_precisions:
        facts[AUTO_PRECISIONS_KEY] = args.auto_precisions
    target = WEIGHTS / f"{args.name}.safetensors"
    model = load_model(args.run / "last.safetensors")
    save_model(model, target, dtype=torch.float16, metadata=facts)
    facts["set5_x4_psnr"] = f"{set5_x4(target, args.set5):.4f}"
    save_model(load_model(target), target, dtype=torch.float16, metadata=facts)  # fp16 -> fp32 -> fp16 is exact
    assert args.name in bundled_models() and read_metadata(target)["set5_x4_psnr"] == facts["set5_x4_psnr"]
    print(f"{target}: {target.stat().st_size / 2**20:.2f} MiB; " + "; ".join(f"{k}: {v}" for k, v in facts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
