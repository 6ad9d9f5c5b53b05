"""The README's commands are the ones CI runs, and they name real files."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    # set-up, the browser test's packages, the tests
    assert len(commands) == 3 and "chromium-driver" in commands[1] and "pytest" in commands[2]
    for command in commands:
        assert f"\n{command}\n" in readme, command
