"""`liifsr serve` against other web pages and slow clients: DNS rebinding (a `Host` the
server was not started for), cross-site requests, names that only look like loopback,
half-sent requests, trickled uploads, too many connections and too many threads."""

import http.client
import json
import select
import socket
import time
from io import BytesIO

import pytest
import torch
from PIL import Image

pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'liifsr[serve]')")

from serve_helpers import running  # noqa: E402

from liifsr.checkpoint import save_model  # noqa: E402
from liifsr.cli import main  # noqa: E402
from liifsr.commands.serve import exposure_warning, max_threads  # noqa: E402
from liifsr.imageio import sample_image  # noqa: E402
from liifsr.models import ModelConfig  # noqa: E402
from liifsr.models.edsr import EDSRConfig  # noqa: E402
from liifsr.models.liif import LIIF, LIIFConfig  # noqa: E402
from liifsr.serve.guard import HostPolicy  # noqa: E402
from liifsr.serve.service import Limits, Server, served_files  # noqa: E402
from liifsr.serve.web import WebLimits  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(EDSRConfig(n_resblocks=1, n_feats=8), LIIFConfig(hidden=[16], global_skip=True))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(LIIF(config), path)
    return path


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    buffer = BytesIO()
    Image.open(sample_image()).convert("RGB").crop((150, 60, 190, 90)).save(buffer, format="PNG")
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def server(model_file, png):
    from liifsr.zoo import load_model

    return Server(load_model(model_file), "tiny", served_files([(png.name, png)]), cache_bytes=200_000,
                  limits=Limits(upload_bytes=100_000, input_pixels=250_000, output_pixels=400_000))


