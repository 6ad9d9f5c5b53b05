"""LIIF's official `.pth` checkpoints mapped onto liifsr's models: their `model.args` onto a
`ModelConfig`, their state dict onto the model's (`liifsr.checkpoint` reads the file).

The mapping names parts by their registered names (`edsr`, `rdn`, `liif`), so it imports
no model module.
"""

from __future__ import annotations

from typing import Any

from liifsr.config import ConfigError, from_dict
from liifsr.models import ModelConfig

# LIIF's EDSR keeps two mean-shift convs that its forward pass never applies.
UNUSED_PREFIXES = ("encoder.sub_mean.", "encoder.add_mean.")
# LIIF's `make_rdn` configurations: D residual dense blocks of C layers, growth G.
_RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}


def liif_args_to_config(args: dict[str, Any]) -> ModelConfig:
    """Translate LIIF's `model.args` (encoder_spec, imnet_spec, flags) into a ModelConfig;
    ConfigError for an encoder or imnet that liifsr lacks, or values of the wrong type."""
    encoder_spec, imnet_spec = args["encoder_spec"], args.get("imnet_spec")
    name, enc = encoder_spec["name"], encoder_spec.get("args", {})
    encoder: dict[str, Any]
    if name == "edsr-baseline":
        encoder = {"name": "edsr", "n_resblocks": enc.get("n_resblocks", 16), "n_feats": enc.get("n_feats", 64),
                   "res_scale": float(enc.get("res_scale", 1))}
    elif name == "edsr":
        encoder = {"name": "edsr", "n_resblocks": enc.get("n_resblocks", 32), "n_feats": enc.get("n_feats", 256),
                   "res_scale": float(enc.get("res_scale", 0.1))}
    elif name == "rdn":
        D, C, G = _RDN_CONFIGS[enc.get("RDNconfig", "B")]
        encoder = {"name": "rdn", "G0": enc.get("G0", 64), "D": D, "C": C, "G": G, "kernel_size": enc.get("RDNkSize", 3)}
    else:
        raise ConfigError(f"unsupported LIIF encoder {name!r} (supported: edsr-baseline, edsr, rdn)")
    if imnet_spec is None or imnet_spec.get("name") != "mlp":
        raise ConfigError("only LIIF checkpoints with an 'mlp' imnet are supported")
    mlp = imnet_spec["args"]
    decoder = {
        "name": "liif",
        "hidden": list(mlp["hidden_list"]),
        "out_dim": mlp.get("out_dim", 3),
        "feature_unfold": args.get("feat_unfold", True),
        "local_ensemble": args.get("local_ensemble", True),
        "cell_decode": args.get("cell_decode", True),
    }
    # The values came from a pickle, not from YAML: the schema's type checks apply.
    return from_dict(ModelConfig, {"encoder": encoder, "decoder": decoder})


def liif_state_dict(state: dict[Any, Any]) -> dict[Any, Any]:
    """LIIF's `model.sd` without the tensors that liifsr's models leave out."""
    return {key: value for key, value in state.items() if not str(key).startswith(UNUSED_PREFIXES)}
