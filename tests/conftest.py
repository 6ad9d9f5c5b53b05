import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "liif-reference"
SHARED = TESTS.parent.parent / "shared"
# Skip reasons of tests that need ../shared start with this, so the summary can count them.
NEEDS_SHARED = "needs ../shared"


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
    """Name every reference test that did not run (`-ra` groups them under conftest's line)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NEEDS_SHARED in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} reference test(s) SKIPPED, ../shared is absent (in CI they fail instead):", yellow=True, bold=True
        )
        for report in skipped:
            terminalreporter.write_line(f"  {report.nodeid}", yellow=True)


@pytest.fixture(params=["fused", "plain"])
def kernel_branch(request, monkeypatch) -> str:
    """Run a test on both branches of liifsr.kernels: the fused oneDNN ops (where the
    environment has not switched them off) and the plain PyTorch ops."""
    from liifsr import kernels

    if request.param == "plain":
        monkeypatch.setenv(kernels.SWITCH, "0")
    return request.param
