"""`liifsr upscale` / `convert` / `models` end to end, through the real argument parser."""

import os
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image

from liifsr.checkpoint import read_metadata, read_model_config, save_model
from liifsr.cli import main
from liifsr.imageio import sample_image
from liifsr.inference import upscale
from liifsr.models import ModelConfig, build_model, model_preset
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import LIIF, LIIFConfig
from liifsr.models.siren import SineConfig
from liifsr.zoo import bundled_models, load_model

SAMPLE = sample_image()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), LIIFConfig(hidden=[32, 32], activation=SineConfig(), global_skip=True))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LIIF(config), path)
    return str(path)


@pytest.fixture
def photo(tmp_path):
    """A real photograph: a 61x47 crop of the bundled astronaut image."""
    path = tmp_path / "photo.png"
    Image.open(SAMPLE).convert("RGB").crop((180, 60, 227, 121)).save(path)
    return path


def run(*args):
    return main([str(a) for a in args])


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_every_bundled_model_upscales_by_name(tmp_path, photo, name):
    """`liifsr upscale --model NAME` works out of the box, and beats bicubic on a photo."""
    small = tmp_path / "small.png"
    hr = np.asarray(Image.open(photo))[:60, :44]
    Image.fromarray(hr).resize((22, 30), Image.BICUBIC).save(small)
    assert run("upscale", small, "--scale", "2", "-o", tmp_path / "up.png", "--model", name) == 0
    up = np.asarray(Image.open(tmp_path / "up.png")).astype(float)
    bicubic = np.asarray(Image.open(small).resize((44, 60), Image.BICUBIC)).astype(float)
    assert up.shape == hr.shape
    assert np.abs(up - hr).mean() < np.abs(bicubic - hr).mean(), name


def test_float_and_per_axis_scales_and_size(tmp_path, photo, model_file):
    assert run("upscale", photo, "--scale", "3.5", "-o", tmp_path / "a.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "a.png").size == (round(47 * 3.5), round(61 * 3.5))
    assert run("upscale", photo, "--scale", "2,1.5", "-o", tmp_path / "b.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "b.png").size == (round(47 * 1.5), 122)
    assert run("upscale", photo, "--size", "100x80", "-o", tmp_path / "c.png", "--model", model_file) == 0
    assert Image.open(tmp_path / "c.png").size == (80, 100)


def test_model_option_picks_the_model(tmp_path, photo, model_file):
    """--model changes the output, and the output is the chosen model's; without it, the default's."""
    assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "chosen.png", "--model", model_file) == 0
    assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "default.png") == 0
    chosen, default = (np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int) for name in ("chosen", "default"))
    assert np.abs(chosen - default).mean() > 5
    for output, model in ((chosen, load_model(model_file)), (default, load_model())):
        assert np.array_equal(output, np.asarray(upscale(model, Image.open(photo), scale=2)).astype(int))


def test_tiled_output_equals_untiled(tmp_path, photo, model_file):
    fp32 = ("--precision", "fp32")  # exact up to float rounding; bf16 (auto, where the CPU has it) rounds far more
    assert run("upscale", photo, "--scale", "2.3", "-o", tmp_path / "whole.png", "--model", model_file, *fp32) == 0
    assert run("upscale", photo, "--scale", "2.3", "-o", tmp_path / "tiled.png", "--model", model_file, "--tile", "9", "--chunk", "777",
               *fp32) == 0
    whole = np.asarray(Image.open(tmp_path / "whole.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled.png")).astype(int)
    # 1e-5 in float can flip a rounding at most by one level
    assert np.abs(whole - tiled).max() <= 1 and (whole != tiled).mean() < 1e-3


def test_out_dir_keeps_names_grayscale_alpha_and_16_bit(tmp_path, photo, model_file):
    rgb = np.asarray(Image.open(photo))
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(tmp_path / "alpha.png")
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit gray
    out = tmp_path / "out"
    out.mkdir()
    inputs = [tmp_path / n for n in ("gray.png", "alpha.png", "deep.png")]
    assert run("upscale", *inputs, "--scale", "2", "--out-dir", out, "--model", model_file) == 0
    assert Image.open(out / "gray.png").mode == "L"
    alpha = Image.open(out / "alpha.png")
    assert alpha.mode == "RGBA" and np.all(np.asarray(alpha)[..., 3] == 128)
    assert Image.open(out / "deep.png").mode.startswith("I")


