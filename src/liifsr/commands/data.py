"""`liifsr data download NAME DIR`: a dataset fetched, verified and unpacked (`liifsr.download`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr import download


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch = actions.add_parser("download", help="download and unpack a dataset (resumable)")
    fetch.add_argument("name", choices=sorted(download.DATASETS), help="which dataset")
    fetch.add_argument("root", type=Path, metavar="DIR", help="folder to download and unpack into")
    fetch.add_argument("--parts", default=None, help="comma-separated parts (default: the dataset's usual ones)")
    fetch.add_argument("--mirror", default=None, help="base URL of a mirror holding the same files")


def run(args: argparse.Namespace) -> int:
    parts = args.parts.split(",") if args.parts else None
    try:
        folders = download.download_dataset(args.name, args.root, base_url=args.mirror, parts=parts)
    except download.DownloadError as error:  # network and checksum problems are the user's to act on
        raise ValueError(str(error)) from None
    for folder in folders:
        print(folder)
    return 0
