"""The web app of `liifsr serve`: Starlette routes over one `service.Server`.

Routes (all answers to bad requests are JSON `{"error": "..."}` with a 4xx status):
- `GET /`: the page; `/static/...`: its script, style and the vendored OpenSeadragon.
- `GET /api/config`: model name, limits and tile size.
- `GET /api/images`, `POST /api/images` (the raw file as the body, its name in
  `X-Filename`): the images this server shows, by id. Nothing else is ever read.
- `GET /api/images/{id}/tiles/{kind}/{level}/{col}_{row}.png`: one tile of the model
  (`kind` = model) or of bicubic at a level of `pyramid.levels`; cached (LRU, bounded).
  A client that disconnects before its tile is drawn cancels it.
- `POST /api/images/{id}/upscale` (`{"scale": s}` or `{"size": [h, w]}`): a whole upscale
  in the background; `GET /api/jobs/{job}/events`: its progress as server-sent events
  (closing the stream cancels it); `GET /api/jobs/{job}/file`: the PNG when done.
- `GET /api/status`: queue length, cache use, job counts.

Every request passes `guard.Guard` first: a `Host` the server was not started for gets
421, a state-changing request from another site's page (or without a JSON content type
or the `X-Liifsr` header the page sends) gets 403.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from liifsr.checks import UpscaleError, output_size
from liifsr.imageio import ImageError
from liifsr.serve.guard import Guard, HostPolicy
from liifsr.serve.pyramid import TILE, tile_region
from liifsr.serve.service import DISCONNECT_POLL_S, DOWNLOADS_KEPT, KINDS, STATIC, Download, ServedImage, Server, TooLarge, log
from liifsr.serve.worker import Cancelled, Job, ModelThreadFailed
from liifsr.zoo import model_hint

# --- routes ----------------------------------------------------------------------------


def _state(request: Request) -> Server:
    return request.app.state.server


def _image(request: Request) -> ServedImage:
    served = _state(request).images.get(request.path_params["image_id"])
    if served is None:
        raise HTTPException(404, f"no image with id {request.path_params['image_id']!r} (list them at /api/images)")
    return served


async def _wait(request: Request, job: Job) -> Any:
    """The job's result; cancels it and raises Cancelled if the client disconnects first."""
    future = asyncio.wrap_future(job.future)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if nobody waits
    while True:
        done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_S)
        if done:
            return future.result()
        if await request.is_disconnected():
            job.cancel()
            raise Cancelled


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


async def config(request: Request) -> Response:
    server = _state(request)
    return JSONResponse({
        "model": server.model_name,
        "model_hint": model_hint(server.model_name),
        "precision": server.precision,
        "tile": TILE,
        "max_upload_bytes": server.limits.upload_bytes,
        "max_input_pixels": server.limits.input_pixels,
        "max_output_pixels": server.limits.output_pixels,
    })


async def list_images(request: Request) -> Response:
    return JSONResponse([served.describe() for served in list(_state(request).images.values())])  # uploads add to it meanwhile


# A client that leaves before its request body has arrived: normal, worth one log line at most.
CLIENT_GONE = Response(status_code=499)


async def upload(request: Request) -> Response:
    server = _state(request)
    name = unquote(request.headers.get("x-filename", ""))[:200] or "upload"
    limit = server.limits.upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"'{name}' is {int(declared):,} bytes, over this server's upload limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"'{name}' is over this server's upload limit of {limit:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        log.info("upload of %r: the client disconnected", name)
        return CLIENT_GONE
    if size == 0:
        raise HTTPException(400, "the upload is empty (send the image file as the request body)")
    try:
        served = await asyncio.to_thread(server.add_upload, name, b"".join(chunks))
    except ImageError as error:
        raise HTTPException(413 if isinstance(error, TooLarge) else 415, str(error)) from None
    return JSONResponse(served.describe(), status_code=201)