def ask(url, method, path, body=None, headers=None):
    """(status, JSON body or None) of a request with exactly these headers (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, None


def port_of(url):
    return int(url.rsplit(":", 1)[1])


# --- DNS rebinding -----------------------------------------------------------------------


def test_only_the_host_names_the_server_was_started_for_are_answered(server):
    """A page of `rebind.attacker.example` whose name now resolves to 127.0.0.1 reaches the
    server with its own name in `Host`: 421, for the file list, the tiles and the page alike."""
    with running(server) as url:
        port = port_of(url)
        for host in ("attacker.example", f"rebind.attacker.example:{port}", f"127.0.0.1.nip.io:{port}",
                     f"127.attacker.example:{port}", f"localhost.attacker.example:{port}", f"127.0.0.1:{port + 1}",
                     f"192.168.1.10:{port}", f"127.0.0.1:{port}@attacker.example", "[::1"):
            for path in ("/api/images", "/api/images/0/tiles/model/2/0_0.png", "/", "/api/status"):
                status, body = ask(url, "GET", path, headers={"Host": host})
                assert status == 421, (host, path)
                assert "--allow-host NAME" in body["error"] and f"http://127.0.0.1:{port}/" in body["error"], body
        status, body = ask(url, "POST", "/api/images", b"x", {"Host": "attacker.example", "X-Liifsr": "1"})
        assert status == 421
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
            status, body = ask(url, "GET", "/api/images", headers={"Host": host})
            assert status == 200 and [image["name"] for image in body] == ["photo.png"], host
        with socket.create_connection(("127.0.0.1", port)) as sock:  # HTTP/1.0, no Host at all
            sock.sendall(b"GET /api/images HTTP/1.0\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 421 ")


def test_a_wildcard_bind_answers_literal_addresses_and_the_allowed_names_only(server):
    with running(server, host="0.0.0.0", allow=("photos.example.org",)) as url:
        port = port_of(url)
        for host, code in ((f"192.0.2.7:{port}", 200), (f"[2001:db8::1]:{port}", 200), (f"localhost:{port}", 200),
                           (f"myhost.lan:{port}", 421), (f"192.0.2.7:{port + 1}", 421),
                           ("photos.example.org", 200), ("Photos.Example.org:443", 200), ("example.org", 421)):
            assert ask(url, "GET", "/api/status", headers={"Host": host})[0] == code, host


def test_host_policy_rules():
    local = HostPolicy.for_bind("127.0.0.1", 8000)
    assert local.allows("127.0.0.1:8000") and local.allows("localhost:8000") and local.allows("[::1]:8000")
    assert not local.allows("127.0.0.1") and not local.allows("10.0.0.1:8000") and not local.allows(None)
    assert HostPolicy.for_bind("127.0.0.1", 80).allows("localhost")  # the default port may be left out
    named = HostPolicy.for_bind("myhost.lan", 8000)  # --host a name: that name, with the port
    assert named.allows("myhost.lan:8000") and not named.allows("myhost.lan:9000") and not named.allows("10.0.0.1:8000")
    assert HostPolicy.for_bind("::", 8000).allows("[fe80::1]:8000") and not HostPolicy.for_bind("::", 8000).allows("a.b:8000")


# --- cross-site requests -----------------------------------------------------------------


def test_other_sites_pages_cannot_upload_or_queue_work(server, png):
    """What a page of another site can send without a CORS preflight (a form, `text/plain`,
    no Content-Type) is refused: 403, nothing uploaded, nothing queued. The page's own
    requests (same origin, with `X-Liifsr` or a JSON body) are accepted."""
    image = png.read_bytes()
    with running(server) as url:
        port = port_of(url)
        host = {"Host": f"127.0.0.1:{port}"}
        attacker = {**host, "Origin": "http://attacker.example"}
        simple_types = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None)
        for content_type in simple_types:
            typed = {} if content_type is None else {"Content-Type": content_type}
            for headers in ({**attacker, **typed}, {**host, **typed}, {**host, **typed, "Sec-Fetch-Site": "cross-site"}):
                status, body = ask(url, "POST", "/api/images", image, headers)
                assert status == 403 and ("refused" in body["error"] or "X-Liifsr" in body["error"]), (headers, body)
                status, body = ask(url, "POST", "/api/images/0/upscale", b'{"scale": 30}', headers)
                assert status == 403, headers
        # A custom header or a JSON type does not help another site's page (a browser sends
        # them only after a preflight, which is never granted; `Origin` says who asks anyway).
        for headers in ({**attacker, "X-Liifsr": "1"}, {**attacker, "Content-Type": "application/json"},
                        {**host, "X-Liifsr": "1", "Origin": "null"},
                        {**host, "X-Liifsr": "1", "Sec-Fetch-Site": "same-site"},
                        {**host, "X-Liifsr": "1", "Origin": f"http://localhost:{port}"}):
            assert ask(url, "POST", "/api/images", image, headers)[0] == 403, headers
            assert ask(url, "POST", "/api/images/0/upscale", b'{"scale": 30}', headers)[0] == 403, headers
        status, body = ask(url, "GET", "/api/images", headers={**host, "Sec-Fetch-Site": "cross-site"})
        assert status == 403  # reading the list from another site's page is refused too
        assert len(ask(url, "GET", "/api/images", headers=host)[1]) == 1 and not server.downloads  # nothing happened

        own = {**host, "Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
        status, body = ask(url, "POST", "/api/images", image, {**own, "X-Liifsr": "1", "X-Filename": "mine.png"})
        assert status == 201 and body["name"] == "mine.png"
        status, body = ask(url, "POST", "/api/images/0/upscale", b'{"scale": 2}', {**own, "Content-Type": "application/json"})
        assert status == 202
        assert ask(url, "POST", "/api/images/0/upscale", b'{"scale": 2}', {**host, "X-Liifsr": "1"})[0] == 202  # a script
        navigation = {**host, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        assert ask(url, "GET", "/", headers=navigation)[0] == 200  # a link to the page from elsewhere opens it


# --- the exposure warning ----------------------------------------------------------------


def test_only_literal_loopback_addresses_and_localhost_are_quiet():
    for host in ("127.0.0.1", "127.0.0.2", "127.255.255.254", "localhost", "LOCALHOST", "::1", "[::1]", "::ffff:127.0.0.1"):
        assert exposure_warning(host) is None, host
    for host in ("127.attacker.example", "127.0.0.1.nip.io", "localhost.attacker.example", "0.0.0.0", "::",
                 "192.168.1.10", "128.0.0.1", "example.org"):
        warning = exposure_warning(host)
        assert warning and "without authentication" in warning and host in warning, host


# --- slow clients, connections and threads -----------------------------------------------


# Generous: the bounds are under a second here, but a loaded machine delays both ends.
OPEN_FOR_AT_MOST_S = 15


def read_until_closed(sock, limit_s=2 * OPEN_FOR_AT_MOST_S):
    """Everything the server sends until it closes the connection (b"" if it resets it);
    fails if the connection is still open after `limit_s`."""
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection was still open after {limit_s} s (received {data[:60]!r})")
    return data


def test_half_sent_requests_are_answered_408_and_closed(server):
    with running(server, WebLimits(header_timeout_s=0.5, body_timeout_s=0.5)) as url:
        port = port_of(url)
        for sent in (b"", b"GET /api/status HT", f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                start = time.monotonic()
                sock.sendall(sent)
                answer = read_until_closed(sock)
                assert time.monotonic() - start < OPEN_FOR_AT_MOST_S, sent
                assert answer.startswith(b"HTTP/1.1 408 ") and b"--header-timeout" in answer, (sent, answer)
        with socket.create_connection(("127.0.0.1", port)) as sock:  # a kept-alive connection's next request
            whole = f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            sock.sendall(whole)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
            start = time.monotonic()
            sock.sendall(whole[:20])  # the next request, half sent: uvicorn's keep-alive timer stops here
            answer = read_until_closed(sock)
            assert b"HTTP/1.1 408 " in answer and time.monotonic() - start < OPEN_FOR_AT_MOST_S, answer  # after the rest of the 200
        assert ask(url, "GET", "/api/status", headers={"Host": f"127.0.0.1:{port}"})[0] == 200


def test_a_trickled_upload_is_cut_off(server, png):
    """A byte every 0.2 s keeps any idle timeout happy; the body's deadline still passes."""
    with running(server, WebLimits(header_timeout_s=5, body_timeout_s=1)) as url:
        port = port_of(url)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Liifsr: 1\r\nX-Filename: slow.png\r\n"
                         f"Content-Length: 50000\r\n\r\n".encode())
            start, answer = time.monotonic(), b""
            while time.monotonic() - start < 2 * OPEN_FOR_AT_MOST_S:
                try:
                    sock.sendall(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    break
                if select.select([sock], [], [], 0.2)[0]:
                    answer = read_until_closed(sock)
                    break
            elapsed = time.monotonic() - start
        assert elapsed < OPEN_FOR_AT_MOST_S, f"the trickled upload was still open after {elapsed:.1f} s"
        assert answer == b"" or (answer.startswith(b"HTTP/1.1 408 ") and b"--body-timeout" in answer), answer
        status, images = ask(url, "GET", "/api/images", headers={"Host": f"127.0.0.1:{port}"})
        assert status == 200 and [image["name"] for image in images] == ["photo.png"]
        # An upload that arrives at a normal pace is not affected.
        status, body = ask(url, "POST", "/api/images", png.read_bytes(),
                           {"Host": f"127.0.0.1:{port}", "X-Liifsr": "1", "X-Filename": "fast.png"})
        assert status == 201


def status_within(url, wanted, seconds=8):
    """The status of GET /api/status, asked until it is `wanted` or `seconds` have passed
    (the server accepts connections on its own time)."""
    deadline = time.monotonic() + seconds
    while True:
        status = ask(url, "GET", "/api/status", headers={"Host": f"127.0.0.1:{port_of(url)}"})[0]
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_connections_beyond_the_limit_get_503(server):
    with running(server, WebLimits(max_connections=3)) as url:
        idle = [socket.create_connection(("127.0.0.1", port_of(url))) for _ in range(3)]
        try:
            assert status_within(url, 503) == 503
        finally:
            for sock in idle:
                sock.close()
        assert status_within(url, 200) == 200


def test_threads_are_bounded_by_the_cpus(model_file, monkeypatch, capsys):
    import liifsr.serve.service as service

    def started(*args, **kwargs):  # were the bound missing: fail here, before any thread is made
        raise AssertionError(f"the server was started with threads={args[6] if len(args) > 6 else kwargs}")

    monkeypatch.setattr(service, "Server", started)
    limit = max_threads()
    for threads in (limit + 1, 100_000):
        assert main(["serve", "--model", str(model_file), "--threads", str(threads)]) == 2
        err = capsys.readouterr().err
        assert f"--threads {threads} is more than this machine's {limit} CPUs (give at most {limit}" in err
        assert err.count("\n") == 1, err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"CPU threads of the model, 1 to {limit}" in text
    for option in ("--header-timeout", "--body-timeout", "--max-connections", "--image-cache-mb", "--allow-host"):
        assert option in text


# --- the port ------------------------------------------------------------------------------


def test_a_port_in_use_is_one_line_naming_it_before_the_model_loads(tmp_path, png, capsys):
    """uvicorn printed `[Errno 98] error while attempting to bind` and exited 3, after the
    model had loaded; the port is now taken before that, and its refusal names the fix.
    (The model file is damaged: loaded first, it would be the error.)"""
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"not a model")
    with socket.socket() as other:  # another program's listening socket
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert main(["serve", "--model", str(damaged), "--port", str(port), str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"port {port} is already in use on 127.0.0.1" in err and "give another --port" in err, err


def test_a_listening_failure_once_serving_starts_is_one_line(model_file, png, monkeypatch, capsys):
    """Were uvicorn to fail on the sockets it is given, that is one line too, not its exit 3."""
    import errno

    import uvicorn

    def fails(self, sockets=None):
        assert sockets and all(sock.getsockname()[1] for sock in sockets)  # listening already, handed over
        raise OSError(errno.EADDRINUSE, "address already in use")

    monkeypatch.setattr(uvicorn.Server, "run", fails)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", "--model", str(model_file), "--port", str(port), str(png)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"liifsr: error: port {port} is already in use"), err


def test_serve_answers_on_the_port_it_took_before_loading(model_file, png):
    """End to end: `liifsr serve` in a process of its own answers on the port it bound early."""
    import os
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "liifsr", "serve", "--model", str(model_file), "--port", str(port),
                                str(png)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:  # until the process has imported torch and bound the port
            assert process.poll() is None, process.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the server did not listen within 60 s"
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        assert ask(url, "GET", "/api/images", headers={"Host": f"127.0.0.1:{port}"})[0] == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)