def assert_fails(capsys, args, message, leftover):
    assert run(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not leftover.exists()


def test_bad_inputs_fail_in_one_line_without_output(tmp_path, photo, model_file, capsys):
    out = tmp_path / "out.png"
    model = ["--model", model_file]
    assert_fails(capsys, ["upscale", tmp_path / "missing.png", "--scale", "2", "-o", out, *model], "does not exist", out)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:300])
    assert_fails(capsys, ["upscale", truncated, "--scale", "2", "-o", out, *model], "truncated", out)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert_fails(capsys, ["upscale", text, "--scale", "2", "-o", out, *model], "cannot read", out)
    floats = tmp_path / "float.tif"
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(floats)
    assert_fails(capsys, ["upscale", floats, "--scale", "2", "-o", out, *model], "unsupported image mode", out)
    for bad in ("0", "-2", "nan", "inf", "2,0", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            run("upscale", photo, "--scale", bad, "-o", out, *model)
        assert exit_info.value.code == 2 and not out.exists()
        err = capsys.readouterr().err.strip()
        assert "--scale" in err and "\n" not in err, err
    assert_fails(capsys, ["upscale", photo, "--scale", "400", "-o", out, *model], "--allow-huge", out)
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", tmp_path / "nodir" / "x.png", *model], "does not exist",
                 tmp_path / "nodir")
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", out, "--model", "no-such-model"], "unknown model", out)
    assert_fails(capsys, ["upscale", photo, photo, "--scale", "2", "-o", out, *model], "--out-dir", out)


def test_failure_while_writing_leaves_no_file(tmp_path, photo, model_file, capsys, monkeypatch):
    import liifsr.imageio as imageio

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio.png_writer, "_write_png_chunk", broken_save)  # PNG is streamed, chunk by chunk
    out = tmp_path / "out.png"
    assert_fails(capsys, ["upscale", photo, "--scale", "2", "-o", out, "--model", model_file], "No space left", out)
    assert list(tmp_path.iterdir()) == [photo]


def test_convert_and_models(tmp_path, capsys):
    assert run("convert", FIXTURES / "tiny-full.pth", tmp_path / "tiny.safetensors") == 0
    assert (tmp_path / "tiny.safetensors").exists()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    assert_fails(capsys, ["convert", bad, tmp_path / "x.safetensors"], "cannot read LIIF checkpoint", tmp_path / "x.safetensors")
    assert run("models") == 0
    listing = capsys.readouterr().out
    assert "edsr-liif-siren30" in listing  # a preset
    for name, path in bundled_models().items():  # every bundled model with its measured facts
        meta = read_metadata(path)
        assert f"  {name}" in listing
        assert f"Set5 x4: {float(meta['set5_x4_psnr']):.2f} dB" in listing
        assert f"held-out validation x2 and x4: {float(meta['val_psnr']):.2f} dB" in listing
        assert meta["training"] in listing and meta["trained_on"] in listing
        with torch.device("meta"):
            parameters = build_model(read_model_config(meta, path)).num_parameters()
        assert f"parameters: {parameters:,}" in listing and "precisions: fp32, bf16, fp16" in listing


# --- hardening: no data loss, limits, streaming, signals ------------------------------


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, photo, model_file, capsys):
    original = photo.read_bytes()
    model = ["--model", model_file]
    assert run("upscale", photo, "--scale", "2", "-o", photo, *model) == 2
    assert "is the input" in capsys.readouterr().err
    assert run("upscale", photo, "--scale", "2", "--out-dir", photo.parent, *model) == 2
    assert "is the input" in capsys.readouterr().err
    assert photo.read_bytes() == original


def test_two_outputs_with_one_name_are_refused(tmp_path, photo, model_file, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "out").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "x.png").write_bytes(photo.read_bytes())
    args = ["upscale", tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "--scale", "2", "--out-dir", tmp_path / "out"]
    assert run(*args, "--model", model_file) == 2
    err = capsys.readouterr().err.strip()
    assert "would both be written there" in err and "\n" not in err, err
    assert list((tmp_path / "out").iterdir()) == []


