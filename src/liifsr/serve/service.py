"""The state behind `liifsr serve`'s routes: the images shown, the model worker, the tile
cache and the whole-image downloads (streamed to disk by bands, as `liifsr upscale` writes)."""

from __future__ import annotations

import io
import logging
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from liifsr.decoding import DecodeOptions
from liifsr.imageio import ImageError, LoadedImage, exif_orientation, read_image, to_pil, write_image_bands
from liifsr.inference import float_tensor, upscale_image_bands
from liifsr.serve.lru import ByteBudgetLRU
from liifsr.serve.pyramid import OVERLAP, TILE, Level, bicubic_region, levels, tile_region
from liifsr.serve.worker import Job, ModelWorker
from liifsr.tiling import upscale_tensor

log = logging.getLogger("liifsr.serve")
STATIC = Path(str(resources.files("liifsr") / "serve" / "static"))
KINDS = ("model", "bicubic")  # a tile decoded by the model, or bicubic's
# How often a waiting request checks whether its client is still there.
DISCONNECT_POLL_S = 0.05
# Finished downloads stay on disk (in a temporary folder) until this many newer ones exist.
DOWNLOADS_KEPT = 8


class TooLarge(ImageError):
    """An image (given or uploaded) over the server's pixel limit."""


@dataclass
class Limits:
    upload_bytes: int = 32 * 2**20
    input_pixels: int = 12_000_000
    output_pixels: int = 50_000_000
    uploads_kept: int = 20
    decoded_bytes: int = 512 * 2**20  # decoded images kept in memory (least recently viewed dropped first)


# EXIF orientations that swap width and height (5-8: transposed or rotated by 90 degrees).
_TRANSPOSED = (5, 6, 7, 8)


def image_size(path: Path, max_pixels: int) -> tuple[int, int]:
    """(height, width) as `read_image` will decode it (EXIF rotation applied), read from the
    file's header: a folder of a thousand photographs costs no decoding to list.
    ImageError (TooLarge over `max_pixels`) names a file that cannot be served."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            # Pillow's PNG getexif() decodes the pixels to look for an eXIf chunk after them;
            # the header's (before them, where the PNG specification puts it) is enough here.
            orientation = 1 if img.format == "PNG" and "exif" not in img.info else exif_orientation(img)
    except Image.DecompressionBombError:
        raise TooLarge(f"{str(path)!r} has too many pixels (limit {max_pixels:,}; raise --max-input-mp or downscale it)") from None
    except Exception:  # noqa: BLE001 - read_image names every problem a file can have, in its words
        image = read_image(path, max_pixels=max_pixels)
        height, width = image.rgb.shape[:2]
        orientation = 1
    if orientation in _TRANSPOSED:
        width, height = height, width
    if width * height > max_pixels:
        raise TooLarge(f"{str(path)!r} has {width}x{height} = {width * height:,} pixels, over this server's limit of "
                       f"{max_pixels:,} (raise --max-input-mp or downscale it)")
    return height, width


def served_files(files: list[tuple[str, Path]], max_pixels: int = Limits.input_pixels) -> list[ServedImage]:
    """The images of (name shown, file), ids "0", "1", ...: sizes from the headers, nothing decoded."""
    return [ServedImage.create(str(index), name, path, image_size(path, max_pixels))
            for index, (name, path) in enumerate(files)]


def display_names(files: list[tuple[Path, Path]]) -> list[str]:
    """The name each of `imageio.collect_images`' (file, path relative to its input) is
    listed by: the relative path (`sub/a.png`), or, where two are alike (two folders'
    `a.png`), the path as given; a file given twice is numbered."""
    relative = [rel.as_posix() for _, rel in files]
    alike = Counter(relative)
    names = [rel if alike[rel] == 1 else path.as_posix() for (path, _), rel in zip(files, relative)]
    seen: Counter[str] = Counter()
    for index, name in enumerate(names):
        seen[name] += 1
        if seen[name] > 1:
            names[index] = f"{name} ({seen[name]})"
    return names


@dataclass
class ServedImage:
    """An image the server shows: its pixels are decoded on demand (`Server.pixels`) from `path`."""

    id: str
    name: str
    path: Path
    height: int
    width: int
    levels: list[Level]

    @classmethod
    def create(cls, image_id: str, name: str, path: Path, size: tuple[int, int]) -> ServedImage:
        return cls(image_id, name, path, size[0], size[1], levels(size))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "tile": TILE,
            "overlap": OVERLAP,
            "levels": [{"scale": lv.scale, "width": lv.width, "height": lv.height, "decoded": lv.decoded} for lv in self.levels],
        }


@dataclass
class Pixels:
    """A decoded image and the model's view of it (sharing the memory)."""

    image: LoadedImage
    lr: torch.Tensor = field(repr=False)  # (1, 3, H, W) in [0, 1]

    @classmethod
    def create(cls, image: LoadedImage) -> Pixels:
        lr = float_tensor(image.rgb)  # a copy where the pixels are read-only (PyTorch warns of those)
        return cls(replace(image, rgb=lr.numpy()), lr.permute(2, 0, 1).unsqueeze(0))

    @property
    def nbytes(self) -> int:
        return self.image.rgb.nbytes + (0 if self.image.alpha is None else self.image.alpha.nbytes)


@dataclass
class Download:
    job: Job
    total_pixels: int
    path: Path
    filename: str


