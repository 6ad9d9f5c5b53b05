"""Typed configs: every shipped YAML loads and validates; the paper's recipes are the paper's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from liifsr.config import ConfigError, dump_yaml, from_dict, load_yaml, to_dict
from liifsr.models import build_model
from liifsr.training.config import TrainConfig, check_config, resolve_model
from liifsr.training.loop import make_optimizer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(str(path.relative_to(CONFIGS)) for path in CONFIGS.rglob("*.yaml"))

# The paper (Sec. 4.3): Adam at 1e-4 halved every 200 epochs for ReLU and every 120 for
# SIREN over 600 epochs, batch 16, 48 px LR patches, 2,304 queries, scales U(1, 4).
PAPER = {
    "edsr-liif-relu.yaml": ("edsr-liif-relu", 1_567_299, [200, 400]),
    "edsr-liif-siren30.yaml": ("edsr-liif-siren30", 1_567_299, [120, 240, 360, 480]),
    "edsr-liif-siren15.yaml": ("edsr-liif-siren15", 1_567_299, [120, 240, 360, 480]),
    "edsrless-liif-relu.yaml": ("edsrless-liif-relu", 579_235, [200, 400]),
    "edsrless-liif-siren30.yaml": ("edsrless-liif-siren30", 579_235, [120, 240, 360, 480]),
}
# LIIF's own DIV2K recipes: 1,000 epochs halved every 200.
LIIF_RECIPES = {"train_edsr-baseline-liif.yaml": "edsr-liif-relu", "train_rdn-liif.yaml": "rdn-liif-relu"}


def learning_rates(config: TrainConfig) -> list[float]:
    """The learning rate each epoch 1..epochs trains with, from the real optimizer and scheduler."""
    optimizer, scheduler = make_optimizer(nn.Linear(1, 1), config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def halving_epochs(rates: list[float]) -> list[int]:
    """Epochs after which the learning rate halves (lr of epoch e + 1 = lr of epoch e / 2)."""
    for before, after in zip(rates, rates[1:]):
        assert after == pytest.approx(before) or after == pytest.approx(before / 2), (before, after)
    return [epoch for epoch, (before, after) in enumerate(zip(rates, rates[1:]), start=1) if after < before * 0.75]


def test_configs_are_shipped() -> None:
    assert set(PAPER) | set(LIIF_RECIPES) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_loads_and_validates(name: str) -> None:
    config = load_yaml(TrainConfig, CONFIGS / name)
    check_config(config)
    build_model(resolve_model(config))  # the model builds
    assert load_yaml(TrainConfig, CONFIGS / name, [f"epochs={config.epochs}"]) == config
    assert from_dict(TrainConfig, to_dict(config)) == config  # one-to-one with the dataclass
    assert dump_yaml(config).count("\n") > 10


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_configs_give_the_papers_recipe(name: str) -> None:
    preset, parameters, halvings = PAPER[name]
    config = load_yaml(TrainConfig, CONFIGS / name)
    assert config.model == preset
    assert build_model(resolve_model(config)).num_parameters() == parameters
    assert (config.epochs, config.batch_size, config.precision) == (600, 16, "fp32")
    data = config.data
    assert (data.patch_size, data.sample_q, data.scale_min, data.scale_max) == (48, 2304, 1.0, 4.0)
    assert data.augment and data.lr_resize == "pil"  # LIIF's flips/transpose and resize_fn
    optimizer, _ = make_optimizer(nn.Linear(1, 1), config)
    assert type(optimizer) is torch.optim.Adam
    rates = learning_rates(config)
    assert rates[0] == 1e-4
    assert halving_epochs(rates) == halvings
    assert rates[-1] == pytest.approx(1e-4 / 2 ** len(halvings))


@pytest.mark.parametrize("name", sorted(LIIF_RECIPES))
def test_liif_recipes_halve_every_200_of_1000_epochs(name: str) -> None:
    config = load_yaml(TrainConfig, CONFIGS / name)
    assert config.model == LIIF_RECIPES[name] and config.epochs == 1000
    assert (config.batch_size, config.data.patch_size, config.data.sample_q) == (16, 48, 2304)
    rates = learning_rates(config)
    assert rates[0] == 1e-4 and halving_epochs(rates) == [200, 400, 600, 800]


@pytest.mark.parametrize(
    "name,halvings", [("cpu-edsr-liif-relu.yaml", [20, 40]), ("cpu-edsr-liif-siren30.yaml", [12, 24, 36, 48])]
)
def test_cpu_configs_are_the_paper_schedule_over_ten(name: str, halvings: list[int]) -> None:
    config = load_yaml(TrainConfig, CONFIGS / name)
    assert config.epochs == 60 and config.batch_size == 16 and config.data.patch_size == 48
    assert halving_epochs(learning_rates(config)) == halvings


def test_bad_values_in_a_shipped_config_are_caught(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="optim.schedule"):
        check_config(load_yaml(TrainConfig, CONFIGS / "edsr-liif-relu.yaml", ["optim.schedule=linear"]))
    with pytest.raises(ConfigError, match="unknown key"):
        load_yaml(TrainConfig, CONFIGS / "edsr-liif-relu.yaml", ["optim.milstones=[1]"])


@pytest.mark.parametrize("name", list(PAPER))
def test_experiment_configs_share_one_protocol_and_the_papers_halving_fractions(name: str) -> None:
    """configs/experiment: the five models under one protocol (docs/results.md); only the model
    and the schedule differ, and the halvings fall at the paper's fractions of the run."""
    config = load_yaml(TrainConfig, CONFIGS / "experiment" / name)
    reference = load_yaml(TrainConfig, CONFIGS / "experiment" / "edsr-liif-relu.yaml")
    model, _, paper_halvings = PAPER[name]
    assert config.model == model
    assert (config.data, config.batch_size, config.epochs, config.precision, config.seed, config.optim.lr) == (
        reference.data, reference.batch_size, reference.epochs, reference.precision, reference.seed, reference.optim.lr)
    assert config.optim.lr == 1e-4 and config.batch_size == 16 and config.data.sample_q == 2304
    fractions = [epoch / config.epochs for epoch in halving_epochs(learning_rates(config))]
    assert fractions == pytest.approx([epoch / 600 for epoch in paper_halvings])