def png_header_only(path, height, width):
    """A small PNG file whose header declares height x width 8-bit gray pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def test_inputs_over_the_pixel_limit_are_refused_from_their_header(tmp_path, model_file, capsys):
    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, 13000, 13000)
    start = time.perf_counter()
    assert run("upscale", bomb, "--size", "10x10", "-o", tmp_path / "o.png", "--model", model_file) == 2
    err = capsys.readouterr().err.strip()
    assert "13000x13000" in err and "--allow-huge" in err and "\n" not in err, err
    assert time.perf_counter() - start < 5  # never decoded (decoding takes minutes and gigabytes)


def test_format_size_limits_are_checked_up_front(tmp_path, photo, model_file, capsys):
    out = tmp_path / "wide.webp"
    assert run("upscale", photo, "--size", "20x17000", "-o", out, "--model", model_file) == 2
    assert "at most 16383 pixels" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("kind", ["rgb", "gray", "alpha", "16-bit", "jpeg"])
def test_streamed_output_equals_the_api_output(tmp_path, photo, model_file, kind, monkeypatch):
    """Bands of a few rows (many encoder windows) give the pixels of one in-memory upscale."""
    import liifsr.tiling as tiling
    from liifsr.imageio import read_image
    from liifsr.inference import upscale_array
    from liifsr.zoo import load_model

    monkeypatch.setattr(tiling, "BAND_PIXELS", 700)
    rgb = np.asarray(Image.open(photo))
    source, suffix = tmp_path / "in.png", ".png"
    if kind == "gray":
        Image.fromarray(rgb[..., 0]).save(source)
    elif kind == "alpha":
        Image.fromarray(np.dstack([rgb, rgb[..., 1]])).save(source)
    elif kind == "16-bit":
        import png

        deep = rgb.astype(np.uint16) * 257 + 3
        png.Writer(rgb.shape[1], rgb.shape[0], bitdepth=16, greyscale=False).write(
            open(source, "wb"), deep.reshape(rgb.shape[0], -1).tolist())
    else:
        Image.fromarray(rgb).save(source)
        suffix = ".jpg" if kind == "jpeg" else suffix
    out = tmp_path / f"out{suffix}"
    assert run("upscale", source, "--size", "53x71", "-o", out, "--model", model_file) == 0
    model = load_model(model_file)
    loaded = read_image(source)
    expected, alpha = upscale_array(model, loaded.rgb, loaded.alpha, size=(53, 71))
    written = read_image(out)
    assert written.bit_depth == loaded.bit_depth and written.grayscale == loaded.grayscale
    if kind == "gray":
        expected = expected.mean(-1, keepdims=True).repeat(3, -1)
    level = 1 / (255 if loaded.bit_depth == 8 else 65535)
    tolerance = 0.05 if kind == "jpeg" else 1.01 * level  # rounding; JPEG is lossy
    assert np.abs(written.rgb - expected).max() <= tolerance
    if kind == "alpha":
        assert np.abs(written.alpha - alpha).max() <= 1.01 * level


def test_files_get_the_umask_mode(tmp_path, photo, model_file):
    old = os.umask(0o022)
    try:
        assert run("convert", FIXTURES / "tiny-full.pth", tmp_path / "m.safetensors") == 0
        assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "o.png", "--model", model_file) == 0
    finally:
        os.umask(old)
    for name in ("m.safetensors", "o.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_allocation_failures_say_how_much_memory_is_needed(tmp_path, photo, model_file, capsys, monkeypatch):
    import liifsr.commands.upscale as upscale_command

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 4800000000 bytes.")

    monkeypatch.setattr(upscale_command, "upscale_image_bands", out_of_memory)
    assert run("upscale", photo, "--scale", "2", "-o", tmp_path / "o.png", "--model", model_file) == 2
    err = capsys.readouterr().err.strip()
    assert "out of memory" in err and "4.47 GiB" in err and "\n" not in err, err
    assert not (tmp_path / "o.png").exists()


def test_a_real_allocation_failure_is_one_line(tmp_path, photo, model_file):
    """Under an address-space limit, a 20000x20000 JPEG (assembled in memory) cannot be allocated."""
    code = (
        "import resource, sys, torch, liifsr.commands.upscale\n"
        "from liifsr.cli import main\n"
        "vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 700 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "o.jpg"
    result = subprocess.run([sys.executable, "-c", code, "upscale", str(photo), "--size", "20000x20000", "-o", str(out),
                             "--model", model_file], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("liifsr: error: out of memory") and result.stderr.count("\n") == 1, result.stderr
    assert "1.12 GiB" in result.stderr and not out.exists()


def slow_job(tmp_path, photo, model_file):
    """A streamed upscale that takes a few seconds: (command, output, environment)."""
    out = tmp_path / "big.png"
    command = [sys.executable, "-m", "liifsr", "upscale", str(photo), "--size", "1500x1500", "-o", str(out),
               "--model", model_file]
    return command, out, {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("delay", [0.15, 0.5, 1.5])
def test_ctrl_c_at_any_moment_is_one_line_and_status_130(tmp_path, photo, model_file, delay):
    """Early signals land while Python imports liifsr and torch, later ones while it works."""
    command, out, env = slow_job(tmp_path, photo, model_file)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the job finished before the signal")  # a much faster machine
    assert (process.returncode, err) == (130, "liifsr: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_ctrl_c_while_importing_the_command_line(tmp_path):
    """A KeyboardInterrupt raised by the very first import of the entry point."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == sys.argv[1]:\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from liifsr import main\n"
        "sys.exit(main(['upscale', 'x.png', '--scale', '2', '-o', 'y.png']))\n"
    )
    for module in ("liifsr.cli", "torch"):
        result = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, cwd=tmp_path)
        assert (result.returncode, result.stderr) == (130, "liifsr: interrupted\n"), module


