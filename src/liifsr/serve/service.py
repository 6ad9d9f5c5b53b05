"""The state behind `liifsr serve`'s routes: the images shown, the model worker, the tile
cache and the whole-image downloads (streamed to disk by bands, as `liifsr upscale` writes)."""

from __future__ import annotations

import io
import logging
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from liifsr.imageio import ImageError, LoadedImage, read_image, to_pil, write_image_bands
from liifsr.inference import upscale_image_bands
from liifsr.serve.pyramid import OVERLAP, TILE, Level, bicubic_region, levels, tile_spans
from liifsr.serve.worker import Job, ModelWorker, TileCache
from liifsr.tiling import upscale_tensor

log = logging.getLogger("liifsr.serve")
STATIC = Path(str(resources.files("liifsr") / "serve" / "static"))
KINDS = ("liif", "bicubic")
# How often a waiting request checks whether its client is still there.
DISCONNECT_POLL_S = 0.05
# Finished downloads stay on disk (in a temporary folder) until this many newer ones exist.
DOWNLOADS_KEPT = 8


class TooLarge(ImageError):
    """An upload over the server's pixel limit."""


@dataclass
class Limits:
    upload_bytes: int = 32 * 2**20
    input_pixels: int = 12_000_000
    output_pixels: int = 50_000_000
    uploads_kept: int = 20


@dataclass
class ServedImage:
    id: str
    name: str
    image: LoadedImage
    levels: list[Level]
    lr: torch.Tensor = field(repr=False)  # (1, 3, H, W) in [0, 1]

    @classmethod
    def create(cls, image_id: str, name: str, image: LoadedImage) -> "ServedImage":
        lr = torch.from_numpy(np.ascontiguousarray(image.rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        return cls(image_id, name, image, levels(image.rgb.shape[:2]), lr)

    def describe(self) -> dict[str, Any]:
        height, width = self.image.rgb.shape[:2]
        return {
            "id": self.id,
            "name": self.name,
            "width": width,
            "height": height,
            "tile": TILE,
            "overlap": OVERLAP,
            "levels": [{"scale": lv.scale, "width": lv.width, "height": lv.height, "decoded": lv.decoded} for lv in self.levels],
        }


@dataclass
class Download:
    job: Job
    total_pixels: int
    path: Path
    filename: str


class Server:
    """The state behind the routes: images, model worker, tile cache, downloads."""

    def __init__(self, model, model_name: str, images: list[tuple[str, LoadedImage]], precision: str = "fp32",
                 cache_bytes: int = 256 * 2**20, limits: Limits | None = None, threads: int | None = None,
                 on_model_failure: Callable[[BaseException], None] | None = None,
                 decoding: dict[str, int | None] | None = None) -> None:
        self.model = model
        self.model_name = model_name
        self.precision = precision
        # upscale_tensor's chunk_size and tile_size (`runtime.decoding_options`)
        self.decoding = {**(decoding or {}), "precision": precision}
        self.limits = limits or Limits()
        self.images: dict[str, ServedImage] = {}
        self.uploads: list[str] = []
        for index, (name, image) in enumerate(images):
            self.images[str(index)] = ServedImage.create(str(index), name, image)
        self.worker = ModelWorker(threads, on_model_failure)
        self.cache = TileCache(cache_bytes)
        self.downloads: dict[str, Download] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="liifsr-serve-"))
        self.decoded_tiles = 0

    def close(self) -> None:
        self.worker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- work run by the model thread ------------------------------------------------

    def render_tile(self, served: ServedImage, kind: str, level: Level, col: int, row: int, job: Job) -> bytes:
        rows, cols = tile_spans(level, col, row)
        if kind == "liif" and level.decoded:
            rgb = upscale_tensor(self.model, served.lr, (level.height, level.width), region=(rows, cols),
                                 on_block=job.checkpoint, **self.decoding)[0].permute(1, 2, 0).numpy()
            self.decoded_tiles += 1
        else:
            rgb = bicubic_region(served.image.rgb, (level.height, level.width), rows, cols)
        buffer = io.BytesIO()
        # The same rounding as `liifsr upscale` writes (clip, then nearest level).
        to_pil(rgb, grayscale=served.image.grayscale).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def render_download(self, served: ServedImage, out_hw: tuple[int, int], path: Path, job: Job) -> Path:
        """The whole upscale written as the CLI writes it: streamed by bands, never whole in memory."""
        image = served.image
        bands = upscale_image_bands(self.model, image, out_hw, on_block=job.checkpoint, **self.decoding)
        write_image_bands(path, out_hw, bands, alpha=image.alpha is not None, grayscale=image.grayscale,
                          bit_depth=image.bit_depth)
        return path

    # --- uploads ---------------------------------------------------------------------

    def add_upload(self, name: str, data: bytes) -> ServedImage:
        """Check and decode an uploaded file (any thread); ImageError names the problem."""
        limit = self.limits.input_pixels
        try:
            with Image.open(io.BytesIO(data)) as probe:  # reads the header only
                width, height = probe.size
        except Image.DecompressionBombError:
            raise TooLarge(f"'{name}' has too many pixels (limit {limit:,}; downscale it first)") from None
        except Exception:
            width = height = 0  # read_image below names the problem
        if width * height > limit:
            raise TooLarge(f"'{name}' has {width}x{height} = {width * height:,} pixels, over this server's limit of {limit:,} (downscale it first)")
        suffix = Path(name).suffix.lower()[:8] or ".img"
        tmp = self.workdir / f"upload-{secrets.token_hex(8)}{suffix if suffix.isascii() else '.img'}"
        tmp.write_bytes(data)
        try:
            image = read_image(tmp)
        except ImageError as error:
            raise ImageError(str(error).replace(repr(str(tmp)), repr(name))) from None
        finally:
            tmp.unlink(missing_ok=True)
        image_id = "u" + secrets.token_hex(6)
        served = ServedImage.create(image_id, name, image)
        self.images[image_id] = served
        self.uploads.append(image_id)
        while len(self.uploads) > self.limits.uploads_kept:
            old = self.uploads.pop(0)
            self.images.pop(old, None)
            self.cache.drop(lambda key: key[0] == old)
        return served
