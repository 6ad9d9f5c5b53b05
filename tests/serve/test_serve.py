"""`liifsr serve` over HTTP on a free local port: tiles, errors, queue, cache, cancellation, downloads."""

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'liifsr[serve]')")

from serve_helpers import free_port, running  # noqa: E402

from liifsr.checkpoint import save_model  # noqa: E402
from liifsr.cli import main  # noqa: E402
from liifsr.imageio import read_image, sample_image  # noqa: E402
from liifsr.models import ModelConfig
from liifsr.models.edsr import EDSRConfig
from liifsr.models.liif import (
    LIIF,  # noqa: E402
    LIIFConfig,
)
from liifsr.resize import imresize  # noqa: E402
from liifsr.serve.pyramid import TILE, bicubic_region, levels, tile_region  # noqa: E402
from liifsr.serve.service import Limits, Server, served_files  # noqa: E402
from liifsr.tiling import Span  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=2, n_feats=8), LIIFConfig(hidden=[32, 32], global_skip=True))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LIIF(config), path)
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.open(sample_image()).convert("RGB").crop((150, 60, 250, 130)).save(path)  # 100 x 70
    return path


@pytest.fixture
def server(model_file, photo):
    from liifsr.zoo import load_model

    return Server(load_model(model_file), "tiny", served_files([(photo.name, photo)]), cache_bytes=200_000,
                  limits=Limits(upload_bytes=100_000, input_pixels=250_000, output_pixels=400_000))


def get(url):
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.headers.get("content-type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type"), error.read()


