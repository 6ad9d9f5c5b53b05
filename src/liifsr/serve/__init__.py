"""`liifsr serve`: a local web page that zooms continuously into images (x1 to x30).

The page (OpenSeadragon, vendored, so it works offline) asks for the tiles in view at
the current zoom; the server decodes each one on demand by region decoding, equal to
that region of `liifsr upscale` at the level's scale (see `pyramid.py`), through one
model on one thread (`worker.py`), and keeps them in a bounded cache (`service.py`; the routes: `routes.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liifsr.runtime import add_runtime_options

DEFAULT_PORT = 8000


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="images, or folders of them (recursively), to show (more can be uploaded in the page)")
    parser.add_argument("--model", default=None, help="bundled model name or model file (default: the bundled default model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    add_runtime_options(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of the model (default: PyTorch's, one per core)")
    parser.add_argument("--cache-mb", type=int, default=256, help="memory for decoded tiles, in MB (default: 256)")
    parser.add_argument("--max-upload-mb", type=int, default=32, help="largest upload, in MB (default: 32)")
    parser.add_argument("--max-input-mp", type=float, default=12, help="largest image, in megapixels (default: 12)")
    parser.add_argument("--max-output-mp", type=float, default=50, help="largest download, in megapixels (default: 50)")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_options(args: argparse.Namespace) -> None:
    """Every number the server runs with, before anything starts (a bad one otherwise
    surfaces later, in the model thread or in a request)."""
    from liifsr.checks import UpscaleError

    if not 0 < args.port < 65536:
        raise UpscaleError(f"--port {args.port} is not a port number (1-65535)")
    if args.threads is not None and args.threads < 1:
        raise UpscaleError(f"--threads {args.threads} must be a positive number of CPU threads (or leave it out)")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-input-mp", args.max_input_mp),
                        ("--max-output-mp", args.max_output_mp)):
        if not value > 0:
            raise UpscaleError(f"{flag} {value} must be positive")
    if args.cache_mb < 0:
        raise UpscaleError(f"--cache-mb {args.cache_mb} must be 0 (no cache) or more")


def exposure_warning(host: str) -> str | None:
    """The warning for an address beyond this machine (None for loopback)."""
    if host in LOOPBACK or host.startswith("127."):
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
    from liifsr.imageio import collect_images, read_image
    from liifsr.runtime import check_precision, decoding_options, resolve_device
    from liifsr.serve.routes import create_app
    from liifsr.serve.service import Limits, Server

    check_options(args)
    limits = Limits(int(args.max_upload_mb * 2**20), int(args.max_input_mp * 1e6), int(args.max_output_mp * 1e6))
    images = []
    for path, _ in collect_images(args.images):  # files, and the images under folders
        image = read_image(path)
        if image.rgb.shape[0] * image.rgb.shape[1] > limits.input_pixels:
            raise UpscaleError(f"'{path}' has more than {args.max_input_mp} megapixels (raise --max-input-mp or downscale it)")
        images.append((path.name, image))
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    check_precision(device, args.precision)
    web = uvicorn.Server(uvicorn.Config(None, host=args.host, port=args.port, log_level="warning"))

    def stop(error: BaseException) -> None:  # the model thread died: answer nothing more, exit
        web.should_exit = True

    server = Server(model, str(args.model or DEFAULT_MODEL), images, args.precision, args.cache_mb * 2**20, limits,
                    args.threads, on_model_failure=stop, decoding=decoding_options(args))
    web.config.app = create_app(server)
    warning = exposure_warning(args.host)
    if warning:
        print(f"liifsr serve: warning: {warning}", file=sys.stderr)
    print(f"liifsr serve: http://{args.host}:{args.port}/ ({len(images)} image(s), model {server.model_name}); Ctrl-C stops")
    try:
        web.run()
    finally:
        server.close()
    if server.worker.failure is not None:
        raise UpscaleError(f"{server.worker.failure_error()}: the server stopped") from None
    return 0
