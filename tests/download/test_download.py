"""Tests for liifsr.download against a local HTTP server that speaks Range.

The server is real (ThreadingHTTPServer on 127.0.0.1, port 0) so that the
resume logic is exercised through urllib exactly as against the ETH/SNU hosts.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from liifsr import download
from liifsr.download import DatasetSpec, DownloadError, FileRecord, fetch_records

# --------------------------------------------------------------------------
# Archives with a few tiny PNGs.
# --------------------------------------------------------------------------


def _png(seed: int, size: int = 24) -> bytes:
    """Noisy PNG, so the archive is a few KiB and a cut lands mid-file."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


HR_MEMBERS = {"DIV2K_train_HR/0001.png": _png(1), "DIV2K_train_HR/0002.png": _png(2)}
HR_ZIP = _zip(HR_MEMBERS)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(name: str, data: bytes, **overrides: object) -> FileRecord:
    fields: dict[str, object] = dict(
        name=name,
        url=f"https://example.invalid/{name}",  # never used: tests pass base_url
        size=len(data),
        sha256=_sha(data),
        part=name.split(".")[0],
        extract_to="DIV2K",
        provides="DIV2K/DIV2K_train_HR",
    )
    fields.update(overrides)
    return FileRecord(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Local Range-capable server.
# --------------------------------------------------------------------------


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # first GET sends only this many body bytes
    ignore_range: bool = False
    ranges: list[str | None] = field(default_factory=list)  # Range header per GET
    bytes_served: int = 0


class RangeHandler(BaseHTTPRequestHandler):
    state: ServerState  # set on a per-server subclass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        data = self.state.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.state.ranges.append(requested)
        start = 0
        if requested and not self.state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.state.cut_after is not None:
            body, self.state.cut_after = body[: self.state.cut_after], None
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()
        self.state.bytes_served += len(body)

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass


@pytest.fixture
def server() -> Iterator[tuple[ServerState, str]]:
    state = ServerState()
    handler = type("BoundRangeHandler", (RangeHandler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_port}/mirror"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not intercept 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _serve(state: ServerState, name: str, data: bytes) -> None:
    state.files[f"mirror/{name}"] = data


# --------------------------------------------------------------------------
# Tests.
# --------------------------------------------------------------------------


def test_full_download_verifies_and_extracts(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP)

    result = fetch_records([record], tmp_path, base_url=base, progress=False)

    assert result == [tmp_path / "DIV2K" / "DIV2K_train_HR"]
    for member, data in HR_MEMBERS.items():
        assert (tmp_path / "DIV2K" / member).read_bytes() == data
    archive = tmp_path / "downloads" / "DIV2K_train_HR.zip"
    assert archive.read_bytes() == HR_ZIP
    assert not archive.with_name(archive.name + ".part").exists()
    assert state.ranges == [None]
    assert [p.name for p in (tmp_path / "DIV2K").iterdir() if p.name.startswith(".")] == [
        ".DIV2K_train_HR.zip.extracted"
    ]

    # Already unpacked: no request at all, same answer.
    assert fetch_records([record], tmp_path, base_url=base, progress=False) == result
    assert state.ranges == [None]


def _cut_download(state, base, tmp_path, record, cut: int) -> DownloadError:
    """Fetch `record` from a server that sends `cut` bytes and hangs up: the error raised."""
    state.cut_after = cut
    with pytest.raises(DownloadError) as failure:
        fetch_records([record], tmp_path, base_url=base, progress=False)
    return failure.value


def test_interrupted_download_resumes_with_range(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP)
    cut = len(HR_ZIP) // 3
    part = tmp_path / "downloads" / "DIV2K_train_HR.zip.part"

    message = str(_cut_download(state, base, tmp_path, record, cut))
    assert "\n" not in message
    assert "DIV2K_train_HR.zip" in message and "kept" in message and "rerun" in message
    assert part.read_bytes() == HR_ZIP[:cut]
    assert not (tmp_path / "downloads" / "DIV2K_train_HR.zip").exists()

    fetch_records([record], tmp_path, base_url=base, progress=False)

    assert state.ranges == [None, f"bytes={cut}-"]
    assert state.bytes_served == len(HR_ZIP) < 2 * len(HR_ZIP)
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip").read_bytes() == HR_ZIP
    assert not part.exists()
    assert (tmp_path / "DIV2K" / "DIV2K_train_HR" / "0002.png").read_bytes() == _png(2)


def test_cut_detected_without_known_size_or_hash(server, tmp_path):
    """Only Content-Length can reveal the cut here; urllib itself stays silent."""
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP, size=None, sha256=None)
    assert "kept" in str(_cut_download(state, base, tmp_path, record, 100))
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip.part").stat().st_size == 100


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP)
    cut = len(HR_ZIP) // 2
    _cut_download(state, base, tmp_path, record, cut)

    state.ignore_range = True  # answers 200 with the whole file
    fetch_records([record], tmp_path, base_url=base, progress=False)

    assert state.ranges == [None, f"bytes={cut}-"]
    assert state.bytes_served == cut + len(HR_ZIP)
    assert (tmp_path / "downloads" / "DIV2K_train_HR.zip").read_bytes() == HR_ZIP


