"""Model files that lie about their contents are refused before anything is allocated."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from liifsr.checkpoint import CheckpointError, save_model
from liifsr.config import to_dict
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.zoo import load_model


def tiny() -> LIIF:
    torch.manual_seed(0)
    return LIIF(ModelConfig(EDSRConfig(n_resblocks=1, n_feats=4), LIIFConfig(hidden=[8])))


def test_a_config_promising_a_huge_model_fails_before_allocating(tmp_path):
    """hidden=[100000]*3 would need 40 GB: refused under a 2 GB memory cap, from the config's own count
    of parameters; one within the bound that the tensors do not match, from their shapes."""
    model = tiny()
    config = to_dict(model.config)
    config["decoder"]["hidden"] = [100000] * 3
    path = tmp_path / "liar.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"format": "liifsr/1", "liifsr_config": json.dumps(config)})
    code = ("import resource, sys\nfrom liifsr.checkpoint import CheckpointError\nfrom liifsr.zoo import load_model\n"
            "vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + 2 * 2**30, resource.RLIM_INFINITY))\n"
            "try:\n    load_model(sys.argv[1])\nexcept CheckpointError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    # Refused from the config's own arithmetic (2.0e10 parameters), before even the tensors' shapes are compared.
    assert "parameters, more than" in result.stdout and str(path) in result.stdout, result.stdout + result.stderr
    config["decoder"]["hidden"] = [1000] * 3
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"format": "liifsr/1", "liifsr_config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="does not match its config.*1000"):
        load_model(path)


@pytest.mark.parametrize("change, message", [
    ({"decoder": {"hidden": [-4]}}, "hidden"), ({"encoder": {"n_feats": 0}}, "n_feats"),
    ({"decoder": {"hidden": 16}}, "expected a list"),
])
def test_impossible_configs_in_model_files_are_named(tmp_path, change, message):
    model = tiny()
    config = to_dict(model.config)
    for part, values in change.items():
        config[part].update(values)
    path = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"format": "liifsr/1", "liifsr_config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_a_liifsr_model_under_another_extension_loads_by_content(tmp_path):
    path = tmp_path / "model.bin"
    save_model(tiny(), tmp_path / "m.safetensors")
    path.write_bytes((tmp_path / "m.safetensors").read_bytes())
    assert isinstance(load_model(path), LIIF)
