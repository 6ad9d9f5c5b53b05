"""`liifsr serve`: a local web page that zooms continuously into images (x1 to x30).

The page (OpenSeadragon, vendored, so it works offline) asks for the tiles in view at
the current zoom; the server decodes each one on demand by region decoding, equal to
that region of `liifsr upscale` at the level's scale (see `pyramid.py`), through one
model on one thread (`worker.py`), and keeps them in a bounded cache (`app.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from liifsr.runtime import add_runtime_options

DEFAULT_PORT = 8000


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="images to show (more can be uploaded in the page)")
    parser.add_argument("--model", default=None, help="bundled model name or model file (default: the bundled default model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    add_runtime_options(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of the model (default: PyTorch's, one per core)")
    parser.add_argument("--cache-mb", type=int, default=256, help="memory for decoded tiles, in MB (default: 256)")
    parser.add_argument("--max-upload-mb", type=int, default=32, help="largest upload, in MB (default: 32)")
    parser.add_argument("--max-input-mp", type=float, default=12, help="largest image, in megapixels (default: 12)")
    parser.add_argument("--max-output-mp", type=float, default=50, help="largest download, in megapixels (default: 50)")


def run(args: argparse.Namespace) -> int:
    from liifsr.inference import UpscaleError

    try:
        import uvicorn
    except ImportError:
        raise UpscaleError("`liifsr serve` needs the serve extra: pip install 'liifsr[serve]'") from None
    from liifsr.checkpoint import DEFAULT_MODEL, load_model
    from liifsr.imageio import read_image
    from liifsr.runtime import resolve_device, warn_if_slow
    from liifsr.serve.app import Limits, Server, create_app

    if not 0 < args.port < 65536:
        raise UpscaleError(f"--port {args.port} is not a port number (1-65535)")
    limits = Limits(args.max_upload_mb * 2**20, int(args.max_input_mp * 1e6), int(args.max_output_mp * 1e6))
    images = []
    for path in args.images:
        image = read_image(path)
        if image.rgb.shape[0] * image.rgb.shape[1] > limits.input_pixels:
            raise UpscaleError(f"'{path}' has more than {args.max_input_mp} megapixels (raise --max-input-mp or downscale it)")
        images.append((path.name, image))
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    warn_if_slow(device, args.precision)
    server = Server(model, str(args.model or DEFAULT_MODEL), images, args.precision, args.cache_mb * 2**20, limits, args.threads)
    print(f"liifsr serve: http://{args.host}:{args.port}/ ({len(images)} image(s), model {server.model_name}); Ctrl-C stops")
    try:
        uvicorn.run(create_app(server), host=args.host, port=args.port, log_level="warning")
    finally:
        server.close()
    return 0
