"""`liifsr serve`: a local web page that zooms continuously into images (x1 to x30).

The page (OpenSeadragon, vendored, so it works offline) asks for the tiles in view at
the current zoom; the server decodes each one on demand by region decoding, equal to
that region of `liifsr upscale` at the level's scale (see `pyramid.py`), through one
model on one thread (`worker.py`), and keeps them in a bounded cache (`service.py`; the routes: `routes.py`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from liifsr.runtime import add_runtime_options
from liifsr.serve.guard import is_loopback

# The slowest a request body may arrive on average, beyond --body-timeout (`web.py`; here,
# not there, because --help must not need uvicorn, an optional extra).
BODY_MIN_BYTES_PER_S = 64 * 1024

DEFAULT_PORT = 8000


def max_threads() -> int:
    """The CPUs this process may run on: more model threads than that only contend (and
    each is a process id of the machine's bounded supply)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="images, or folders of them (recursively), to show (more can be uploaded in the page)")
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


def check_options(args: argparse.Namespace) -> None:
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


def run(args: argparse.Namespace) -> int:
    from liifsr.checks import UpscaleError

    try:
        import uvicorn
    except ImportError:
        raise UpscaleError("`liifsr serve` needs the serve extra: pip install 'liifsr[serve]'") from None
    from liifsr.zoo import DEFAULT_MODEL, load_model
    from liifsr.imageio import collect_images
    from liifsr.runtime import check_precision, decoding_options, resolve_device, resolve_precision
    from liifsr.serve.guard import HostPolicy
    from liifsr.serve.routes import create_app
    from liifsr.serve.service import Limits, Server, display_names, served_files
    from liifsr.serve.web import WebLimits, uvicorn_config

    check_options(args)
    limits = Limits(int(args.max_upload_mb * 2**20), int(args.max_input_mp * 1e6), int(args.max_output_mp * 1e6),
                    decoded_bytes=int(args.image_cache_mb * 2**20))
    found = collect_images(args.images)  # files, and the images under folders
    # Only the headers are read here: the pixels are decoded when first viewed.
    images = served_files(list(zip(display_names(found), (path for path, _ in found))), limits.input_pixels)
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    precision = resolve_precision(args.precision, device, model.precisions)  # 'auto': what runs, shown below
    check_precision(device, precision)
    web_limits = WebLimits(args.header_timeout, args.body_timeout, args.max_connections)
    web = uvicorn.Server(uvicorn_config(None, args.host, args.port, web_limits))

    def stop(error: BaseException) -> None:  # the model thread died: answer nothing more, exit
        web.should_exit = True

    server = Server(model, str(args.model or DEFAULT_MODEL), images, precision, args.cache_mb * 2**20, limits,
                    args.threads, on_model_failure=stop, decoding=decoding_options(args))
    web.config.app = create_app(server, HostPolicy.for_bind(args.host, args.port, args.allow_host))
    warning = exposure_warning(args.host)
    if warning:
        print(f"liifsr serve: warning: {warning}", file=sys.stderr)
    print(f"liifsr serve: http://{args.host}:{args.port}/ ({len(images)} image(s), model {server.model_name}, "
          f"{precision} on {device.type}); Ctrl-C stops")
    try:
        web.run()
    finally:
        server.close()
    if server.worker.failure is not None:
        raise UpscaleError(f"{server.worker.failure_error()}: the server stopped") from None
    return 0
