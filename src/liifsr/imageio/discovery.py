"""Finding the images of a collection: the image files under a folder, and every file and
folder a command was given, with each image's path relative to its input."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from liifsr.imageio.errors import ImageError, _os_error_problem, _quote
from liifsr.imageio.formats import IMAGE_EXTENSIONS


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files under `folder` (by extension), recursively, sorted. Symbolic links
    are not followed out of it: linked folders are not entered, and a linked file counts
    only if it points inside `folder`. A subfolder that cannot be listed is an error naming
    it, not a part of the collection silently left out."""
    root = Path(folder)
    inside = root.resolve()
    found = []

    def unlisted(error: OSError) -> None:
        where = error.filename if error.filename is not None else root
        raise ImageError(f"cannot list folder {_quote(where)} inside {_quote(root)}: {_os_error_problem(error)} "
                         "(fix its permissions, or move it out of the input folder)")

    for directory, subdirectories, names in os.walk(root, onerror=unlisted, followlinks=False):
        subdirectories.sort()
        for name in names:
            path = Path(directory) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and path.resolve().is_relative_to(inside):
                found.append(path)
    return sorted(found)


class Found(NamedTuple):
    """One image of a collection: its path, its path relative to the input that named it
    (its name, for a file given by name), and that input folder (None for a file)."""

    path: Path
    relative: Path
    folder: Path | None


def find_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Found]:
    """Every input file and every image under every input folder (`find_images`), in the
    order given; a folder without images is an error. One path alone is one input (not an
    iterable of its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = []
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"inputs are paths (str or Path), not {type(item).__name__} {item!r}")
        item = Path(item)
        if item.is_dir():
            images = find_images(item)
            if not images:
                raise ImageError(f"folder {str(item)!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            found += [Found(image, image.relative_to(item), item) for image in images]
        else:
            found.append(Found(item, Path(item.name), None))
    return found


def collect_images(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """(file, its path relative to its input) for every input file (relative: its name) and
    every image under every input folder (`find_inputs`); a folder without images is an error."""
    return [(item.path, item.relative) for item in find_inputs(inputs)]