async def tile(request: Request) -> Response:
    server = _state(request)
    served = _image(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise HTTPException(404, f"unknown tile kind {kind!r} (model or bicubic)")
    index, col, row = (request.path_params[k] for k in ("level", "col", "row"))
    if index >= len(served.levels):
        raise HTTPException(404, f"level {index} does not exist (this image has levels 0 to {len(served.levels) - 1})")
    level = served.levels[index]
    if tile_region(level, col, row) is None:
        columns, rows = level.tiles()
        raise HTTPException(404, f"tile {col}_{row} does not exist at level {index} ({columns} x {rows} tiles)")
    if kind == "model" and not level.decoded:
        kind = "bicubic"  # overview levels are the same downscale in both layers
    key = (served.id, kind, index, col, row)
    data = server.cache.get(key)
    if data is None:
        job = server.worker.submit(lambda job: server.render_tile(served, kind, level, col, row, job))
        try:
            data = await _wait(request, job)
        except Cancelled:
            return Response(status_code=499)  # nobody is listening any more
        server.cache.put(key, data)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


async def start_download(request: Request) -> Response:
    server = _state(request)
    served = _image(request)
    try:
        body = await request.json()
    except ClientDisconnect:
        log.info("upscale request: the client disconnected")
        return CLIENT_GONE
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, 'the body must be JSON: {"scale": 4} or {"size": [height, width]}') from None
    if not isinstance(body, dict) or ("scale" in body) == ("size" in body):
        raise HTTPException(400, 'give exactly one of "scale" (a number) or "size" ([height, width])')
    scale, size = body.get("scale"), body.get("size")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise HTTPException(400, f'"scale" must be a number, got {scale!r}')
    is_pair = isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in size)
    if size is not None and not is_pair:
        raise HTTPException(400, f'"size" must be [height, width] in whole pixels, got {size!r}')
    try:
        out_hw = output_size((served.height, served.width), scale, tuple(size) if size else None)
    except UpscaleError as error:
        raise HTTPException(400, str(error)) from None
    pixels = out_hw[0] * out_hw[1]
    if pixels > server.limits.output_pixels:
        raise HTTPException(413, f"an output of {out_hw[1]}x{out_hw[0]} = {pixels:,} pixels is over this server's limit of "
                                 f"{server.limits.output_pixels:,} (choose a smaller scale or size)")
    job_id = secrets.token_hex(8)
    path = server.workdir / f"{job_id}.png"
    job = server.worker.submit(lambda job: server.render_download(served, out_hw, path, job), background=True)
    filename = f"{Path(served.name).stem}-{out_hw[1]}x{out_hw[0]}.png"
    server.downloads[job_id] = Download(job, pixels, path, filename)
    while len(server.downloads) > DOWNLOADS_KEPT:  # bounded disk use: the oldest go
        old = server.downloads.pop(next(iter(server.downloads)))
        old.job.cancel()
        old.path.unlink(missing_ok=True)
    return JSONResponse({"job": job_id, "width": out_hw[1], "height": out_hw[0]}, status_code=202)


def _download(request: Request) -> Download:
    download = _state(request).downloads.get(request.path_params["job_id"])
    if download is None:
        raise HTTPException(404, f"no download job {request.path_params['job_id']!r}")
    return download


def _progress(download: Download) -> dict[str, Any]:
    job, future = download.job, download.job.future
    state = "running"
    error = None
    if future.done():
        if future.exception() is None:
            state = "done"
        elif isinstance(future.exception(), Cancelled):
            state = "cancelled"
        else:
            state, error = "failed", " ".join(str(future.exception()).split())
    return {"state": state, "done": job.done_pixels, "total": download.total_pixels, "error": error}


async def download_events(request: Request) -> Response:
    download = _download(request)

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                progress = _progress(download)
                yield f"data: {json.dumps(progress)}\n\n"
                if progress["state"] != "running":
                    return
                await asyncio.sleep(0.25)
        finally:  # the client closed the stream (or it ended): unfinished work is dropped
            if not download.job.future.done():
                download.job.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def download_file(request: Request) -> Response:
    download = _download(request)
    if _progress(download)["state"] != "done":
        raise HTTPException(409, "this download is not finished (follow its progress at /events)")
    return FileResponse(download.path, media_type="image/png", filename=download.filename)


async def status(request: Request) -> Response:
    server = _state(request)
    return JSONResponse({
        "queued": server.worker.queued(),
        "decoded_tiles": server.decoded_tiles,
        "cache_bytes": server.cache.bytes,
        "cache_limit_bytes": server.cache.max_bytes,
        "cached_tiles": len(server.cache),
        **server.worker.stats,
    })


async def http_error(request: Request, error: HTTPException) -> Response:
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    return JSONResponse({"error": message}, status_code=error.status_code, headers=getattr(error, "headers", None))


async def model_failed(request: Request, error: Exception) -> Response:
    return JSONResponse({"error": f"{error}; the server is stopping"}, status_code=503)


async def image_failed(request: Request, error: Exception) -> Response:
    """A served file that cannot be decoded any more (changed or removed since it was listed)."""
    return JSONResponse({"error": str(error)}, status_code=422)


async def server_error(request: Request, error: Exception) -> Response:
    log.exception("error while answering %s", request.url.path)
    return JSONResponse({"error": f"internal error: {' '.join(str(error).split()) or type(error).__name__}"}, status_code=500)


def create_app(server: Server, hosts: HostPolicy) -> Starlette:
    """The app of `server`, answering only requests for the names of `hosts`."""
    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/status", status),
        Route("/api/images", list_images, methods=["GET"]),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/images/{image_id}/tiles/{kind}/{level:int}/{col:int}_{row:int}.png", tile),
        Route("/api/images/{image_id}/upscale", start_download, methods=["POST"]),
        Route("/api/jobs/{job_id}/events", download_events),
        Route("/api/jobs/{job_id}/file", download_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers: dict[Any, Callable[..., Awaitable[Response]]] = {
        HTTPException: http_error, ModelThreadFailed: model_failed, ImageError: image_failed, Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(Guard, policy=hosts)])
    app.state.server = server
    return app
