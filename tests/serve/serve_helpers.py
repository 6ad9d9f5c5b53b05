"""Start `liifsr serve`'s app on a free local port in this process, and stop it."""

import contextlib
import socket
import threading
import time

import uvicorn

from liifsr.serve.guard import HostPolicy
from liifsr.serve.routes import create_app
from liifsr.serve.service import Server
from liifsr.serve.web import WebLimits, uvicorn_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(server: Server, limits: WebLimits | None = None, host: str = "127.0.0.1", allow: tuple[str, ...] = ()):
    """Yields the base URL; the server stops (and its worker with it) on exit. The app is
    guarded and uvicorn bounded as `liifsr serve --host HOST --allow-host ...` runs them."""
    port = free_port()
    app = create_app(server, HostPolicy.for_bind(host, port, allow))
    web = uvicorn.Server(uvicorn_config(app, host, port, limits or WebLimits()))
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not web.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(timeout=30)
        server.close()
