"""ImageError, the one error of image files, and its messages: one line naming the file, the
problem and the fix."""

from __future__ import annotations

import os

from liifsr.files import one_line

_FIX_CORRUPT = "re-export or re-download it"


class ImageError(ValueError):
    """A problem with an image file the user gave us, with a one-line message.

    Subclasses ValueError so callers that only care about "bad input" can
    catch it generically; the CLI catches it to print the message alone.
    """


def _quote(path: str | os.PathLike[str]) -> str:
    """Quote a path for a message; repr escapes newlines and control characters."""
    return repr(os.fspath(path))


def _read_error(path: str | os.PathLike[str], problem: str, fix: str) -> ImageError:
    return ImageError(f"cannot read {_quote(path)}: {one_line(problem)} ({fix})")


def _write_error(path: str | os.PathLike[str], problem: str, fix: str) -> ImageError:
    return ImageError(f"cannot write {_quote(path)}: {one_line(problem)} ({fix})")


def _os_error_problem(error: OSError) -> str:
    """The useful part of an OSError (strerror without the repeated filename)."""
    return error.strerror or str(error) or type(error).__name__
