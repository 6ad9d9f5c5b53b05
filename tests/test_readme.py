"""The README's commands are the ones CI runs, and CI runs every reference test."""

from pathlib import Path

import pytest

import conftest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert len(commands) == 2
    for command in commands:
        assert f"\n{command}\n" in readme, command


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
