"""Tests for liifsr.imageio: real files in tmp_path, checked against independent decoders."""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image, ImageOps

from liifsr import imageio
from liifsr.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    check_writable,
    read_image,
    write_image,
)

RNG_SEED = 1234


def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def levels(loaded_values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] back to integer levels, for exact comparisons."""
    top = 255 if bit_depth == 8 else 65535
    return np.rint(loaded_values.astype(np.float64) * top).astype(np.int64)


def random_16bit(shape: tuple[int, ...]) -> np.ndarray:
    """uint16 values that are never multiples of 257, so an 8-bit detour would show."""
    values = rng().integers(0, 65535 // 257, size=shape) * 257 + rng().integers(1, 257, size=shape)
    assert not np.any(values % 257 == 0)
    return values.astype(np.uint16)


def assert_error(excinfo: pytest.ExceptionInfo[ImageError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def png_ihdr(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) straight from the file bytes."""
    header = path.read_bytes()[:26]
    return header[24], header[25]


def add_png_exif_orientation(path: Path, orientation: int) -> None:
    """Insert an eXIf chunk right after IHDR, without re-encoding the pixels."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()
    if data.startswith(b"Exif\x00\x00"):
        data = data[6:]
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data))
    raw = path.read_bytes()
    ihdr_end = 8 + 4 + 4 + 13 + 4
    path.write_bytes(raw[:ihdr_end] + chunk + raw[ihdr_end:])


# ---------------------------------------------------------------------------
# 8-bit round trips


@pytest.mark.parametrize(
    ("with_alpha", "grayscale", "disk_mode"),
    [(False, False, "RGB"), (True, False, "RGBA"), (False, True, "L"), (True, True, "LA")],
)
def test_8bit_png_round_trip_is_exact(tmp_path: Path, with_alpha: bool, grayscale: bool, disk_mode: str) -> None:
    h, w = 7, 11
    color = rng().integers(0, 256, size=(h, w, 1 if grayscale else 3))
    alpha = rng().integers(0, 256, size=(h, w)) if with_alpha else None
    rgb = np.repeat(color, 3, axis=-1) if grayscale else color
    path = tmp_path / "out.png"

    write_image(path, rgb / 255.0, None if alpha is None else alpha / 255.0, grayscale=grayscale)

    with Image.open(path) as disk:
        assert disk.mode == disk_mode
    loaded = read_image(path)
    assert loaded.rgb.shape == (h, w, 3) and loaded.rgb.dtype == np.float32
    assert np.array_equal(levels(loaded.rgb, 8), rgb)
    assert loaded.grayscale is grayscale
    assert loaded.bit_depth == 8
    assert loaded.source_mode == disk_mode
    if alpha is None:
        assert loaded.alpha is None
    else:
        assert loaded.alpha is not None and loaded.alpha.dtype == np.float32
        assert np.array_equal(levels(loaded.alpha, 8), alpha)


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".tiff", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, ext: str) -> None:
    rgb = rng().integers(0, 256, size=(5, 6, 3))
    path = tmp_path / f"out{ext}"
    write_image(path, rgb / 255.0)
    assert np.array_equal(levels(read_image(path).rgb, 8), rgb)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    rgb = np.zeros((16, 16, 3))
    rgb[:, :8] = [0.2, 0.5, 0.8]
    rgb[:, 8:] = [0.9, 0.1, 0.3]
    path = tmp_path / "out.jpeg"
    write_image(path, rgb)
    assert np.abs(read_image(path).rgb - rgb).max() < 0.05


def test_write_clips_and_rounds_to_nearest_level(tmp_path: Path) -> None:
    rgb = np.array([[[1.2, -0.1, 10.4 / 255], [10.6 / 255, 0.5, np.inf]]])
    path = tmp_path / "out.png"
    write_image(path, rgb)
    with Image.open(path) as disk:
        assert np.asarray(disk).tolist() == [[[255, 0, 10], [11, 128, 255]]]


def test_grayscale_writes_channel_mean(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    write_image(path, np.full((2, 3, 3), [0.1, 0.2, 0.3]), grayscale=True)
    with Image.open(path) as disk:
        assert disk.mode == "L"
        assert np.all(np.asarray(disk) == 51)


def test_write_rejects_nan_and_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.png", np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "a.png", np.zeros((2, 2, 3)), alpha=np.zeros((3, 3)))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# 16-bit


@pytest.mark.parametrize(
    ("with_alpha", "grayscale", "colour_type"),
    [(False, True, 0), (True, True, 4), (False, False, 2), (True, False, 6)],
)
def test_16bit_png_round_trip_keeps_full_precision(
    tmp_path: Path, with_alpha: bool, grayscale: bool, colour_type: int
) -> None:
    h, w = 5, 9
    color = random_16bit((h, w, 1 if grayscale else 3))
    alpha = random_16bit((h, w))[::-1] if with_alpha else None
    rgb = np.repeat(color, 3, axis=-1) if grayscale else color
    path = tmp_path / "deep.png"

    write_image(
        path,
        rgb / 65535.0,
        None if alpha is None else alpha / 65535.0,
        grayscale=grayscale,
        bit_depth=16,
    )

    assert png_ihdr(path) == (16, colour_type)
    # An independent decoder sees the exact values we meant to write...
    _, _, rows, _ = png.Reader(filename=str(path)).read()
    planes = (1 if grayscale else 3) + (1 if with_alpha else 0)
    on_disk = np.array([list(row) for row in rows]).reshape(h, w, planes)
    assert np.array_equal(on_disk[..., : planes - with_alpha], color)
    # ...and read_image gives them back unchanged.
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.grayscale is grayscale
    assert np.array_equal(levels(loaded.rgb, 16), rgb)
    if alpha is None:
        assert loaded.alpha is None
    else:
        assert np.array_equal(on_disk[..., -1], alpha)
        assert loaded.alpha is not None and np.array_equal(levels(loaded.alpha, 16), alpha)


@pytest.mark.parametrize(("planes", "bit_depth"), [(3, 8), (2, 8), (4, 16), (1, 16)])
def test_a_png_streamed_in_bands_holds_every_row_exactly(tmp_path: Path, planes: int, bit_depth: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are Up-filtered (each minus the row above) in blocks and bands: a row whose
    reference above is wrong (the first of a band or of a block) would decode wrongly."""
    monkeypatch.setattr(imageio.png_writer, "_PNG_BLOCK_BYTES", 1)  # one row per block: every border is tested
    h, w = 23, 17
    top = 255 if bit_depth == 8 else 65535
    values = rng().integers(0, top + 1, size=(h, w, planes)) / top
    gray, alpha = planes in (1, 2), planes in (2, 4)
    rgb = np.repeat(values[..., :1], 3, axis=-1) if gray else values[..., :3]
    cuts = [0, 1, 8, 9, 23]  # bands of 1, 7, 1 and 14 rows
    bands = [(rgb[a:b], values[a:b, :, -1] if alpha else None) for a, b in zip(cuts, cuts[1:])]
    path = tmp_path / "bands.png"
    imageio.write_image_bands(path, (h, w), iter(bands), alpha=alpha, grayscale=gray, bit_depth=bit_depth)
    assert png_ihdr(path) == (bit_depth, {1: 0, 2: 4, 3: 2, 4: 6}[planes])
    _, _, rows, info = png.Reader(filename=str(path)).read()  # an independent decoder
    assert info["bitdepth"] == bit_depth
    on_disk = np.array([list(row) for row in rows]).reshape(h, w, planes)
    assert np.array_equal(on_disk, np.rint(values * top).astype(np.int64))
    if bit_depth == 8:
        with Image.open(path) as image:  # and another
            assert np.array_equal(np.asarray(image).reshape(h, w, planes), on_disk)