class Server:
    """The state behind the routes: images, model worker, tile cache, downloads."""

    def __init__(self, model, model_name: str, images: list[ServedImage], decoding: DecodeOptions = DecodeOptions(),
                 cache_bytes: int = 256 * 2**20, limits: Limits | None = None, threads: int | None = None,
                 on_model_failure: Callable[[BaseException], None] | None = None) -> None:
        self.model = model
        self.model_name = model_name
        self.decoding = decoding  # of every tile and download; its precision is what runs ('auto' resolved)
        self.precision = decoding.precision
        self.limits = limits or Limits()
        self.images: dict[str, ServedImage] = {served.id: served for served in images}  # `served_files`
        self.uploads: list[str] = []
        # the image in use stays decoded even alone over the budget
        self.decoded: ByteBudgetLRU[str, Pixels] = ByteBudgetLRU(self.limits.decoded_bytes, lambda p: p.nbytes,
                                                                 keep_oversize=True)
        self.worker = ModelWorker(threads, on_model_failure)
        self.cache: ByteBudgetLRU[tuple, bytes] = ByteBudgetLRU(cache_bytes, len)  # encoded tiles
        self.downloads: dict[str, Download] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="liifsr-serve-"))
        self.decoded_tiles = 0

    def close(self) -> None:
        self.worker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- work run by the model thread ------------------------------------------------

    def pixels(self, served: ServedImage) -> Pixels:
        """The image decoded (from memory, or from its file within the memory budget).
        Run by the model thread only, so that an image is never decoded twice at once."""
        pixels = self.decoded.get(served.id)
        if pixels is None:
            image = read_image(served.path, max_pixels=self.limits.input_pixels)
            if image.rgb.shape[:2] != (served.height, served.width):
                raise ImageError(f"{served.name!r} is {image.rgb.shape[1]}x{image.rgb.shape[0]} now, not the "
                                 f"{served.width}x{served.height} it was when it was listed (restart liifsr serve)")
            pixels = Pixels.create(image)
            self.decoded.put(served.id, pixels)
        return pixels

    def render_tile(self, served: ServedImage, kind: str, level: Level, col: int, row: int, job: Job) -> bytes:
        region = tile_region(level, col, row)
        assert region is not None, "the tile route answers 404 for a tile outside the level"
        rows, cols = region
        pixels = self.pixels(served)
        if kind == "model" and level.decoded:
            rgb = upscale_tensor(self.model, pixels.lr, (level.height, level.width), region=(rows, cols),
                                 on_block=job.checkpoint, **self.decoding.tiling_arguments())[0].permute(1, 2, 0).numpy()
            self.decoded_tiles += 1
        else:
            rgb = bicubic_region(pixels.image.rgb, (level.height, level.width), rows, cols)
        buffer = io.BytesIO()
        # The same rounding as `liifsr upscale` writes (clip, then nearest level).
        to_pil(rgb, grayscale=pixels.image.grayscale).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def render_download(self, served: ServedImage, out_hw: tuple[int, int], path: Path, job: Job) -> Path:
        """The whole upscale written as the CLI writes it: streamed by bands, never whole in memory."""
        image = self.pixels(served).image
        bands = upscale_image_bands(self.model, image, out_hw, self.decoding, on_block=job.checkpoint)
        write_image_bands(path, out_hw, bands, alpha=image.alpha is not None, grayscale=image.grayscale,
                          bit_depth=image.bit_depth)
        return path

    # --- uploads ---------------------------------------------------------------------

    def add_upload(self, name: str, data: bytes) -> ServedImage:
        """Check, keep and decode an uploaded file (any thread); ImageError names the problem."""
        limit = self.limits.input_pixels
        try:
            with Image.open(io.BytesIO(data)) as probe:  # reads the header only
                width, height = probe.size
        except Image.DecompressionBombError:
            raise TooLarge(f"'{name}' has too many pixels (limit {limit:,}; downscale it first)") from None
        except Exception:
            width = height = 0  # read_image below names the problem
        if width * height > limit:
            raise TooLarge(f"'{name}' has {width}x{height} = {width * height:,} pixels, "
                           f"over this server's limit of {limit:,} (downscale it first)")
        image_id = "u" + secrets.token_hex(6)
        suffix = Path(name).suffix.lower()[:8] or ".img"
        # Kept as a file while it is shown: decoded again from it, like a served folder's
        # images, once the memory budget has dropped it.
        path = self.workdir / f"upload-{image_id}{suffix if suffix.isascii() and suffix.isprintable() else '.img'}"
        path.write_bytes(data)
        try:
            image = read_image(path, max_pixels=limit)
        except ImageError as error:
            path.unlink(missing_ok=True)
            raise ImageError(str(error).replace(repr(str(path)), repr(name))) from None
        served = ServedImage.create(image_id, name, path, image.rgb.shape[:2])
        self.decoded.put(image_id, Pixels.create(image))  # it is about to be shown
        self.images[image_id] = served
        self.uploads.append(image_id)
        while len(self.uploads) > self.limits.uploads_kept:
            old = self.images.pop(self.uploads.pop(0))
            self.decoded.drop(old.id.__eq__)
            self.cache.drop(lambda key: key[0] == old.id)  # noqa: B023 (drop() calls it before the loop moves on)
            old.path.unlink(missing_ok=True)
        return served