BUDGETS = {"iters-1200": 20, "iters-10800": 180}


@pytest.mark.parametrize("budget", sorted(BUDGETS))
@pytest.mark.parametrize("name", ["edsrless-liif-relu.yaml", "edsrless-liif-siren30.yaml"])
def test_budget_configs_differ_from_the_experiment_only_in_epochs_and_milestones(budget: str, name: str) -> None:
    """configs/experiment/iters-*: the budget study's runs are the 3,600-iteration protocol
    with another number of epochs and the halvings at the paper's fractions of it (to the
    nearest epoch: 1/3 of 20 epochs is 6.7)."""
    config = load_yaml(TrainConfig, CONFIGS / "experiment" / budget / name)
    reference = load_yaml(TrainConfig, CONFIGS / "experiment" / name)
    assert config.epochs == BUDGETS[budget] != reference.epochs
    same = dataclasses.replace(config, epochs=reference.epochs,
                               optim=dataclasses.replace(config.optim, milestones=reference.optim.milestones))
    assert same == reference  # nothing else differs
    paper_fractions = [epoch / 600 for epoch in PAPER[name][2]]
    halvings = halving_epochs(learning_rates(config))
    assert len(halvings) == len(paper_fractions)
    for epoch, fraction in zip(halvings, paper_fractions):
        assert abs(epoch - fraction * config.epochs) <= 0.5  # the nearest epoch


# The decoders beyond the paper, and the skip control, with the paper's run whose schedule they take.
BEYOND = {
    "edsr-lte.yaml": ("edsr-lte", "edsr-liif-siren30.yaml"),
    "edsr-thermal.yaml": ("edsr-thermal", "edsr-liif-siren30.yaml"),
    "edsr-liif-relu-skip.yaml": ("edsr-liif-relu-skip", "edsr-liif-relu.yaml"),
}


@pytest.mark.parametrize("name", sorted(BEYOND))
def test_decoder_configs_differ_from_a_paper_run_only_in_the_model(name: str) -> None:
    """configs/experiment: LTE and the heat field take the SIREN runs' schedule and the skip
    control the ReLU runs'; the data, budget, batch, precision and seed are the experiment's."""
    model, reference_name = BEYOND[name]
    config = load_yaml(TrainConfig, CONFIGS / "experiment" / name)
    reference = load_yaml(TrainConfig, CONFIGS / "experiment" / reference_name)
    assert config.model == model != reference.model
    assert dataclasses.replace(config, model=reference.model) == reference


def test_the_photo_and_refined_models_train_on_the_clean_heat_field_alike() -> None:
    """Both start from edsr-thermal-clean (configs/default-thermal.yaml) on its data; the
    photo model differs from the refined one only in its degradations and its schedule's
    start and length."""
    default = load_yaml(TrainConfig, CONFIGS / "default-thermal.yaml")
    refined = load_yaml(TrainConfig, CONFIGS / "default-thermal-refine.yaml")
    photo = load_yaml(TrainConfig, CONFIGS / "photo-thermal.yaml")
    assert refined.init_from == photo.init_from == "edsr-thermal-clean" and refined.model == default.model
    assert photo.data.degrade.enabled and not refined.data.degrade.enabled and refined.data == default.data
    assert dataclasses.replace(photo, data=refined.data, optim=dataclasses.replace(photo.optim, lr=refined.optim.lr),
                               epochs=refined.epochs) == refined


def test_the_photo_models_second_stage_trains_the_first_on_with_more_jpeg() -> None:
    """configs/photo-thermal-jpeg.yaml starts from the first stage's run (the README's command
    writes it to runs/photo-thermal) and differs from it only in its degradations and its
    schedule's start and length."""
    first = load_yaml(TrainConfig, CONFIGS / "photo-thermal.yaml")
    second = load_yaml(TrainConfig, CONFIGS / "photo-thermal-jpeg.yaml")
    assert second.init_from == "runs/photo-thermal/last.safetensors"
    assert second.data.degrade.jpeg.prob > first.data.degrade.jpeg.prob
    assert second.data.degrade.blur.prob < first.data.degrade.blur.prob
    assert dataclasses.replace(second, init_from=first.init_from, data=first.data, epochs=first.epochs,
                               optim=dataclasses.replace(second.optim, lr=first.optim.lr)) == first
