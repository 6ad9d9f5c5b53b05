"""The allocator setting every command runs with (`liifsr.allocator`)."""

import os
import platform

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_decoding_again_reuses_freed_memory_instead_of_faulting_in_fresh_pages():
    """The same upscale three times in a fresh process: with `keep_freed_memory` the third
    one finds its blocks already mapped; with glibc's defaults it faults most pages in again.
    In fp32, whose 8 MiB blocks every CPU decodes alike (bf16 takes other paths where the
    CPU has no bf16 instructions)."""
    import subprocess
    import sys

    code = (
        "import resource, sys, torch\n"
        "from liifsr.allocator import keep_freed_memory\n"
        "from liifsr.models import model_preset\n"
        "from liifsr.tiling import upscale_tensor\n"
        "from liifsr.models.liif import LIIF\n"
        "if sys.argv[1] == 'keep':\n    assert keep_freed_memory()\n"
        "torch.manual_seed(0)\n"
        "model, image = LIIF(model_preset('edsr-liif-relu')).eval(), torch.rand(1, 3, 64, 64)\n"
        "faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(3):\n"
        "    start = faults()\n"
        "    upscale_tensor(model, image, (256, 256), precision='fp32')\n"
        "print(faults() - start)\n"
    )
    counts = {}
    for mode in ("keep", "default"):
        result = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        counts[mode] = int(result.stdout)
    print(f"pages faulted in by the third decode: {counts}")  # shown with pytest -s
    assert counts["keep"] < 0.1 * counts["default"], counts


def test_keep_freed_memory_leaves_other_c_libraries_alone(monkeypatch) -> None:
    """musl, macOS and Windows: no mallopt call (glibc's option numbers mean nothing there),
    whatever error asking for the C library or its name raises."""
    import ctypes

    from liifsr import allocator

    real_glibc = allocator.glibc()
    for error in (ValueError("unrecognized configuration name"), OSError(22, "EINVAL"), AttributeError("confstr")):
        with monkeypatch.context() as patch:
            def raising(name, error=error):
                raise error
            patch.setattr(os, "confstr", raising)
            assert allocator.glibc() is False
            patch.setattr(ctypes, "CDLL", lambda *args: pytest.fail("mallopt called off glibc"))
            assert allocator.keep_freed_memory() is False
    with monkeypatch.context() as patch:
        patch.setattr(os, "confstr", lambda name: None)  # a name without a value
        assert allocator.glibc() is False
    if real_glibc:  # on glibc, but the C library cannot be opened
        def no_library(*args):
            raise TypeError("CDLL(None) is a TypeError on Windows")
        monkeypatch.setattr(ctypes, "CDLL", no_library)
        assert allocator.keep_freed_memory() is False
