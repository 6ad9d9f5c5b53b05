from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "liif-reference"
SHARED = TESTS.parent.parent / "shared"


@pytest.fixture(scope="session")
def cases():
    import numpy as np

    return np.load(FIXTURES / "cases.npz")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (fixtures and data for developers and CI) is not laid out here")
    return path
