"""The command line: every subcommand's help, one-line usage errors, Ctrl-C and pipes, and the allocator setting."""

import os
import platform
import signal

import pytest

from liifsr.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: liifsr " + command in capsys.readouterr().out


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", "x.png", "--scale", "2"])  # no output given
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--help" in err


def test_help_does_not_import_torch():
    """`liifsr --help` stays fast: no command module (and so no torch) is imported."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from liifsr.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not any(m.startswith('liifsr.') and m not in ('liifsr.cli', 'liifsr.config') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('liifsr'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_each_command_loads_its_own_functions():
    for name, command in COMMANDS.items():
        configure, run = command.load()
        assert callable(configure) and callable(run), name


def test_a_closed_pipe_ends_quietly():
    """`liifsr models | head -1`: the reader leaves early; no traceback, SIGPIPE's status."""
    import subprocess
    import sys

    code = "import sys\nfrom liifsr.cli import main\nsys.exit(main(['models']))\n"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the first line is written
    assert process.wait() == 141
    assert process.stderr.read() == b""


def test_ctrl_c_during_the_imports_waits_for_them_to_finish():
    """A SIGINT inside `ctrl_c_held` lets the block run to its end, then raises KeyboardInterrupt."""
    from liifsr.cli import ctrl_c_held

    finished = False
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished = True  # the rest of the block (the imports) still runs
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_held_keeps_an_ignored_sigint_ignored():
    """Background jobs (`liifsr ... &`) inherit an ignored SIGINT; holding it must not revive it."""
    from liifsr.cli import ctrl_c_held

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_main_holds_ctrl_c_until_the_command_module_is_imported(monkeypatch, capsys):
    """A SIGINT while `build_parser` imports the command's module (and torch) lets the
    import finish, then ends the command as interrupted."""
    import liifsr.cli as cli

    finished = []
    real_build_parser = cli.build_parser

    def interrupted_build_parser(argv):
        os.kill(os.getpid(), signal.SIGINT)
        result = real_build_parser(argv)
        finished.append(True)
        return result

    monkeypatch.setattr(cli, "build_parser", interrupted_build_parser)
    assert cli.main(["models"]) == 130
    assert finished and capsys.readouterr().err == "liifsr: interrupted\n"


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
        "from liifsr.cli import keep_freed_memory\n"
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

    from liifsr import cli

    real_glibc = cli.glibc()
    for error in (ValueError("unrecognized configuration name"), OSError(22, "EINVAL"), AttributeError("confstr")):
        with monkeypatch.context() as patch:
            def raising(name, error=error):
                raise error
            patch.setattr(os, "confstr", raising)
            assert cli.glibc() is False
            patch.setattr(ctypes, "CDLL", lambda *args: pytest.fail("mallopt called off glibc"))
            assert cli.keep_freed_memory() is False
    with monkeypatch.context() as patch:
        patch.setattr(os, "confstr", lambda name: None)  # a name without a value
        assert cli.glibc() is False
    if real_glibc:  # on glibc, but the C library cannot be opened
        def no_library(*args):
            raise TypeError("CDLL(None) is a TypeError on Windows")
        monkeypatch.setattr(ctypes, "CDLL", no_library)
        assert cli.keep_freed_memory() is False
