"""The command line: the command table, every subcommand's help, one-line usage errors, Ctrl-C and pipes."""

import os
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
        "light = ('liifsr.cli', 'liifsr.config', 'liifsr.signals', 'liifsr.allocator')\n"
        "assert not any(m.startswith('liifsr.') and m not in light for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('liifsr'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_each_command_loads_its_own_functions():
    for name, command in COMMANDS.items():
        configure, run = command.load()
        assert callable(configure) and callable(run), name
        assert (configure.__module__, run.__module__) == (command.module, command.module), name


def test_every_command_is_a_module_of_the_commands_package():
    """Every command has one form: module `liifsr.commands.<name>` (dashes as underscores)
    with `configure_parser` and `run`; the machinery it calls lives elsewhere."""
    import importlib

    for name, command in COMMANDS.items():
        assert command.module == f"liifsr.commands.{name.replace('-', '_')}", name
        module = importlib.import_module(command.module)
        assert callable(getattr(module, "configure_parser", None)) and callable(getattr(module, "run", None)), name


def test_every_module_of_the_commands_package_is_a_command_in_the_table():
    """A command is one module in `liifsr.commands` and one line in COMMANDS (`options.py`
    holds what several share): no command module is left out of the table."""
    from pathlib import Path

    import liifsr.commands

    modules = {f"liifsr.commands.{path.stem}" for path in Path(liifsr.commands.__file__).parent.glob("*.py")}
    named = {command.module for command in COMMANDS.values()}
    assert modules - {"liifsr.commands.__init__", "liifsr.commands.options"} <= named


def test_a_closed_pipe_ends_quietly():
    """`liifsr models | head -1`: the reader leaves early; no traceback, SIGPIPE's status."""
    import subprocess
    import sys

    code = "import sys\nfrom liifsr.cli import main\nsys.exit(main(['models']))\n"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the first line is written
    assert process.wait() == 141
    assert process.stderr.read() == b""


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


def test_a_command_runs_with_its_imports_out_of_the_garbage_collector():
    """The modules a command imports (torch's hundreds of thousands of objects) live as long
    as the process: frozen out of the collector, whose sweeps over them at exit took 0.3 s
    of every command."""
    import subprocess
    import sys

    code = ("import gc, io, contextlib\nfrom liifsr.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['models']) == 0\n"
            "import torch\n"
            "assert gc.get_freeze_count() > 10000, gc.get_freeze_count()\n"
            "assert not any(o is torch.nn.Module for o in gc.get_objects()), 'torch.nn.Module is still collected'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
