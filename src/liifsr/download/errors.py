"""How a download fails: `DownloadError`, one line that says what to do."""

from __future__ import annotations

from pathlib import Path


class DownloadError(RuntimeError):
    """A download or extraction failed; the message is one line saying what to do."""


def interrupted(name: str, part: Path, reason: object) -> DownloadError:
    """A download cut short: the .part kept for the next run to resume, or nothing saved."""
    kept = part.stat().st_size if part.exists() else 0
    if kept:
        return DownloadError(
            f"download of {name} interrupted ({reason}); the partial file {part} ({kept} bytes) "
            "is kept, rerun the same command to resume"
        )
    return DownloadError(f"download of {name} failed ({reason}); nothing was saved, rerun to retry")