def test_sigterm_while_writing_removes_the_temporary_file(tmp_path, photo, model_file):
    command, out, env = slow_job(tmp_path, photo, model_file)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".big.*.tmp.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the streamed PNG is being written
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the job finished before the signal")
    assert (process.returncode, err) == (143, "liifsr: terminated\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_help_is_fast_and_imports_neither_torch_nor_yaml():
    code = ("import sys, time\nstart = time.perf_counter()\nfrom liifsr import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'yaml' not in sys.modules, 'heavy import'\n"
            "print(time.perf_counter() - start, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert float(result.stderr.split()[-1]) < 1.0  # about 0.03 s here; torch alone takes over a second


def test_liif_checkpoint_errors_are_one_line(tmp_path, capsys):
    import torch as _torch

    full = _torch.load(FIXTURES / "tiny-full.pth", weights_only=True)
    target = tmp_path / "x.safetensors"
    cases = {
        "no-encoder": ("encoder_spec", lambda c: c["model"]["args"].pop("encoder_spec")),
        "no-hidden": ("hidden_list", lambda c: c["model"]["args"]["imnet_spec"]["args"].pop("hidden_list")),
        "not-tensor": ("is not a tensor", lambda c: c["model"]["sd"].update({"imnet.layers.0.weight": "text"})),
        "huge": ("parameters, more than", lambda c: c["model"]["args"]["imnet_spec"]["args"].update(hidden_list=[100000] * 3)),
    }
    for name, (message, damage) in cases.items():
        checkpoint = _torch.load(FIXTURES / "tiny-full.pth", weights_only=True)
        damage(checkpoint)
        path = tmp_path / f"{name}.pth"
        _torch.save(checkpoint, path)
        assert_fails(capsys, ["convert", path, target], message, target)
    evil = tmp_path / "evil.pth"
    _torch.save({"model": full["model"], "extra": Path("x")}, evil)  # a pickled object: refused by weights_only
    assert_fails(capsys, ["convert", evil, target], "not loaded, for safety", target)
    disguised = tmp_path / "liif.ckpt"  # a LIIF checkpoint under another extension: read by content
    disguised.write_bytes((FIXTURES / "tiny-full.pth").read_bytes())
    assert run("convert", disguised, target) == 0


def collection(root: Path) -> Path:
    """A folder tree of good images, a corrupt one, a text file and a link out of the tree."""
    rng = np.random.default_rng(0)
    (root / "in" / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / "in" / "wide.png")
    Image.fromarray(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(root / "in" / "sub" / "tall.jpg")
    (root / "in" / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "in" / "notes.txt").write_text("not an image")
    outside = root / "outside.png"
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(outside)
    (root / "in" / "link.png").symlink_to(outside)
    return root / "in"


def test_a_folder_with_a_corrupt_file_is_done_except_it_and_resumes_with_skip_existing(tmp_path, model_file, capsys):
    source, out = collection(tmp_path), tmp_path / "out"
    argv = ["upscale", str(source), "--out-dir", str(out), "--long-side", "80", "--ext", "webp", "--model", str(model_file)]
    assert main(argv) == 2  # one file failed
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "failed:" in line] == [
        f"liifsr upscale: failed: cannot read '{source / 'sub' / 'broken.png'}': Truncated File Read (check the file)"]
    assert err[-1].startswith("liifsr upscale: 2 done, 0 skipped, 1 failed, ")
    written = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert written == [Path("sub/tall.webp"), Path("wide.webp")]  # the tree mirrored; no link followed out, no text
    sizes = {name: Image.open(out / name).size for name in written}
    assert sizes == {Path("wide.webp"): (80, 60), Path("sub/tall.webp"): (40, 80)}  # (W, H): the long side 80
    assert all(Image.open(out / name).format == "WEBP" for name in written)
    before = {name: (out / name).stat().st_mtime_ns for name in written}
    assert main([*argv, "--skip-existing"]) == 2  # the corrupt file still fails
    assert capsys.readouterr().err.splitlines()[-1].startswith("liifsr upscale: 0 done, 2 skipped, 1 failed, ")
    assert {name: (out / name).stat().st_mtime_ns for name in written} == before  # nothing redone
    (source / "sub" / "broken.png").unlink()
    assert main([*argv, "--skip-existing", "--suffix", "_x"]) == 0  # other names: all done again
    assert sorted(p.name for p in out.rglob("*_x.webp")) == ["tall_x.webp", "wide_x.webp"]


def test_an_interrupted_collection_resumes_losing_and_redoing_nothing(tmp_path, model_file, capsys, monkeypatch):
    from liifsr.commands import upscale as upscale_command

    source, out = collection(tmp_path), tmp_path / "out"
    (source / "sub" / "broken.png").unlink()
    argv = ["upscale", str(source), "--out-dir", str(out), "--scale", "2", "--model", str(model_file), "--skip-existing"]
    real, done = upscale_command.upscale_one, []

    def interrupted_after_one(*args, **kwargs):
        if done:
            raise KeyboardInterrupt
        real(*args, **kwargs)
        done.append(args[1])

    monkeypatch.setattr(upscale_command, "upscale_one", interrupted_after_one)
    assert main(argv) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "liifsr: interrupted"  # and the summary before it says what was left
    assert err[-2].startswith("liifsr upscale: 1 done, 0 skipped, 0 failed, 1 left, ") and "--skip-existing" in err[-2], err
    assert [p.name for p in out.rglob("*") if p.is_file()] == [done[0].name]  # no partial second file
    first = (out / done[0].relative_to(source)).stat().st_mtime_ns
    monkeypatch.setattr(upscale_command, "upscale_one", real)
    assert main(argv) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith("liifsr upscale: 1 done, 1 skipped, 0 failed, ")
    assert (out / done[0].relative_to(source)).stat().st_mtime_ns == first


@pytest.mark.parametrize("ext,quality,mode", [("jpg", None, "JPEG"), ("jpg", "40", "JPEG"), ("tiff", None, "TIFF"),
                                              ("png", None, "PNG"), ("webp", "50", "WEBP")])
def test_output_formats_and_quality(tmp_path, model_file, photo, ext, quality, mode):
    (tmp_path / "out").mkdir()
    argv = ["upscale", str(photo), "--out-dir", str(tmp_path / "out"), "--fit", "50x50", "--ext", ext, "--model", str(model_file)]
    assert main([*argv, *(["--quality", quality] if quality else [])]) == 0
    out = tmp_path / "out" / f"{photo.stem}.{ext}"
    assert Image.open(out).format == mode and max(Image.open(out).size) == 50
    if quality:  # lossy at a low quality: smaller than at the default
        default = tmp_path / "default"
        default.mkdir()
        assert main(["upscale", str(photo), "--out-dir", str(default), "--fit", "50x50", "--ext", ext, "--model", str(model_file)]) == 0
        assert out.stat().st_size < (default / out.name).stat().st_size


def test_collection_options_are_checked(tmp_path, model_file, photo, capsys):
    (tmp_path / "empty").mkdir()
    for argv, message in (
        (["upscale", str(tmp_path / "empty"), "--out-dir", str(tmp_path), "--scale", "2"], "holds no images"),
        (["upscale", str(photo), "-o", str(tmp_path / "x.png"), "--scale", "2", "--ext", "jpg"], "--ext and --suffix name outputs"),
        (["upscale", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png"), "--scale", "2"], "-o takes one input file"),
    ):
        assert main([*argv, "--model", str(model_file)]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["upscale", str(photo), "--out-dir", str(tmp_path), "--long-side", "0"])
    with pytest.raises(SystemExit):
        main(["upscale", str(photo), "--out-dir", str(tmp_path), "--scale", "2", "--quality", "101"])


def test_two_processes_under_torchrun_split_a_folder_and_write_what_one_process_writes(tmp_path, model_file):
    """`torchrun --nproc_per_node 2 -m liifsr upscale DIR`: each rank takes every other file
    of the sorted list; together they write exactly the files, and the pixels, of a
    one-process run (both with one thread per process: the same kernels on the same shapes)."""
    source = collection(tmp_path)
    (source / "sub" / "broken.png").unlink()
    for index in range(3):  # five images in all
        Image.fromarray(np.random.default_rng(index).integers(0, 256, (20 + index, 24, 3), dtype=np.uint8)).save(
            source / f"extra{index}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["upscale", str(source), "--scale", "1.5", "--model", str(model_file), "--skip-existing"]
    one = subprocess.run([sys.executable, "-m", "liifsr", *common, "--out-dir", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "liifsr"]
    two = subprocess.run([*torchrun, *common, "--out-dir", str(tmp_path / "two")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "(rank 0 of 2): 3 done" in two.stderr and "(rank 1 of 2): 2 done" in two.stderr, two.stderr[-3000:]
    files_one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    files_two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert files_one == files_two and len(files_one) == 5
    for name in files_one:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "one" / name)), np.asarray(Image.open(tmp_path / "two" / name))), name
    again = subprocess.run([*torchrun, *common, "--out-dir", str(tmp_path / "two")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "(rank 0 of 2): 0 done, 3 skipped" in again.stderr  # resumable: nothing redone


@pytest.mark.parametrize("decoder", ["lte", "thermal"])
def test_every_command_takes_the_other_decoders(tmp_path, photo, decoder):
    """LTE and the heat field are models like any other: upscale (the PNG equals the API's
    output), evaluate, compare and convert's counterpart, save and load, all by file."""
    torch.manual_seed(0)
    config = model_preset(f"edsr-{decoder}")
    config.encoder = EDSRConfig(n_resblocks=1, n_feats=8)
    path = tmp_path / f"{decoder}.safetensors"
    save_model(build_model(config), path)
    out = tmp_path / "o.png"
    assert run("upscale", photo, "--scale", "2.5", "-o", out, "--model", path, "--chunk", "500", "--tile", "16") == 0
    expected = upscale(load_model(path), Image.open(photo), scale=2.5, chunk_size=500, tile_size=16)  # the same tiles:
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))  # bf16 (auto) is exact only for the same shapes
    dataset = tmp_path / "Set1" / "HR"
    dataset.mkdir(parents=True)
    Image.open(photo).crop((0, 0, 44, 60)).save(dataset / "a.png")
    assert run("evaluate", "--model", path, "--dataset", dataset.parent, "--scales", "2", "--quiet",
               "--out", tmp_path / "r.json") == 0
    assert run("compare", photo, "--models", path, "--box", "4,4,20,20", "--scale", "2", "-o", tmp_path / "c.png") == 0
    assert (tmp_path / "r.json").is_file() and (tmp_path / "c.png").is_file()


# --- collections never clobber a file nor write outside --out-dir ----------------------


def written_files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_suffix_cannot_lead_out_of_the_out_dir(tmp_path, model_file, capsys):
    """`--suffix '/../x'` is a path, not a suffix: refused before any work, whatever it
    points at; and every output must resolve inside --out-dir (no link in it leads out)."""
    source = collection(tmp_path)
    (source / "sub" / "broken.png").unlink()
    victim = tmp_path / "elsewhere" / "victim.png"
    victim.parent.mkdir()
    victim.write_bytes(b"the user's file")
    out = tmp_path / "out"
    for suffix in ("/../x", "/../../elsewhere/victim", "_x/y", "..", "a..b"):
        with pytest.raises(SystemExit) as exit_info:
            main(["upscale", str(source), "--out-dir", str(out), "--scale", "2", "--suffix", suffix, "--model", model_file])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "--suffix" in err and "inside --out-dir" in err and "\n" not in err, err
    assert not out.exists() and victim.read_bytes() == b"the user's file"
    out.mkdir()
    (out / "sub").symlink_to(victim.parent)  # the mirrored tree would write through the link
    assert main(["upscale", str(source), "--out-dir", str(out), "--scale", "2", "--model", model_file]) == 2
    err = capsys.readouterr().err.strip()
    assert "outside --out-dir" in err and "\n" not in err, err
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.png"] and written_files(out) == []


def test_outputs_that_collide_after_the_format_or_the_suffix_are_refused_before_any_work(tmp_path, photo, model_file,
                                                                                          capsys, monkeypatch):
    """`a.png` and `a.tif` with --ext png (or a 16-bit TIFF, written as PNG) are one output;
    an input named like another's output with --suffix is that output: all refused before
    the model is loaded, nothing written, and the user's photograph untouched."""
    from liifsr.commands import upscale as upscale_command

    def no_model(args):
        raise AssertionError("the model was loaded: the check came after work began")

    monkeypatch.setattr(upscale_command, "open_for", no_model)
    pixels = np.asarray(Image.open(photo))
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "a.png")
    Image.fromarray(pixels).save(folder / "a.tif")
    argv = ["upscale", str(folder), "--out-dir", str(out), "--scale", "2", "--model", model_file]
    assert main([*argv, "--ext", "png"]) == 2
    err = capsys.readouterr().err.strip()
    assert "would both be written there" in err and "a.tif" in err and "\n" not in err, err
    (folder / "a.tif").unlink()
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(folder / "a.tif")  # 16-bit gray: written as PNG
    assert main(argv) == 2
    assert "would both be written there" in capsys.readouterr().err
    assert written_files(out) == []
    # The user's own a_x2.png beside a.tif, written into their own folder with --suffix _x2.
    (folder / "a.png").rename(folder / "a_x2.png")
    mine = (folder / "a_x2.png").read_bytes()
    explicit = ["upscale", str(folder / "a.tif"), str(folder / "a_x2.png"), "--out-dir", str(folder), "--suffix", "_x2",
                "--scale", "2", "--model", model_file]
    assert main(explicit) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["upscale", str(folder), "--out-dir", str(folder), "--suffix", "_x2", "--scale", "2"]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert (folder / "a_x2.png").read_bytes() == mine and sorted(p.name for p in folder.iterdir()) == ["a.tif", "a_x2.png"]


def test_an_out_dir_inside_the_input_folder_is_refused_on_every_run(tmp_path, model_file, capsys):
    """Accepted once, its outputs would be inputs of the next run (--skip-existing): refused
    from the first run, in one line, nothing written."""
    source = collection(tmp_path)
    for extra in ([], ["--skip-existing"]):
        assert main(["upscale", str(source), "--out-dir", str(source / "big"), "--scale", "2", "--model", model_file,
                     *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "inside the input folder" in err and "\n" not in err, err
        assert not (source / "big").exists()


def test_a_file_swapped_for_a_link_out_of_the_folder_after_listing_is_not_read(tmp_path, model_file, capsys, monkeypatch):
    """The folder is listed, then (before its turn) a file becomes a link to a private file
    outside: it is refused where it is opened, and nothing of the private file is written."""
    from liifsr.commands import upscale as upscale_command

    source, out = collection(tmp_path), tmp_path / "out"
    (source / "sub" / "broken.png").unlink()
    private = tmp_path / "private.png"
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(private)
    real_find = upscale_command.find_inputs

    def find_then_swap(inputs):
        found = real_find(inputs)
        (source / "wide.png").unlink()
        (source / "wide.png").symlink_to(private)
        return found

    monkeypatch.setattr(upscale_command, "find_inputs", find_then_swap)
    assert main(["upscale", str(source), "--out-dir", str(out), "--scale", "2", "--model", model_file]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "failed:" in line] == [
        f"liifsr upscale: failed: cannot read '{source / 'wide.png'}': it leads out of the folder '{source}' (a link "
        "changed after the folder was listed) (upscale the file it leads to by its own name if you mean it)"]
    assert written_files(out) == [Path("sub/tall.jpg")]


def test_skip_existing_counts_only_complete_outputs(tmp_path, model_file, capsys):
    """An empty file or a folder at an output's path is no output of liifsr's: the empty
    file is replaced, the folder is reported as a failure, neither counts as done."""
    source, out = collection(tmp_path), tmp_path / "out"
    (source / "sub" / "broken.png").unlink()
    (out / "sub" / "tall.jpg").mkdir(parents=True)
    (out / "wide.png").write_bytes(b"")
    argv = ["upscale", str(source), "--out-dir", str(out), "--scale", "2", "--model", model_file, "--skip-existing"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("liifsr upscale: 1 done, 0 skipped, 1 failed, "), err
    assert any("tall.jpg" in line and "directory" in line for line in err if "failed:" in line), err
    assert Image.open(out / "wide.png").size == (80, 60)


def test_a_launcher_environment_that_does_not_fit_is_refused(tmp_path, photo, model_file, capsys, monkeypatch):
    """RANK beyond WORLD_SIZE (often left in a shell) would take no file and report success;
    -o under several processes would have each write the one file. Both refused, named."""
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    assert main(["upscale", str(photo), "--out-dir", str(out), "--scale", "2", "--model", model_file]) == 2
    err = capsys.readouterr().err.strip()
    assert "RANK=5 must be below WORLD_SIZE=2" in err and "unset RANK" in err and "\n" not in err, err
    monkeypatch.setenv("RANK", "1")
    assert main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--scale", "2", "--model", model_file]) == 2
    err = capsys.readouterr().err.strip()
    assert "-o writes one file" in err and "WORLD_SIZE" in err, err
    assert not out.exists() and not (tmp_path / "o.png").exists()


def test_names_with_a_newline_are_printed_escaped(tmp_path, photo, model_file, capsys):
    """A newline in a file name would split a line of output in two (or fake one)."""
    folder, out, good, bad = tmp_path / "in", tmp_path / "out", "a\nb.png", "c\nd.png"
    folder.mkdir()
    (folder / good).write_bytes(photo.read_bytes())
    (folder / bad).write_bytes(b"not an image")
    assert main(["upscale", str(folder), "--out-dir", str(out), "--scale", "2", "--model", model_file]) == 2
    captured = capsys.readouterr()
    assert captured.out == f"{str(folder / good)!r} -> {str(out / good)!r} (122x94, HEIGHTxWIDTH)\n"
    failed = [line for line in captured.err.splitlines() if "failed:" in line]
    assert len(failed) == 1 and repr(str(folder / bad)) in failed[0], captured.err


def test_an_out_dir_that_is_a_file_is_one_error_before_any_work(tmp_path, model_file, capsys):
    source = collection(tmp_path)
    (tmp_path / "out").write_text("a file")
    assert main(["upscale", str(source), "--out-dir", str(tmp_path / "out"), "--scale", "2", "--model", model_file]) == 2
    err = capsys.readouterr().err
    assert err == f"liifsr: error: --out-dir {str(tmp_path / 'out')!r} is a file, not a folder (give a new or existing folder)\n"


def test_upscale_files_takes_one_folder_name_as_one_input(tmp_path, model_file):
    from liifsr.inference import upscale_files

    source = collection(tmp_path)
    (source / "sub" / "broken.png").unlink()
    results = list(upscale_files(load_model(model_file), str(source), scale=1.5))
    assert [r.source for r in results] == [source / "sub" / "tall.jpg", source / "wide.png"]
    assert all(r.error is None for r in results)
