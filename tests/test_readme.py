"""The README's commands are the ones CI runs, name real files, and run as written.

Every `liifsr` command in the README's bash blocks goes through the real argument
parser. The cheap ones (everything but training, downloads and commands on a training
run's files) also run, in a sandbox laid out like a checkout: small copies of the
bundled photograph stand for the user's images and for the benchmark sets in
`../shared`, so the whole file runs in seconds. The Python block runs there too.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import conftest
import numpy as np
import pytest
import torch
from PIL import Image

from liifsr.cli import build_parser, main
from liifsr.imageio import sample_image

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIXTURES = ROOT / "tests" / "fixtures" / "liif-reference"


def test_ci_runs_the_readme_commands_verbatim():
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    # set-up, the browser test's packages, the tests, the quick start on the default model
    assert len(commands) == 4 and "chromium-driver" in commands[1] and "pytest" in commands[2]
    assert commands[3].startswith(".venv/bin/liifsr upscale ") and "--model" not in commands[3]
    for command in commands:
        assert f"\n{command}\n" in README, command


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


ENVIRONMENT = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")  # VAR=value before a command


def shell_commands() -> list[list[str]]:
    """The README's bash commands as argument lists: continuation lines joined, comments
    and leading VAR=value settings dropped."""
    commands = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and ENVIRONMENT.fullmatch(words[0]):
                words = words[1:]
            if words:
                commands.append(words)
    return commands


def liifsr_commands() -> list[list[str]]:
    return [words[1:] for words in shell_commands() if Path(words[0]).name == "liifsr"]


def runs_cheaply(argv: list[str]) -> bool:
    """Training and downloads take hours, a server runs until stopped; commands on a run's files need a trained run,
    and those on a folder of photographs (`photos/`, `/shared/...`) upscale them to 4K (tests/commands/test_cli_upscale.py
    runs collections)."""
    return argv[0] not in ("train", "data", "serve") and not any(
        arg.startswith(("runs/", "photos/", "/shared/")) for arg in argv)


def test_the_readme_shows_every_command_and_names_real_files():
    commands = shell_commands()
    shown = {argv[0] for argv in liifsr_commands()}
    assert shown >= {"upscale", "models", "convert", "train", "evaluate", "compare", "plot-log", "data", "serve", "export"}
    for words in commands:
        for word in words:
            if re.fullmatch(r"(configs|tools|benchmarks|src)/\S+", word):
                assert (ROOT / word).exists(), word
        if words[0] not in ("liifsr", ".venv/bin/liifsr", ".venv/bin/python", ".venv/bin/ruff", "python3", "mkdir", "torchrun", "apt-get",
                            "tools/train_on_gpu.sh", "tools/train_experiment.sh", "tools/photo_report.sh"):
            pytest.fail(f"unexpected command in the README: {' '.join(words)}")


@pytest.mark.parametrize("argv", liifsr_commands(), ids=" ".join)
def test_every_readme_command_parses(argv):
    parser, run = build_parser(argv)
    parser.parse_args(argv)
    assert run is not None


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A checkout-like folder with small stand-ins for the files the README's commands read."""
    work = tmp_path / "liifsr"
    photo = Image.open(sample_image()).convert("RGB")
    (work / "src" / "liifsr" / "assets").mkdir(parents=True)
    photo.crop((180, 60, 212, 92)).save(work / "src" / "liifsr" / "assets" / "astronaut.png")
    for name in ("photo.png", "a.png", "b.jpg"):
        photo.crop((200, 100, 232, 128)).save(work / name)
    photo.crop((100, 40, 340, 280)).save(work / "image.png")
    shutil.copy(FIXTURES / "tiny-full.pth", work / "liif_edsr.pth")
    for name in ("Set5", "Set14"):
        hr = tmp_path / "shared" / "data" / "benchmark" / name / "HR"
        hr.mkdir(parents=True)
        photo.crop((150, 150, 186, 186)).save(hr / "img.png")
    monkeypatch.chdir(work)
    # One thread: these tiny jobs gain nothing from more, and on a busy machine spinning
    # worker threads slow them down many times over.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield work
    torch.set_num_threads(threads)


def test_the_cheap_readme_commands_run_as_written(sandbox: Path, capsys: pytest.CaptureFixture[str]):
    ran = []
    for words in shell_commands():
        if words[0] == "mkdir":
            (sandbox / words[-1]).mkdir(parents=True, exist_ok=True)
        elif Path(words[0]).name == "liifsr" and runs_cheaply(words[1:]):
            assert main(words[1:]) == 0, (" ".join(words), capsys.readouterr().err)
            ran.append(words[1])
    assert {"upscale", "models", "convert", "evaluate", "compare"} <= set(ran)
    assert Image.open(sandbox / "astronaut-x3.5.png").size == (112, 112)
    assert Image.open(sandbox / "out" / "b.jpg").size == (160, 120)
    assert (sandbox / "fig5.png").exists() and (sandbox / "fig6.png").exists() and (sandbox / "table.json").exists()


def test_the_readme_python_block_runs(sandbox: Path):
    (code,) = blocks("python")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["big"].size == (112, 98)
    assert namespace["arr"].shape == (120, 160, 3) and namespace["arr"].dtype == np.uint8
    assert tuple(namespace["out"].shape) == (1, 3, 64, 96)
    assert tuple(namespace["pred"].shape) == (1, 4096, 3)


def outcome(call) -> tuple[type | None, str]:
    """What a test calling `call` would end as; a skip must not escape and pass for a skipped test."""
    try:
        call()
    except (pytest.skip.Exception, pytest.fail.Exception) as error:
        return type(error), str(error)
    return None, ""


def test_reference_tests_skip_without_shared_but_fail_in_ci(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    (tmp_path / "data").mkdir()
    assert conftest.shared_path("data") == tmp_path / "data"
    missing = lambda: conftest.shared_path("fixtures", "missing.pth")  # noqa: E731

    monkeypatch.delenv("CI", raising=False)
    kind, message = outcome(missing)
    assert kind is pytest.skip.Exception
    assert message.startswith("needs ../shared: ") and "missing.pth is absent" in message
    monkeypatch.setenv("CI", "true")
    kind, message = outcome(missing)
    assert kind is pytest.fail.Exception and "CI must provide it" in message
