"""`liifsr models`: the bundled models' cards and the presets `liifsr train` builds."""

from __future__ import annotations

import argparse

from liifsr.models import MODEL_PRESETS
from liifsr.zoo import ALIASES, list_models


def configure_parser(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    del args
    print("bundled models (trained weights; their results: docs/results.md):")
    for card in list_models():
        aliases = [alias for alias, name in ALIASES.items() if name == card.name]
        print(f"  {card.name}{f'  (--model {aliases[0]})' if aliases else ''}")
        for line in card.lines():
            print(f"      {line}")
    print("presets (architectures for `liifsr train`):")
    for name, config in MODEL_PRESETS.items():
        print(f"  {name}: {config.describe()}")
    return 0
