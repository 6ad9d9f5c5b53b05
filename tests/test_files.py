"""Tests for liifsr.files: the output-path check and the atomic writer."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from liifsr import files
from liifsr.files import OutputError, about, atomic_write, check_distinct_outputs, check_output_path, shown
from liifsr.imageio import ImageError


def assert_one_line(excinfo: pytest.ExceptionInfo[OutputError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("report.txt", ("report", "unsupported output format '.txt'", ".json, .csv")),
        ("report", ("no extension", ".json")),
        ("missing/report.json", ("does not exist", "create it first")),
    ],
)
def test_check_output_path_rejects_bad_destinations(tmp_path: Path, name: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(OutputError) as excinfo:
        check_output_path(tmp_path / name, (".json", ".csv"), "report")
    assert_one_line(excinfo, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_check_output_path_rejects_a_folder_and_a_file_as_parent(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    with pytest.raises(OutputError, match="it is a directory"):
        check_output_path(tmp_path / "d.json", (".json",))
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="is not a directory"):
        check_output_path(tmp_path / "f" / "x.json")


def test_check_output_path_accepts_any_case_and_returns_the_path(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "x.JSON", (".json",)) == tmp_path / "x.JSON"
    assert check_output_path(str(tmp_path / "anything.bin")) == tmp_path / "anything.bin"


def test_check_output_path_rejects_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: tests often run as root, where real permission bits are ignored.
    monkeypatch.setattr(files.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(OutputError, match="permission denied"):
        check_output_path(tmp_path / "x.json")


def test_atomic_write_commits_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != target
        tmp.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}"

    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_write_uses_normal_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        target = tmp_path / "new.bin"
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"x")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644

        target.chmod(0o600)
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"y")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_atomic_write_missing_directory_is_an_output_error_not_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as excinfo:
        with atomic_write(tmp_path / "nope" / "ckpt.safetensors"):
            pass
    assert not isinstance(excinfo.value, ImageError)
    assert_one_line(excinfo, "ckpt.safetensors", "does not exist", "create it first")


def test_distinct_outputs_are_checked_in_linear_time(tmp_path: Path) -> None:
    """Each output is looked up among the inputs, not compared with each: 3,000 files
    take a fraction of a second (comparing every pair took over a minute for 1,000)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    jobs = []
    for index in range(3000):
        (inputs / f"{index}.png").write_bytes(b"x")
        jobs.append((inputs / f"{index}.png", tmp_path / "out" / f"{index}.png"))
    start = time.perf_counter()
    check_distinct_outputs(jobs)
    assert time.perf_counter() - start < 5


def test_outputs_that_are_inputs_or_shared_or_in_the_way_are_refused(tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    photo.write_bytes(b"mine")
    os.link(photo, tmp_path / "hard.png")
    with pytest.raises(OutputError, match="it is the input"):  # the same file under another name
        check_distinct_outputs([(photo, tmp_path / "hard.png")])
    with pytest.raises(OutputError, match="it is the input"):  # another job's input
        check_distinct_outputs([(photo, tmp_path / "b.png"), (tmp_path / "b.png", tmp_path / "out" / "b.png")])
    with pytest.raises(OutputError, match="would both be written there"):
        check_distinct_outputs([(tmp_path / "x" / "a.png", tmp_path / "o" / "a.png"),
                                (tmp_path / "y" / "a.png", tmp_path / "o" / "." / "a.png")])
    with pytest.raises(OutputError, match="also the folder of the output"):  # a file where a folder must be
        check_distinct_outputs([(tmp_path / "a_s.png", tmp_path / "o" / "d.png"),
                                (tmp_path / "d.png" / "e.png", tmp_path / "o" / "d.png" / "e.png")])


def test_names_with_a_newline_are_shown_escaped() -> None:
    assert shown("a/b c.png") == "a/b c.png"
    assert shown("a\nb.png") == "'a\\nb.png'"
    assert about("a\nb.png", "disk full") == "'a\\nb.png': disk full"
    assert about("a\nb.png", "cannot read 'a\\nb.png': no") == "cannot read 'a\\nb.png': no"
