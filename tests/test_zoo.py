"""`liifsr.zoo`: the bundled models by name, their aliases and cards, and `load_model`'s
refusals. Cheap by design: cards are read from the files' headers, and only the smallest
bundled model is loaded."""

from __future__ import annotations

import json

import pytest
import torch

from liifsr.checkpoint import CheckpointError, read_metadata
from liifsr.config import to_dict
from liifsr.models import MODEL_PRESETS, ModelConfig, build_model
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIFConfig
from liifsr.zoo import (
    ALIASES,
    BUNDLED_PRESETS,
    DEFAULT_MODEL,
    LICENCE,
    PHOTO_MODEL,
    bundled_models,
    bundled_preset,
    card_from_metadata,
    list_models,
    load_model,
    model_hint,
)

BUNDLED = bundled_models()


def test_the_bundled_models_are_the_safetensors_files_by_stem():
    assert len(BUNDLED) >= 2
    for name, path in BUNDLED.items():
        assert path.is_file() and path.suffix == ".safetensors" and path.stem == name, (name, path)
        assert path.parent.name == "weights" and path.parent.parent.name == "liifsr"


def test_the_default_and_the_photo_model_are_bundled_and_aliased():
    assert DEFAULT_MODEL in BUNDLED and PHOTO_MODEL in BUNDLED and DEFAULT_MODEL != PHOTO_MODEL
    assert ALIASES == {"default": DEFAULT_MODEL, "photo": PHOTO_MODEL}
    # An alias must not shadow a bundled model or a preset: the three share one namespace.
    assert not set(ALIASES) & (set(BUNDLED) | set(MODEL_PRESETS))


def test_a_bundled_model_names_its_preset_unless_it_is_one():
    assert bundled_preset("edsr-liif-relu") == "edsr-liif-relu"  # named as its preset
    assert bundled_preset(PHOTO_MODEL) == "edsr-thermal"
    assert bundled_preset("not-bundled") == "not-bundled"
    for name in BUNDLED:
        assert bundled_preset(name) in MODEL_PRESETS, name
    assert set(BUNDLED_PRESETS) <= set(BUNDLED)


def test_every_bundled_model_has_a_card_read_from_its_header():
    """`list_models` reads each file's metadata and counts parameters on the meta device: the
    same cards `liifsr models` prints, without loading a weight."""
    cards = list_models()
    assert [card.name for card in cards] == sorted(BUNDLED)
    for card in cards:
        assert card.path == BUNDLED[card.name] and card.preset == bundled_preset(card.name)
        assert card.parameters > 0 and card.architecture and card.metrics, card.name
        assert card.data != "unknown" and card.recipe != "unknown", card.name
        lines = card.lines()
        assert all(line and "\n" not in line for line in lines), card.name
        assert lines[0] == f"architecture: {card.architecture}" and lines[-1].startswith("licence: ")
        assert f"parameters: {card.parameters:,}" in lines and any(line.startswith("precisions: fp32, bf16, fp16") for line in lines)


def test_the_card_says_which_bundled_model_auto_keeps_in_fp32():
    """Its file's `auto_precisions` metadata (README, "Which precision": bf16 moved it by more
    than 0.01 dB), and no other bundled model's."""
    cards = {card.name: card for card in list_models()}
    assert cards["edsrless-liif-relu"].auto_precisions == ("fp32",)
    assert "precisions: fp32, bf16, fp16 (auto picks fp32)" in cards["edsrless-liif-relu"].lines()
    assert [name for name, card in cards.items() if card.auto_precisions != card.precisions] == ["edsrless-liif-relu"]


def test_the_smallest_bundled_model_loads_as_its_card_says():
    name = min(BUNDLED, key=lambda n: BUNDLED[n].stat().st_size)
    (card,) = [card for card in list_models() if card.name == name]
    model = load_model(name)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert model.num_parameters() == card.parameters
    assert model.config.describe() == card.architecture


