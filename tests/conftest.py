import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "liif-reference"
SHARED = TESTS.parent.parent / "shared"
# Skip reasons of tests that need ../shared start with this, so the summary can count them.
NEEDS_SHARED = "needs ../shared"

# The literal LIIF formulation lives beside the tests; make it importable.
sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def cases():
    import numpy as np

    return np.load(FIXTURES / "cases.npz")


def shared_path(*parts: str) -> Path:
    """A path under ../shared; when it is absent the test skips, or fails in CI (`CI` set), where it must be there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"{NEEDS_SHARED}: {path} is absent (../shared holds the reference fixtures and data for developers and CI)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must provide it", pytrace=False)
        pytest.skip(reason)
    return path


def pytest_terminal_summary(terminalreporter):
    """Say in one line how many reference tests did not run, next to the `-ra` reasons."""
    skipped = terminalreporter.stats.get("skipped", [])
    count = sum(NEEDS_SHARED in str(report.longrepr) for report in skipped)
    if count:
        terminalreporter.write_line(
            f"{count} reference test(s) SKIPPED: ../shared is absent; they run (and fail instead of skipping) in CI",
            yellow=True, bold=True,
        )
