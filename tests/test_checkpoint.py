import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from conftest import FIXTURES
from liifsr.checkpoint import DEFAULT_MODEL, CheckpointError, bundled_models, convert_liif, load_model, read_metadata, save_model
from liifsr.config import DecoderConfig, EncoderConfig, ModelConfig, model_preset, to_dict
from liifsr.liif import LIIF


def small_model(activation="sine") -> LIIF:
    torch.manual_seed(0)
    config = ModelConfig(EncoderConfig("edsr", n_resblocks=1, n_feats=8), DecoderConfig(activation, hidden=[16], w0_first=15.0))
    return LIIF(config)


def test_round_trip_keeps_weights_and_config(tmp_path):
    model = small_model()
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert json.loads(read_metadata(tmp_path / "m.safetensors")["liifsr_config"]) == to_dict(model.config)


def test_fp16_file_is_half_the_size_and_loads_as_float32(tmp_path):
    model = LIIF(model_preset("edsr-liif-relu"))
    save_model(model, tmp_path / "half.safetensors", dtype=torch.float16)
    size = (tmp_path / "half.safetensors").stat().st_size
    assert size < 4_000_000 and size > 2 * model.num_parameters()
    loaded = load_model(tmp_path / "half.safetensors")
    assert next(loaded.parameters()).dtype == torch.float32


def test_convert_official_checkpoint_matches_direct_load(tmp_path, cases):
    convert_liif(FIXTURES / "tiny-full.pth", tmp_path / "tiny.safetensors")
    inp, coord, cell = (torch.from_numpy(cases[k]) for k in ("inp", "coord", "cell"))
    with torch.no_grad():
        a = load_model(FIXTURES / "tiny-full.pth")(inp, coord, cell)
        b = load_model(tmp_path / "tiny.safetensors")(inp, coord, cell)
    assert torch.equal(a, b)
    assert (a - torch.from_numpy(cases["tiny-full/pred"])).abs().max() <= 1e-5


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="unknown model 'no-such-name'"):
        load_model("no-such-name")
    corrupt = tmp_path / "corrupt.safetensors"
    save_model(small_model(), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(corrupt)
    bad_pth = tmp_path / "bad.pth"
    bad_pth.write_bytes((FIXTURES / "tiny-full.pth").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cannot read LIIF checkpoint"):
        load_model(bad_pth)


def test_weights_that_do_not_fit_the_config_are_rejected(tmp_path):
    from safetensors.torch import save_file

    model = small_model()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["imnet.layers.0.weight"] = state["imnet.layers.0.weight"][:, :10].contiguous()
    save_file(state, str(tmp_path / "m.safetensors"), metadata={"liifsr_config": json.dumps(to_dict(model.config))})
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_model(tmp_path / "m.safetensors")


class LeavesMark:
    """Unpickling this calls open(mark, 'w'): the mark file exists if and only if code ran."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self):
        return (open, (str(self.mark), "w"))


def test_pth_loading_never_unpickles_code(tmp_path):
    mark = tmp_path / "executed"
    torch.save({"model": {"name": "liif", "args": LeavesMark(mark), "sd": {}}}, tmp_path / "evil.pth")
    assert not mark.exists()
    try:
        load_model(tmp_path / "evil.pth")
        message = "loaded without an error"
    except Exception as error:  # any outcome: the mark decides first
        message = f"{type(error).__name__}: {error}"
    assert not mark.exists(), "loading a .pth ran pickled code"
    assert message.startswith("CheckpointError: cannot read LIIF checkpoint") and "evil.pth" in message, message


def test_bundled_default_model_is_the_documented_fp16_preset():
    assert DEFAULT_MODEL in bundled_models(), "no bundled default model in src/liifsr/weights"
    model = load_model()
    assert model.config == model_preset("edsr-liif-relu-skip")
    assert model.num_parameters() == 1_567_299 and not model.training
    with safe_open(str(bundled_models()[DEFAULT_MODEL]), framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
    assert {tensor.dtype for tensor in stored.values()} == {torch.float16}
    # Loading upcasts: every fp32 weight is exactly the stored fp16 value.
    loaded = model.state_dict()
    assert stored.keys() == loaded.keys()
    for key, value in stored.items():
        assert loaded[key].dtype == torch.float32 and torch.equal(loaded[key], value.float()), key
