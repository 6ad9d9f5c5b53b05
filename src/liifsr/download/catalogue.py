"""The datasets `liifsr data download` knows: their archives, official URLs, sizes and
SHA-256 sums, where each unpacks, and which parts a plain download fetches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class FileRecord:
    """One downloadable archive and where its content lands.

    ``size``/``sha256`` are ``None`` when no published value was found; the
    file is then checked as far as possible and the computed hash reported.
    ``extract_to`` and ``provides`` are relative to the download root:
    the archive is unpacked into ``extract_to`` and must then contain
    ``provides`` (which is what :func:`download_dataset` returns).
    """

    name: str
    url: str
    size: int | None
    sha256: str | None
    part: str
    extract_to: str
    provides: str


@dataclass(frozen=True)
class DatasetSpec:
    """The archives of one dataset and which of them a plain download fetches."""

    files: tuple[FileRecord, ...]
    default_parts: tuple[str, ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(record.part for record in self.files)


_DIV2K_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"


def _div2k(name: str, size: int, sha256: str, part: str, provides: str) -> FileRecord:
    return FileRecord(name, _DIV2K_URL + name, size, sha256, part, "DIV2K", "DIV2K/" + provides)


# Sizes and SHA-256 of the DIV2K zips: tensorflow/datasets,
# tensorflow_datasets/datasets/div2k/checksums.tsv (formerly
# tensorflow_datasets/url_checksums/div2k.txt), which pins exactly these URLs.
_DIV2K_FILES = (
    _div2k("DIV2K_train_HR.zip", 3530603713,
           "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
           "train_hr", "DIV2K_train_HR"),
    _div2k("DIV2K_valid_HR.zip", 448993893,
           "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
           "valid_hr", "DIV2K_valid_HR"),
    _div2k("DIV2K_train_LR_bicubic_X2.zip", 925390592,
           "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",
           "train_lr_x2", "DIV2K_train_LR_bicubic/X2"),
    _div2k("DIV2K_train_LR_bicubic_X3.zip", 427847282,
           "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",
           "train_lr_x3", "DIV2K_train_LR_bicubic/X3"),
    _div2k("DIV2K_train_LR_bicubic_X4.zip", 246914039,
           "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
           "train_lr_x4", "DIV2K_train_LR_bicubic/X4"),
    _div2k("DIV2K_valid_LR_bicubic_X2.zip", 117763600,
           "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",
           "valid_lr_x2", "DIV2K_valid_LR_bicubic/X2"),
    _div2k("DIV2K_valid_LR_bicubic_X3.zip", 54513392,
           "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",
           "valid_lr_x3", "DIV2K_valid_LR_bicubic/X3"),
    _div2k("DIV2K_valid_LR_bicubic_X4.zip", 31505881,
           "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
           "valid_lr_x4", "DIV2K_valid_LR_bicubic/X4"),
)

# The EDSR authors publish no checksum for benchmark.tar.  Size and SHA-256
# below come from a third-party project that pins and checks them:
# github.com/YeapJieShen/single-image-super-resolution,
# tests/reference/fetch_urban100.py and tests/utils/test_imresize.py
# ("SHA-256 ... (250112000-byte archive)"); 250 MB matches the size other
# READMEs quote for this tar.
_BENCHMARK_FILES = (
    FileRecord(
        name="benchmark.tar",
        url="https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
        size=250112000,
        sha256="80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8",
        part="benchmark",
        extract_to=".",  # the tar already holds a top-level benchmark/ folder
        provides="benchmark",
    ),
)

DATASETS: Mapping[str, DatasetSpec] = MappingProxyType({
    "div2k": DatasetSpec(
        files=_DIV2K_FILES,
        default_parts=("train_hr", "valid_hr", "valid_lr_x2", "valid_lr_x3", "valid_lr_x4"),
    ),
    "benchmark": DatasetSpec(files=_BENCHMARK_FILES, default_parts=("benchmark",)),
})


def select_parts(spec: DatasetSpec, parts: Sequence[str] | None) -> list[FileRecord]:
    """The records for ``parts`` (default parts if ``None``), rejecting unknown names."""
    wanted = spec.default_parts if parts is None else tuple(parts)
    unknown = sorted(set(wanted) - set(spec.parts))
    if unknown:
        raise ValueError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(spec.parts)}")
    return [record for record in spec.files if record.part in wanted]