def test_an_alias_loads_the_model_it_names(monkeypatch):
    import liifsr.zoo as zoo

    opened = []
    monkeypatch.setattr(zoo, "load_model_file", lambda path: opened.append(path) or torch.nn.Identity())
    for alias, name in ALIASES.items():
        load_model(alias)
        assert opened[-1] == BUNDLED[name], alias
    load_model()
    assert opened[-1] == BUNDLED[DEFAULT_MODEL]


@pytest.mark.parametrize("name", ["edsr-liif-rel", "Default", "photo.safetensors"])
def test_an_unknown_name_is_one_line_listing_every_known_name(name):
    with pytest.raises(CheckpointError) as caught:
        load_model(name)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"unknown model {name!r}: not a bundled model (")
    assert message.endswith(") nor an existing file")
    listed = message.split("(", 1)[1].rsplit(")", 1)[0].split(", ")
    assert listed == sorted(BUNDLED) + sorted(ALIASES)


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path)
    assert str(caught.value) == f"model path {str(tmp_path)!r} is a directory (give a .safetensors or .pth file)"


def test_the_hint_of_every_model_is_one_line_and_names_the_other_choice():
    for name in [*BUNDLED, *ALIASES, "some/file.safetensors", ""]:
        hint = model_hint(name)
        assert isinstance(hint, str) and "\n" not in hint, name
    for name in (DEFAULT_MODEL, "default"):
        assert model_hint(name) == "for clean images; for JPEG, noisy or blurred photographs use --model photo"
    for name in (PHOTO_MODEL, "photo"):
        assert model_hint(name) == "for JPEG, noisy or blurred photographs; for clean images use --model default"
    # The two choices' hints point at each other; every other model has none.
    assert all(model_hint(name) == "" for name in BUNDLED if name not in ALIASES.values())


# --- cards from metadata ----------------------------------------------------------------


def tiny_config_json() -> str:
    return json.dumps(to_dict(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8]))))


def test_a_card_reads_its_metrics_and_counts_parameters_from_the_config():
    metrics = [{"dataset": "Set5", "scale": "x4", "protocol": "Y channel", "psnr": 30.125},
               {"dataset": "Urban100", "scale": "x2", "protocol": "RGB", "psnr": 29.0}]
    meta = {"liifsr_config": tiny_config_json(), "metrics": json.dumps(metrics), "training": "3 iterations",
            "trained_on": "nothing", "licence": "CC0"}
    card = card_from_metadata("tiny", meta, preset="edsr-liif-relu")
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8]))
    assert card.parameters == build_model(config).num_parameters()
    assert [(m.dataset, m.scale, m.protocol, m.psnr) for m in card.metrics] == [tuple(m.values()) for m in metrics]
    assert card.lines() == [f"architecture: {config.describe()}", "preset: edsr-liif-relu", f"parameters: {card.parameters:,}",
                            "trained on: nothing", "training: 3 iterations", "Set5 x4: 30.12 dB (Y channel)",
                            "Urban100 x2: 29.00 dB (RGB)", "precisions: fp32, bf16, fp16", "licence: CC0"]


def test_a_card_reads_the_older_metric_keys_and_defaults_the_rest():
    meta = {"liifsr_config": tiny_config_json(), "set5_x4_psnr": "31.5", "val_psnr": "28.25", "val_detail": "10 images"}
    card = card_from_metadata("old", meta)
    assert [(m.dataset, m.scale, m.protocol, m.psnr) for m in card.metrics] == [
        ("Set5", "x4", "Y channel, shave = scale", 31.5), ("held-out validation", "x2 and x4", "10 images", 28.25)]
    assert (card.recipe, card.data, card.licence, card.preset) == ("unknown", "unknown", LICENCE, None)
    assert not any(line.startswith("preset:") for line in card.lines())


def test_a_card_without_a_config_is_refused_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"model file '.*lost.safetensors' has no liifsr config"):
        card_from_metadata("lost", {"training": "x"}, tmp_path / "lost.safetensors")


def test_the_default_model_s_card_is_its_file_s_metadata():
    card = card_from_metadata(DEFAULT_MODEL, read_metadata(BUNDLED[DEFAULT_MODEL]), BUNDLED[DEFAULT_MODEL])
    assert card.parameters == 1_567_299 and card.licence == LICENCE
