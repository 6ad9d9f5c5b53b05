"""`liifsr serve`: a local web page that zooms continuously into images (x1 to x30), decoding
the visible tiles on demand. This module holds the command (its options and their checks,
the listening sockets, the model and the server set up and run); the server itself is
`liifsr.serve`."""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any

from liifsr.commands.options import add_runtime_options
from liifsr.serve import BODY_MIN_BYTES_PER_S
from liifsr.serve.guard import is_loopback

DEFAULT_PORT = 8000


def max_threads() -> int:
    """The CPUs this process may run on: more model threads than that only contend (and
    each is a process id of the machine's bounded supply)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE",
                        help="images, or folders of them (recursively), to show (more can be uploaded in the page)")
    parser.add_argument("--model", default=None, help="bundled model name or model file (default: the bundled default model, for clean "
                        "images; '--model photo' for JPEG, noisy or blurred photographs)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests for this host name, with any port (repeatable; e.g. the name of a reverse "
                             "proxy). Without it only 127.0.0.1, localhost, [::1] and --host are answered, with --port; with "
                             "--host 0.0.0.0 or :: any literal IP address too, never another DNS name (DNS rebinding)")
    add_runtime_options(parser, automatic_precision=True)
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads of the model, 1 to {max_threads()} (this machine's CPUs; default: PyTorch's, one per core)")
    parser.add_argument("--cache-mb", type=int, default=256, help="memory for decoded tiles, in MB (default: 256)")
    parser.add_argument("--image-cache-mb", type=int, default=512,
                        help="memory for decoded images, in MB: images are decoded when first viewed and the least recently "
                             "used are dropped beyond this (the one in use always stays; default: 512)")
    parser.add_argument("--max-upload-mb", type=int, default=32, help="largest upload, in MB (default: 32)")
    parser.add_argument("--max-input-mp", type=float, default=12, help="largest image, in megapixels (default: 12)")
    parser.add_argument("--max-output-mp", type=float, default=50, help="largest download, in megapixels (default: 50)")
    parser.add_argument("--header-timeout", type=float, default=10, metavar="SECONDS",
                        help="a request's line and headers must arrive within this, or get 408 (default: 10)")
    parser.add_argument("--body-timeout", type=float, default=30, metavar="SECONDS",
                        help="a request's body (an upload) must arrive within this plus one second per "
                             f"{BODY_MIN_BYTES_PER_S // 1024} KB, or get 408 (default: 30)")
    parser.add_argument("--max-connections", type=int, default=100,
                        help="connections and requests at once; more get 503 (default: 100)")


def check_server_options(args: argparse.Namespace) -> None:
    """Every number the server runs with, before anything starts (a bad one otherwise
    surfaces later, in the model thread or in a request)."""
    from liifsr.checks import UpscaleError

    if not 0 < args.port < 65536:
        raise UpscaleError(f"--port {args.port} is not a port number (1-65535)")
    if args.threads is not None and args.threads < 1:
        raise UpscaleError(f"--threads {args.threads} must be a positive number of CPU threads (or leave it out)")
    if args.threads is not None and args.threads > max_threads():
        raise UpscaleError(f"--threads {args.threads} is more than this machine's {max_threads()} CPUs "
                           f"(give at most {max_threads()}, or leave it out)")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-input-mp", args.max_input_mp),
                        ("--max-output-mp", args.max_output_mp), ("--header-timeout", args.header_timeout),
                        ("--body-timeout", args.body_timeout), ("--max-connections", args.max_connections),
                        ("--image-cache-mb", args.image_cache_mb)):
        if not (value > 0 and math.isfinite(value)):
            raise UpscaleError(f"{flag} {value} must be a positive finite number")
    if args.cache_mb < 0:
        raise UpscaleError(f"--cache-mb {args.cache_mb} must be 0 (no cache) or more")


def exposure_warning(host: str) -> str | None:
    """The warning for an address beyond this machine: None for `localhost` and literal
    loopback addresses only (a name that looks like one, `127.0.0.1.nip.io`, goes where DNS sends it)."""
    if is_loopback(host):
        return None
    return (f"--host {host} makes the page, uploads and downloads reachable from the network without "
            "authentication; anyone who can reach this port can use the model and see the images")


def listen_error(host: str, port: int, error: OSError) -> str:
    """One line for an address the server cannot listen on, naming it and the fix (uvicorn
    would print `[Errno 98] error while attempting to bind ...` and exit 3)."""
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    other = port + 1 if port < 65535 else port - 1
    if isinstance(error, socket.gaierror):
        return f"--host {host!r} is neither an address nor a name this machine can resolve; give one (e.g. --host 127.0.0.1)"
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} is already in use on {host} (another `liifsr serve`, or another program); "
                f"give another --port, e.g. --port {other}")
    if error.errno == errno.EACCES:
        return (f"listening on port {port} needs more rights than this user has (ports below 1024 usually do); "
                f"give --port 1024 or above, e.g. --port {DEFAULT_PORT}")
    if error.errno == errno.EADDRNOTAVAIL:
        return f"--host {host} is not an address of this machine; give one of its addresses (e.g. --host 127.0.0.1)"
    return f"cannot listen on {where}: {(error.strerror or str(error)).lower()}; give another --host or --port"


def run(args: argparse.Namespace) -> int:
    from liifsr.checks import UpscaleError

    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise UpscaleError("`liifsr serve` needs the serve extra: pip install 'liifsr[serve]'") from None
    from liifsr.imageio import collect_images
    from liifsr.serve.service import Limits, display_names, served_files
    from liifsr.serve.web import listening_sockets

    check_server_options(args)
    limits = Limits(int(args.max_upload_mb * 2**20), int(args.max_input_mp * 1e6), int(args.max_output_mp * 1e6),
                    decoded_bytes=int(args.image_cache_mb * 2**20))
    found = collect_images(args.images)  # files, and the images under folders
    # Only the headers are read here: the pixels are decoded when first viewed.
    images = served_files(list(zip(display_names(found), (path for path, _ in found))), limits.input_pixels)
    try:  # before the model loads (seconds): a port in use is said at once
        sockets = listening_sockets(args.host, args.port)
    except OSError as error:
        raise UpscaleError(listen_error(args.host, args.port, error)) from None
    try:
        return serve(args, images, limits, sockets)
    finally:
        for sock in sockets:  # uvicorn closes them when it ran; not when the start failed before it
            sock.close()


def serve(args: argparse.Namespace, images: list, limits: Any, sockets: list[socket.socket]) -> int:
    """Load the model and answer on `sockets` (listening already) until Ctrl-C."""
    import uvicorn

    from liifsr.checks import UpscaleError
    from liifsr.decoding import DecodeOptions, open_model
    from liifsr.serve.guard import HostPolicy
    from liifsr.serve.routes import create_app
    from liifsr.serve.service import Server
    from liifsr.serve.web import WebLimits, uvicorn_config
    from liifsr.zoo import DEFAULT_MODEL

    opened = open_model(args.model, args.device, args.precision)  # 'auto' resolved: what runs, shown below
    decoding = DecodeOptions(args.chunk, args.tile, opened.precision)
    web_limits = WebLimits(args.header_timeout, args.body_timeout, args.max_connections)
    web = uvicorn.Server(uvicorn_config(None, args.host, args.port, web_limits))

    def stop(error: BaseException) -> None:  # the model thread died: answer nothing more, exit
        web.should_exit = True

    server = Server(opened.model, str(args.model or DEFAULT_MODEL), images, decoding, args.cache_mb * 2**20, limits,
                    args.threads, on_model_failure=stop)
    web.config.app = create_app(server, HostPolicy.for_bind(args.host, args.port, args.allow_host))
    warning = exposure_warning(args.host)
    if warning:
        print(f"liifsr serve: warning: {warning}", file=sys.stderr)
    print(f"liifsr serve: http://{args.host}:{args.port}/ ({len(images)} image(s), model {server.model_name}, "
          f"{opened.precision} on {opened.device.type}); Ctrl-C stops")
    try:
        web.run(sockets=sockets)
    except OSError as error:  # the sockets are bound already, but should serving them fail, say so in one line
        raise UpscaleError(listen_error(args.host, args.port, error)) from None
    finally:
        server.close()
    if server.worker.failure is not None:
        raise UpscaleError(f"{server.worker.failure_error()}: the server stopped") from None
    return 0