def test_reads_16bit_rgb_png_from_another_writer(tmp_path: Path) -> None:
    color = random_16bit((4, 6, 3))
    path = tmp_path / "external.png"
    with open(path, "wb") as handle:
        png.Writer(6, 4, greyscale=False, bitdepth=16).write(handle, color.reshape(4, -1).tolist())
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.source_mode == "RGB;16"
    assert np.array_equal(levels(loaded.rgb, 16), color)


def test_reads_16bit_gray_via_pillow_modes(tmp_path: Path) -> None:
    gray = random_16bit((3, 4))
    path = tmp_path / "gray16.tif"
    Image.fromarray(gray).save(path)
    loaded = read_image(path)
    assert loaded.grayscale and loaded.bit_depth == 16
    assert np.array_equal(levels(loaded.rgb[..., 1], 16), gray)


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".tif", ".bmp"])
def test_16bit_to_non_png_is_rejected(tmp_path: Path, ext: str) -> None:
    with pytest.raises(ImageError) as excinfo:
        write_image(tmp_path / f"out{ext}", np.zeros((2, 2, 3)), bit_depth=16)
    assert_error(excinfo, f"out{ext}", "16-bit", ".png")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# other source modes


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    img = Image.new("P", (3, 2))
    img.putpalette(palette)
    img.putdata(indices.ravel().tolist())
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)

    loaded = read_image(path)
    assert loaded.source_mode == "P" and not loaded.grayscale
    assert loaded.alpha is not None
    assert loaded.alpha.tolist() == [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    assert loaded.rgb[0, 1].tolist() == [1.0, 0.0, 0.0]
    assert loaded.rgb[0, 2].tolist() == [0.0, 1.0, 0.0]


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    img = Image.new("P", (2, 2))
    img.putpalette([10, 20, 30] * 256)
    path = tmp_path / "palette.png"
    img.save(path)
    loaded = read_image(path)
    assert loaded.alpha is None
    assert np.array_equal(levels(loaded.rgb, 8), np.full((2, 2, 3), [10, 20, 30]))


def test_rgb_with_trns_color_gets_alpha(tmp_path: Path) -> None:
    pixels = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    path = tmp_path / "trns.png"
    Image.fromarray(pixels).save(path, transparency=(1, 2, 3))
    loaded = read_image(path)
    assert loaded.alpha is not None and loaded.alpha.tolist() == [[0.0, 1.0]]


def test_bilevel_image_is_grayscale(tmp_path: Path) -> None:
    img = Image.new("1", (3, 2))
    img.putpixel((1, 0), 1)
    path = tmp_path / "bits.png"
    img.save(path)
    loaded = read_image(path)
    assert loaded.grayscale and loaded.source_mode == "1"
    assert loaded.rgb[..., 0].tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_cmyk_is_converted_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.tif"
    Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(path)
    loaded = read_image(path)
    assert loaded.source_mode == "CMYK" and not loaded.grayscale
    assert loaded.rgb.shape == (3, 4, 3)
    assert loaded.rgb[0, 0].tolist() == [1.0, 0.0, 0.0]


# ---------------------------------------------------------------------------
# EXIF orientation


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif)

    loaded = read_image(path)
    assert loaded.rgb.shape == (3, 2, 3)
    # Orientation 6: stored image must be rotated 90 degrees clockwise for display,
    # so the stored bottom-left pixel ends up top-left.
    assert np.array_equal(levels(loaded.rgb, 8)[0, 0], pixels[1, 0])
    assert np.array_equal(levels(loaded.rgb, 8), np.rot90(pixels, -1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = rng().integers(0, 256, size=(3, 5, 4)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(pixels).save(path, exif=exif)

    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    loaded = read_image(path)
    assert loaded.alpha is not None
    assert np.array_equal(levels(loaded.rgb, 8), expected[..., :3])
    assert np.array_equal(levels(loaded.alpha, 8), expected[..., 3])


def test_exif_orientation_in_jpeg(tmp_path: Path) -> None:
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :16] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)

    loaded = read_image(path)
    assert loaded.rgb.shape == (32, 16, 3)
    # Rotated clockwise: the white left half becomes the top half.
    assert loaded.rgb[:14].mean() > 0.9 and loaded.rgb[18:].mean() < 0.1


def test_exif_orientation_applies_to_16bit_rgb_png(tmp_path: Path) -> None:
    color = random_16bit((2, 3, 3))
    path = tmp_path / "deep.png"
    write_image(path, color / 65535.0, bit_depth=16)
    add_png_exif_orientation(path, 6)
    loaded = read_image(path)
    assert loaded.bit_depth == 16
    assert np.array_equal(levels(loaded.rgb, 16), np.rot90(color, -1))


# ---------------------------------------------------------------------------
# bad inputs


def test_truncated_png_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    write_image(path, rng().random((64, 64, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert_error(excinfo, "cut.png", "truncated", "re-")


def test_truncated_16bit_png_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cut16.png"
    write_image(path, rng().random((32, 32, 3)), bit_depth=16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert_error(excinfo, "cut16.png", "truncated")


@pytest.mark.parametrize("content", [b"hello, not an image\n", b""])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert_error(excinfo, "notes.png", "not a recognised image")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as excinfo:
        read_image(tmp_path / "nope.png")
    assert_error(excinfo, "nope.png", "does not exist")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ImageError) as excinfo:
        read_image(folder)
    assert_error(excinfo, "folder.png", "directory")


def _two_frame_gif(path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), color) for color in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def _float_tiff(path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), dtype=np.float32)).save(path)


@pytest.mark.parametrize(("name", "write", "problem"), [
    ("anim.gif", _two_frame_gif, "2 frames"),
    ("float.tif", _float_tiff, "unsupported image mode 'F'"),
])
def test_unsupported_image_is_rejected(tmp_path: Path, name: str, write, problem: str) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert_error(excinfo, name, problem)


def test_newline_in_file_name_keeps_message_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as excinfo:
        read_image(tmp_path / "bad\nname.png")
    assert_error(excinfo, "does not exist")


# ---------------------------------------------------------------------------
# destinations and atomicity


def test_write_into_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "out" / "x.png"
    with pytest.raises(ImageError) as excinfo:
        write_image(target, np.zeros((2, 2, 3)))
    assert_error(excinfo, "x.png", "does not exist", "create it first")
    assert list(tmp_path.iterdir()) == []


def test_write_with_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: tests often run as root, where real permission bits are ignored.
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    with pytest.raises(ImageError) as excinfo:
        write_image(tmp_path / "x.png", np.zeros((2, 2, 3)))
    assert_error(excinfo, "x.png", "permission denied")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_write_into_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ImageError) as excinfo:
            write_image(locked / "x.png", np.zeros((2, 2, 3)))
        assert_error(excinfo, "permission denied")
    finally:
        locked.chmod(stat.S_IRWXU)