def test_wrong_sha256_deletes_download_and_explains(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    wrong = "0" * 64
    record = _record("DIV2K_train_HR.zip", HR_ZIP, sha256=wrong)

    with pytest.raises(DownloadError) as failure:
        fetch_records([record], tmp_path, base_url=base, progress=False)

    message = str(failure.value)
    assert "\n" not in message
    assert "DIV2K_train_HR.zip" in message and wrong in message and _sha(HR_ZIP) in message
    assert "rerun" in message
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not (tmp_path / "DIV2K").exists()


def test_unknown_checksum_warns_with_computed_hash(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP, sha256=None)

    with pytest.warns(UserWarning, match=_sha(HR_ZIP)):
        fetch_records([record], tmp_path, base_url=base, progress=False)
    assert (tmp_path / "DIV2K" / "DIV2K_train_HR" / "0001.png").exists()


def test_size_mismatch_reported_before_download(server, tmp_path):
    state, base = server
    _serve(state, "DIV2K_train_HR.zip", HR_ZIP)
    record = _record("DIV2K_train_HR.zip", HR_ZIP, size=len(HR_ZIP) + 1)

    with pytest.raises(DownloadError, match=rf"{len(HR_ZIP)} bytes, expected {len(HR_ZIP) + 1}"):
        fetch_records([record], tmp_path, base_url=base, progress=False)
    assert not (tmp_path / "downloads" / "DIV2K_train_HR.zip").exists()


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("evil", ["../evil.png", "DIV2K_train_HR/../../evil.png", "/tmp/evil.png"])
def test_path_traversal_member_rejected(server, tmp_path, kind, evil):
    state, base = server
    members = {"DIV2K_train_HR/0001.png": _png(1), evil: b"pwned"}
    data = _zip(members) if kind == "zip" else _tar(members)
    name = f"DIV2K_train_HR.{kind}"
    _serve(state, name, data)
    root = tmp_path / "root"

    with pytest.raises(DownloadError, match="refusing to extract"):
        fetch_records([_record(name, data)], root, base_url=base, progress=False)

    assert not (tmp_path / "evil.png").exists() and not (root / "evil.png").exists()
    assert sorted(p.name for p in (root / "DIV2K").iterdir()) == []  # no marker, no staging


def test_tar_symlink_escaping_rejected(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        link = tarfile.TarInfo("benchmark/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
        tf.addfile(link)
    archive = tmp_path / "evil.tar"
    archive.write_bytes(buffer.getvalue())

    with pytest.raises(DownloadError, match="refusing to extract"):
        download.extract_archive(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_download_dataset_parts_and_shared_parent_folders(server, tmp_path, monkeypatch):
    """LR x2 and x3 zips share DIV2K_train_LR_bicubic/: both must survive."""
    state, base = server
    lr = {
        scale: _zip({f"DIV2K_train_LR_bicubic/X{scale}/0001x{scale}.png": _png(scale, 8)})
        for scale in (2, 3)
    }
    bench = _tar({
        "benchmark/Set5/HR/baby.png": _png(5),
        "benchmark/Set5/LR_bicubic/X2/babyx2.png": _png(6),
    })
    lr_dir = "DIV2K/DIV2K_train_LR_bicubic"
    records = (
        _record("lr_x2.zip", lr[2], part="lr_x2", provides=f"{lr_dir}/X2"),
        _record("lr_x3.zip", lr[3], part="lr_x3", provides=f"{lr_dir}/X3"),
        _record("benchmark.tar", bench, part="bench", extract_to=".", provides="benchmark"),
    )
    for record, data in zip(records, [lr[2], lr[3], bench]):
        _serve(state, record.name, data)
    toy = DatasetSpec(files=records, default_parts=("bench",))
    monkeypatch.setattr(download, "DATASETS", {"toy": toy})

    got = download.download_dataset(
        "toy", tmp_path, base_url=base, parts=["lr_x3", "lr_x2"], progress=False
    )
    assert got == [tmp_path / lr_dir / "X2", tmp_path / lr_dir / "X3"]
    assert (got[0] / "0001x2.png").read_bytes() == _png(2, 8)
    assert (got[1] / "0001x3.png").read_bytes() == _png(3, 8)
    assert len(state.ranges) == 2  # the tar was not requested

    got = download.download_dataset("toy", tmp_path, base_url=base, progress=False)
    assert got == [tmp_path / "benchmark"]
    assert (tmp_path / "benchmark/Set5/LR_bicubic/X2/babyx2.png").read_bytes() == _png(6)

    with pytest.raises(ValueError, match="lr_x5"):
        download.download_dataset("toy", tmp_path, base_url=base, parts=["lr_x5"], progress=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        download.download_dataset("nope", tmp_path)


def test_unreachable_server_gives_one_line_error(tmp_path):
    record = _record("DIV2K_train_HR.zip", HR_ZIP)
    probe = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    port = probe.server_port
    probe.server_close()  # nothing listens there any more

    with pytest.raises(DownloadError) as failure:
        fetch_records([record], tmp_path, base_url=f"http://127.0.0.1:{port}", progress=False)
    assert "\n" not in str(failure.value) and "rerun" in str(failure.value)


def test_production_table_points_at_official_sources():
    div2k, bench = download.DATASETS["div2k"], download.DATASETS["benchmark"]
    assert div2k.default_parts == (
        "train_hr", "valid_hr", "valid_lr_x2", "valid_lr_x3", "valid_lr_x4"
    )
    assert set(div2k.parts) == {"train_hr", "valid_hr"} | {
        f"{split}_lr_x{s}" for split in ("train", "valid") for s in (2, 3, 4)
    }
    for record in div2k.files:
        assert record.url == "https://data.vision.ee.ethz.ch/cvl/DIV2K/" + record.name
        assert record.provides.startswith("DIV2K/")
    assert bench.files[0].url == "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
    assert bench.default_parts == ("benchmark",)
    for record in div2k.files + bench.files:
        assert record.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", record.sha256)
        assert record.size is None or record.size > 0


def test_cli_data_download_through_a_mirror(server, tmp_path, monkeypatch, capsys):
    from liifsr.cli import main

    state, base = server
    bench = _tar({"benchmark/Set5/HR/baby.png": _png(5)})
    good = _record("benchmark.tar", bench, part="benchmark", extract_to=".", provides="benchmark")
    _serve(state, good.name, bench)
    monkeypatch.setattr(download, "DATASETS", {"benchmark": DatasetSpec(files=(good,), default_parts=("benchmark",))})
    assert main(["data", "download", "benchmark", str(tmp_path), "--mirror", base]) == 0
    assert (tmp_path / "benchmark/Set5/HR/baby.png").read_bytes() == _png(5)

    bad = _record("benchmark.tar", bench, part="benchmark", extract_to=".", provides="benchmark", sha256="0" * 64)
    monkeypatch.setattr(download, "DATASETS", {"benchmark": DatasetSpec(files=(bad,), default_parts=("benchmark",))})
    capsys.readouterr()
    assert main(["data", "download", "benchmark", str(tmp_path / "again"), "--mirror", base]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").strip()  # the progress bar precedes the error
    error_lines = [line for line in err.splitlines() if line.startswith("liifsr")]
    assert len(error_lines) == 1 and error_lines[0].startswith("liifsr: error:") and "rerun" in error_lines[0]
    assert not (tmp_path / "again" / "benchmark").exists()


def test_downloading_into_a_file_is_one_line(tmp_path, capsys):
    from liifsr.cli import main

    target = tmp_path / "some_file.png"
    target.write_bytes(b"keep")
    for root in (target, target / "below"):
        assert main(["data", "download", "benchmark", str(root)]) == 2
        err = capsys.readouterr().err.strip()
        assert "is a file, not a folder" in err and "\n" not in err, err
    assert target.read_bytes() == b"keep"
