"""Progress bars: on stderr, shown after a second, and gone before an error line.

Every long loop of liifsr (upscaling, evaluation, training, loading images,
downloads) makes its bar here, so they all behave alike: a job that ends within
`DELAY_SECONDS` prints nothing; a bar never stays on screen (`leave=False`), and used
as a context manager it is closed on the way out of an exception, so the one-line
error that follows is the only line left.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

DELAY_SECONDS = 1.0


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool | None = None, **options: Any) -> tqdm:
    """A tqdm bar on stderr. `enabled`: True shows it, False hides it, None (the command
    line's choice) shows it when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    options = {"delay": DELAY_SECONDS, "leave": False, "file": sys.stderr, "dynamic_ncols": True, **options}
    return tqdm(iterable, disable=not enabled, **options)


def close_all() -> None:
    """Close every open bar (clearing its line), so that an error line printed next stands alone.

    For bars a failing loop did not close itself; tqdm keeps its live bars in `_instances`.
    """
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