@pytest.mark.parametrize(
    ("name", "kwargs", "fragments"),
    [
        ("x.jpg", {"alpha": True}, ("alpha", ".png")),
        ("x.bmp", {"alpha": True}, ("alpha", ".png")),
        ("x.gif", {}, ("unsupported output format", ".png")),
        ("x", {}, ("no extension",)),
    ],
)
def test_check_writable_rejects_bad_destinations(
    tmp_path: Path, name: str, kwargs: dict[str, bool], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(ImageError) as excinfo:
        check_writable(tmp_path / name, **kwargs)
    assert_error(excinfo, name, *fragments)


def test_check_writable_rejects_directory_destination(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError) as excinfo:
        check_writable(tmp_path / "d.png")
    assert_error(excinfo, "directory")


def test_check_writable_accepts_good_destination(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "x.PNG", bit_depth=16, alpha=True) == tmp_path / "x.PNG"
    assert list(tmp_path.iterdir()) == []


def test_jpeg_with_alpha_is_refused_by_write_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as excinfo:
        write_image(tmp_path / "x.jpg", np.zeros((2, 2, 3)), alpha=np.ones((2, 2)))
    assert_error(excinfo, "x.jpg", ".png")
    assert list(tmp_path.iterdir()) == []


def _failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
    """Write some bytes, then fail like a full disk would."""
    Path(str(fp)).write_bytes(b"\x89PNG partial")
    raise OSError(28, "No space left on device")


def test_failed_write_leaves_no_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(ImageError) as excinfo:
        write_image(tmp_path / "x.png", np.zeros((2, 2, 3)))
    assert_error(excinfo, "x.png", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_failed_16bit_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(handle: io.BufferedWriter, kind: bytes, data: bytes) -> None:
        handle.write(b"partial")
        if kind == b"IDAT":
            raise RuntimeError("encoder crashed")

    monkeypatch.setattr(imageio.png_writer, "_write_png_chunk", explode)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 3)), bit_depth=16)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.png"
    write_image(path, np.full((2, 2, 3), 0.5))
    before = path.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _failing_save)
    with pytest.raises(ImageError):
        write_image(path, np.zeros((4, 4, 3)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_successful_overwrite_replaces_content(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    write_image(path, np.zeros((2, 2, 3)))
    write_image(path, np.ones((3, 3, 3)))
    assert read_image(path).rgb.shape == (3, 3, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_image_extensions_cover_writable_formats(tmp_path: Path) -> None:
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
    for ext in IMAGE_EXTENSIONS:
        check_writable(tmp_path / f"x{ext}")


def test_a_malformed_png_text_chunk_names_the_file(tmp_path):
    """Pillow raises a bare ValueError while parsing the header; the message must name the file."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    raw = (tmp_path / "plain.png").read_bytes()
    text = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 3_000_000))  # decompresses past Pillow's limit
    (tmp_path / "text.png").write_bytes(raw[:33] + text + raw[33:])
    with pytest.raises(ImageError, match="text.png"):
        read_image(tmp_path / "text.png")


def test_the_input_pixel_limit_is_checked_on_the_header_and_can_be_lifted(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "x.png")
    with pytest.raises(ImageError, match="20x30 .HEIGHTxWIDTH. pixels is over the limit of 100 pixels"):
        read_image(tmp_path / "x.png", max_pixels=100)
    assert read_image(tmp_path / "x.png", max_pixels=None).rgb.shape == (20, 30, 3)


# ---------------------------------------------------------------------------
# collections: listing folders, and opening what was listed


def small_png(path: Path, value: int = 9) -> Path:
    Image.fromarray(np.full((6, 5, 3), value, np.uint8)).save(path)
    return path


def test_a_subfolder_that_cannot_be_listed_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Left out silently, a collection would miss its images with status 0. (Simulated:
    tests often run as root, who can list any folder.)"""
    (tmp_path / "in" / "locked").mkdir(parents=True)
    small_png(tmp_path / "in" / "a.png")
    small_png(tmp_path / "in" / "locked" / "b.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ImageError) as excinfo:
        imageio.find_images(tmp_path / "in")
    assert_error(excinfo, f"cannot list folder {str(tmp_path / 'in' / 'locked')!r}", "Permission denied", "permissions")


def test_one_path_is_one_input_not_its_characters(tmp_path: Path) -> None:
    small_png(tmp_path / "a.png")
    assert imageio.collect_images(str(tmp_path)) == imageio.collect_images([tmp_path]) == [(tmp_path / "a.png", Path("a.png"))]
    with pytest.raises(TypeError, match="not int"):
        imageio.collect_images([tmp_path, 3])


def test_a_file_that_leads_out_of_its_folder_when_opened_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`inside`: checked on the file opened, not on the name listed earlier. A link that
    leads out, or one switched back between the open and the check, is refused; a link
    within the folder is read."""
    folder = tmp_path / "in"
    folder.mkdir()
    private, inner = small_png(tmp_path / "private.png", 1), small_png(folder / "inner.png", 2)
    (folder / "out.png").symlink_to(private)
    (folder / "in.png").symlink_to(inner)
    assert read_image(folder / "in.png", inside=folder).rgb[0, 0, 0] == 2 / 255
    assert read_image(folder / "out.png").rgb[0, 0, 0] == 1 / 255  # by name, without `inside`: the user's choice
    with pytest.raises(ImageError) as excinfo:
        read_image(folder / "out.png", inside=folder)
    assert_error(excinfo, "leads out of the folder", str(folder))
    real_open = os.open

    def open_then_switch_back(path, flags, *args):
        fd = real_open(path, flags, *args)
        if Path(path) == folder / "out.png":  # the attacker puts the link back as it was
            (folder / "out.png").unlink()
            (folder / "out.png").symlink_to(inner)
        return fd

    monkeypatch.setattr(os, "open", open_then_switch_back)
    with pytest.raises(ImageError, match="leads out of the folder"):
        read_image(folder / "out.png", inside=folder)


def test_a_fifo_is_never_waited_on(tmp_path: Path) -> None:
    """A FIFO without a writer is an error at once (it used to block the open forever), one
    with a writer is read like `/dev/stdin`; a device is refused. In a child process, so
    that a hang fails the test instead of stopping the suite."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    code = ("import sys\nfrom liifsr.imageio import ImageError, probe_bit_depth, read_image\n"
            "assert probe_bit_depth(sys.argv[1]) == 8\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n        read_image(path)\n    except ImageError as error:\n        print(error)\n")
    result = subprocess.run([sys.executable, "-c", code, str(fifo), "/dev/zero"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"cannot read {str(fifo)!r}: it is a pipe (FIFO) that gave no data (write the image into it, or pass an image file)",
        "cannot read '/dev/zero': it is not a regular file (a device or a socket) (pass an image file)"]
    image = small_png(tmp_path / "a.png", 5).read_bytes()

    def write() -> None:  # its open waits for a reader; one that left before the write is met again
        for _ in range(200):
            try:
                with open(fifo, "wb") as pipe:
                    pipe.write(image)
                return
            except BrokenPipeError:
                continue

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    for _ in range(200):  # a read before the writer is there gets no data: again
        try:
            loaded = read_image(fifo)
            break
        except ImageError:
            threading.Event().wait(0.05)
    writer.join(timeout=30)
    assert loaded.rgb.shape == (6, 5, 3) and loaded.rgb[0, 0, 0] == 5 / 255


def test_the_bit_depth_is_known_from_the_header(tmp_path: Path) -> None:
    """So that a 16-bit input's output name (PNG) is known before anything is decoded."""
    deep = random_16bit((6, 5, 3))
    png.Writer(5, 6, bitdepth=16, greyscale=False).write(open(tmp_path / "rgb16.png", "wb"), deep.reshape(6, -1).tolist())
    Image.fromarray(deep[..., 0]).save(tmp_path / "gray16.tif")
    small_png(tmp_path / "rgb8.png")
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "rgb8.tif")
    for name in ("rgb16.png", "gray16.tif", "rgb8.png", "rgb8.tif"):
        assert imageio.probe_bit_depth(tmp_path / name) == read_image(tmp_path / name).bit_depth, name
    assert imageio.probe_bit_depth(tmp_path / "missing.tif") == 8