def post(url, data, headers=None):
    """A POST as the page sends it (with its `X-Liifsr` header)."""
    request = urllib.request.Request(url, data=data, headers={"X-Liifsr": "1", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_levels_and_tiles_are_pure_arithmetic():
    lv = levels((300, 700))
    assert [level.scale for level in lv][:3] == [0.25, 0.5, 1.0] and lv[-1].scale == 30 and (lv[-1].height, lv[-1].width) == (9000, 21000)
    decoded = [level for level in lv if level.decoded]
    assert decoded[0].scale == 1 and all(b.scale / a.scale <= 2**0.5 + 1e-9 for a, b in zip(decoded, decoded[1:]))
    x8 = next(level for level in lv if level.scale == 8)
    assert tile_region(x8, 0, 0) == (Span(0, TILE + 1), Span(0, TILE + 1))
    assert tile_region(x8, 3, 2) == (Span(2 * TILE - 1, 3 * TILE + 1), Span(3 * TILE - 1, 4 * TILE + 1))
    assert tile_region(x8, 21, 0) == (Span(0, TILE + 1), Span(21 * TILE - 1, 5600)) and tile_region(x8, 22, 0) is None


@pytest.mark.parametrize("out_hw", [(300, 410), (20, 30), (37 * 8, 53 * 8)])
def test_bicubic_region_is_that_region_of_imresize(out_hw):
    lr = np.random.default_rng(0).random((37, 53, 3)).astype(np.float32)
    whole = imresize(torch.from_numpy(lr).permute(2, 0, 1).double(), size=out_hw).permute(1, 2, 0).numpy()
    rows, cols = Span(3, min(out_hw[0], 40)), Span(5, min(out_hw[1], 29))
    assert np.abs(bicubic_region(lr, out_hw, rows, cols) - whole[3:40, 5:29]).max() < 1e-5


def x4_tile_is_the_cli_upscale(url, photo, model_file, tmp_path):
    """The x4 level's tile (1, 0) equals that region of `liifsr upscale` (to 1 level);
    returns (the level's index, the tile's PNG bytes, the CLI output)."""
    (image,) = json.loads(get(url + "/api/images")[2])
    index = next(i for i, level in enumerate(image["levels"]) if level["scale"] == 4)
    status, kind, data = get(f"{url}/api/images/0/tiles/model/{index}/1_0.png")
    assert status == 200 and kind == "image/png"
    assert main(["upscale", str(photo), "--scale", "4", "-o", str(tmp_path / "cli.png"), "--model", str(model_file),
                 "--precision", "fp32"]) == 0  # the server's precision (the CLI's default may be bf16)
    cli = np.asarray(Image.open(tmp_path / "cli.png"))
    tile = np.asarray(Image.open(BytesIO(data)))
    assert tile.shape == (257, 400 - 255, 3)
    assert np.abs(tile.astype(int) - cli[:257, 255:400]).max() <= 1
    return index, data, cli


def test_tiles_equal_the_cli_upscale_and_are_cached(server, photo, model_file, tmp_path):
    with running(server) as url:
        index, data, cli = x4_tile_is_the_cli_upscale(url, photo, model_file, tmp_path)
        decoded = json.loads(get(url + "/api/status")[2])["decoded_tiles"]
        assert get(f"{url}/api/images/0/tiles/model/{index}/1_0.png")[2] == data
        assert json.loads(get(url + "/api/status")[2])["decoded_tiles"] == decoded  # from the cache
        bicubic = np.asarray(Image.open(BytesIO(get(f"{url}/api/images/0/tiles/bicubic/{index}/0_0.png")[2])))
        assert np.abs(bicubic.astype(int) - cli[:257, :257]).mean() > 0.5  # not the model's
        for col in range(2):  # more tiles than the 200 kB cache holds
            for row in range(2):
                for level in (index + 1, index + 2):
                    assert get(f"{url}/api/images/0/tiles/model/{level}/{col}_{row}.png")[0] == 200
        stats = json.loads(get(url + "/api/status")[2])
        assert 0 < stats["cache_bytes"] <= stats["cache_limit_bytes"] == 200_000
        assert stats["max_running"] == 1  # one model, one job at a time


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server):
    with running(server) as url:
        cases = [
            ("/api/images/0/tiles/model/99/0_0.png", 404, "level 99"),
            ("/api/images/0/tiles/model/2/0_999999999999.png", 404, "tile 0_999999999999"),
            ("/api/images/0/tiles/model/2/-1_0.png", 404, "Not Found"),
            ("/api/images/0/tiles/model/2/a_b.png", 404, "Not Found"),
            ("/api/images/0/tiles/evil/2/0_0.png", 404, "unknown tile kind"),
            ("/api/images/../../etc/passwd/tiles/model/0/0_0.png", 404, ""),
            ("/api/images/7/tiles/model/0/0_0.png", 404, "no image with id '7'"),
            ("/static/../app.py", 404, ""),
            ("/static/%2e%2e/app.py", 404, ""),
            ("/api/jobs/nope/events", 404, "no download job"),
        ]
        for path, code, text in cases:
            status, kind, body = get(url + path)
            assert status == code, path
            assert "application/json" in kind and text in json.loads(body)["error"], path
        assert post(url + "/api/images/0/upscale", b'{"scale": 100}')[0] == 413  # 7,000 x 10,000 > 400,000 pixels
        assert post(url + "/api/images/0/upscale", b'{"scale": 1e9}')[0] == 400  # beyond any image
        assert post(url + "/api/images/0/upscale", b'{"scale": -2}')[0] == 400
        assert post(url + "/api/images/0/upscale", b'{"scale": "4"}')[0] == 400
        assert post(url + "/api/images/0/upscale", b'{"size": [10, 2.5]}')[0] == 400
        assert post(url + "/api/images/0/upscale", b"not json")[0] == 400
        status, body = post(url + "/api/images", b"\x89PNG\r\n\x1a\n" + bytes(200), {"X-Filename": "bad%20file.png"})
        assert status == 415 and body["error"].startswith("cannot read 'bad file.png'")
        assert post(url + "/api/images", bytes(200_000), {"X-Filename": "big.png"})[0] == 413
        buffer = BytesIO()
        Image.new("RGB", (600, 500)).save(buffer, format="PNG")  # 300,000 pixels > 250,000
        status, body = post(url + "/api/images", buffer.getvalue(), {"X-Filename": "wide.png"})
        assert status == 413 and "300,000 pixels" in body["error"]
        assert get(url + "/")[0] == 200 and get(url + "/static/vendor/openseadragon/openseadragon.min.js")[0] == 200
        assert len(json.loads(get(url + "/api/images")[2])) == 1


def test_upload_then_tiles_of_it(server):
    with running(server) as url:
        buffer = BytesIO()
        Image.open(sample_image()).convert("L").crop((0, 0, 90, 60)).save(buffer, format="PNG")
        status, image = post(url + "/api/images", buffer.getvalue(), {"X-Filename": "gray.png"})
        assert status == 201 and (image["width"], image["height"]) == (90, 60)
        status, kind, data = get(f"{url}/api/images/{image['id']}/tiles/model/2/0_0.png")
        assert status == 200 and Image.open(BytesIO(data)).mode == "L"  # grayscale stays grayscale
        assert {i["id"] for i in json.loads(get(url + "/api/images")[2])} == {"0", image["id"]}


def block_worker(server):
    """Occupy the model thread until the returned event is set."""
    release = threading.Event()
    server.worker.submit(lambda job: release.wait(30))
    return release


def test_a_client_that_disconnects_cancels_its_tile(server):
    with running(server) as url:
        release = block_worker(server)
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"GET /api/images/0/tiles/model/9/0_0.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while server.worker.queued() and not server.worker._interactive[-1].cancelled.is_set():
            assert time.monotonic() < deadline, "the server did not notice the disconnect"
            time.sleep(0.05)
        release.set()
        while server.worker.queued():
            time.sleep(0.05)
        stats = json.loads(get(url + "/api/status")[2])
        assert stats["cancelled"] == 1 and stats["decoded_tiles"] == 0


def test_download_with_progress_equals_the_cli_and_cancels_on_disconnect(server, photo, model_file, tmp_path):
    with running(server) as url:
        status, job = post(url + "/api/images/0/upscale", b'{"size": [150, 210]}', {"Content-Type": "application/json"})
        assert status == 202 and (job["height"], job["width"]) == (150, 210)
        events = []
        with urllib.request.urlopen(f"{url}/api/jobs/{job['job']}/events") as stream:
            for line in stream:
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
        assert events[-1]["state"] == "done" and events[-1]["done"] == events[-1]["total"] == 150 * 210
        status, kind, data = get(f"{url}/api/jobs/{job['job']}/file")
        assert status == 200 and kind == "image/png"
        assert main(["upscale", str(photo), "--size", "150x210", "-o", str(tmp_path / "cli.png"), "--model", str(model_file),
                     "--precision", "fp32"]) == 0
        assert np.array_equal(np.asarray(Image.open(BytesIO(data))), np.asarray(Image.open(tmp_path / "cli.png")))

        release = block_worker(server)
        status, job = post(url + "/api/images/0/upscale", b'{"scale": 5}')
        connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        connection.request("GET", f"/api/jobs/{job['job']}/events")
        assert b'"state": "running"' in connection.getresponse().readline()
        connection.close()  # the page went away
        time.sleep(1)
        release.set()
        deadline = time.monotonic() + 20
        while json.loads(get(f"{url}/api/jobs/{job['job']}/events")[2].split(b"data: ")[1])["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert b'"cancelled"' in get(f"{url}/api/jobs/{job['job']}/events")[2]
        assert get(f"{url}/api/jobs/{job['job']}/file")[0] == 409


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.png"), "--port", "0"]) == 2
    assert main(["serve", str(tmp_path / "missing.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("liifsr: error: ") for line in err) and "missing.png" in err[-1]


def test_a_failed_model_thread_fails_every_pending_and_later_request(server):
    """The model thread itself dies (not a job): the queued requests and every later one get
    a JSON error at once instead of hanging, and the server is told once, to stop."""
    failures = []
    server.worker.on_failure = failures.append
    with running(server) as url:
        release = block_worker(server)
        results = []

        def ask(path):
            results.append(get(url + path))

        askers = [threading.Thread(target=ask, args=(f"/api/images/0/tiles/model/9/{col}_0.png",)) for col in range(2)]
        for asker in askers:
            asker.start()
        deadline = time.monotonic() + 10
        while server.worker.queued() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.worker.queued() == 2  # both pending behind the blocking job

        def broken(job):
            raise SystemExit("injected: the loop itself breaks")
        server.worker._run = broken  # the next job the loop takes kills the loop
        release.set()
        for asker in askers:
            asker.join(timeout=10)
        assert len(results) == 2  # both answered, the one the broken loop had taken too
        later = get(url + "/api/images/0/tiles/model/9/5_0.png")
        for status, kind, body in [*results, later]:
            assert status == 503 and kind == "application/json", (status, body)
            assert "the model thread failed (injected: the loop itself breaks)" in json.loads(body)["error"]
        status, job = post(url + "/api/images/0/upscale", b'{"scale": 2}')
        assert status == 202
        status, kind, body = get(f"{url}/api/jobs/{job['job']}/events")
        assert b'"state": "failed"' in body and b"model thread failed" in body
        assert len(failures) == 1 and "injected" in str(failures[0])


def test_serve_refuses_bad_numbers_before_starting(model_file, capsys):
    for flag, value, message in (("--threads", "0", "--threads 0 must be a positive"),
                                 ("--threads", "-3", "--threads -3 must be a positive"),
                                 ("--max-upload-mb", "0", "--max-upload-mb 0 must be a positive finite number"),
                                 ("--max-input-mp", "inf", "--max-input-mp inf must be a positive finite number"),
                                 ("--body-timeout", "0", "--body-timeout 0.0 must be a positive"),
                                 ("--image-cache-mb", "0", "--image-cache-mb 0 must be a positive"),
                                 ("--cache-mb", "-1", "--cache-mb -1 must be 0"),
                                 ("--port", "70000", "not a port number")):
        assert main(["serve", "--model", str(model_file), flag, value]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_serving_beyond_loopback_warns_that_it_is_open_to_the_network():
    from liifsr.commands.serve import exposure_warning

    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org", "127.attacker.example", "127.0.0.1.nip.io"):
        warning = exposure_warning(host)
        assert warning and "without authentication" in warning and host in warning


def test_serve_prints_the_network_warning_on_start(model_file, monkeypatch, capsys):
    """`liifsr serve --host 0.0.0.0` says so before it listens (uvicorn itself is stubbed)."""
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    assert main(["serve", "--model", str(model_file), "--host", "0.0.0.0", "--port", str(free_port())]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 makes the page, uploads and downloads reachable from the network" in err
    assert main(["serve", "--model", str(model_file), "--port", str(free_port())]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_client_that_disconnects_mid_upload_costs_one_log_line_at_most(server, caplog):
    with running(server) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 50000\r\nX-Liifsr: 1\r\n"
                         "X-Filename: a.png\r\n\r\n".encode() + b"x" * 1000)
            time.sleep(0.3)
        time.sleep(0.5)
        assert get(url + "/api/status")[0] == 200  # still serving
    lines = [record for record in caplog.records if record.levelno >= 30]  # warnings and errors
    assert not any("ClientDisconnect" in (record.exc_text or "") + record.getMessage() for record in caplog.records if record.exc_info)
    assert not lines, [record.getMessage() for record in lines]


def test_serve_takes_a_folder_of_images(model_file, photo, tmp_path, monkeypatch, capsys):
    """A folder is listed from the files' headers, nothing decoded, and two images of one
    name in two subfolders are told apart by their paths in the folder."""
    import shutil

    import uvicorn

    import liifsr.serve.service as service

    for sub in ("", "sub", "other"):
        (tmp_path / "album" / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(photo, tmp_path / "album" / "one.png")
    shutil.copy(photo, tmp_path / "album" / "sub" / "two.png")
    Image.open(photo).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "album" / "other" / "two.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees: 70 wide, 100 high
    Image.open(photo).save(tmp_path / "album" / "sub" / "turned.jpg", exif=exif)
    decoded = []
    monkeypatch.setattr(service, "read_image", lambda *a, **k: decoded.append(a) or read_image(*a, **k))
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.app.state.server))
    assert main(["serve", str(tmp_path / "album"), "--model", str(model_file), "--port", str(free_port())]) == 0
    (server,) = served
    listed = {image.name: (image.width, image.height) for image in server.images.values()}
    assert listed == {"one.png": (100, 70), "sub/two.png": (100, 70), "other/two.png": (70, 100), "sub/turned.jpg": (70, 100)}
    assert decoded == [] and len(server.decoded) == 0  # nothing decoded before it is viewed
    assert "(4 image(s)" in capsys.readouterr().out
    turned = next(image for image in server.images.values() if image.name == "sub/turned.jpg")
    assert server.pixels(turned).image.rgb.shape == (100, 70, 3)  # the header's size is the decoded one


def test_images_are_decoded_when_viewed_within_a_memory_budget(model_file, photo, tmp_path):
    """Each image is decoded by its first tile; beyond the budget the least recently used
    is dropped (and decoded again when viewed again); the one in use always stays."""
    from liifsr.serve.service import display_names
    from liifsr.zoo import load_model

    files = []
    for index in range(3):
        (tmp_path / f"d{index}").mkdir()
        Image.open(photo).rotate(index * 5).save(tmp_path / f"d{index}" / "photo.png")
        files.append((tmp_path / f"d{index}" / "photo.png", Path("photo.png")))
    names = display_names(files)
    assert len(set(names)) == 3 and all(name.endswith("photo.png") for name in names)
    one_image = 100 * 70 * 3 * 4  # float32 RGB
    server = Server(load_model(model_file), "tiny", served_files(list(zip(names, (f for f, _ in files)))),
                    cache_bytes=0, limits=Limits(decoded_bytes=2 * one_image + 100))
    with running(server) as url:
        assert len(server.decoded) == 0
        for image_id in ("0", "1", "2", "0"):
            assert get(f"{url}/api/images/{image_id}/tiles/bicubic/0/0_0.png")[0] == 200
            assert server.decoded.get(image_id) is not None and server.decoded.bytes <= 2 * one_image + 100
        assert len(server.decoded) == 2 and server.decoded.get("1") is None  # the least recently used went
        server.decoded.max_bytes = 1  # under one image: the one in use still serves
        assert get(f"{url}/api/images/1/tiles/model/2/0_0.png")[0] == 200 and len(server.decoded) == 1
        (tmp_path / "d2" / "photo.png").unlink()  # a listed file gone: a JSON error, not a traceback
        server.decoded.drop("2".__eq__)
        status, kind, body = get(f"{url}/api/images/2/tiles/bicubic/0/0_0.png")
        assert status == 422 and "file does not exist" in json.loads(body)["error"]


@pytest.mark.parametrize("decoder", ["lte", "thermal"])
def test_the_other_decoders_serve_the_tiles_of_their_upscale(decoder, photo, tmp_path):
    """LTE and the heat field serve through the same interface: a x4 tile is that region
    of their CLI upscale."""
    from liifsr.models import build_model, model_preset
    from liifsr.zoo import load_model

    torch.manual_seed(0)
    config = model_preset(f"edsr-{decoder}")
    config.encoder = EDSRConfig(n_resblocks=1, n_feats=8)
    path = tmp_path / f"{decoder}.safetensors"
    save_model(build_model(config), path)
    served = Server(load_model(path), decoder, served_files([(photo.name, photo)]), cache_bytes=200_000,
                    limits=Limits(upload_bytes=100_000, input_pixels=250_000, output_pixels=400_000))
    with running(served) as url:
        x4_tile_is_the_cli_upscale(url, photo, path, tmp_path)


@pytest.mark.parametrize("name, says", [("photo", "for clean images use --model default"),
                                        ("edsr-liif-relu-skip-shared", "use --model photo"), ("tiny", "")])
def test_the_page_says_in_one_line_which_inputs_its_model_is_for(model_file, photo, name, says):
    from liifsr.zoo import load_model

    server = Server(load_model(model_file), name, served_files([(photo.name, photo)]))
    with running(server) as url:
        hint = json.loads(get(url + "/api/config")[2])["model_hint"]
    assert "\n" not in hint and says in hint and (hint == "") == (says == "")
