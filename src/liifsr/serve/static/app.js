// liifsr serve: continuous zoom with tiles decoded on demand.
//
// Two tiled images share one OpenSeadragon world: bicubic underneath (cheap, all levels,
// also the placeholder while the model's tiles decode) and the model's tiles on top,
// clipped to the right of the split line. The model layer only ever loads the one level
// that suits the target zoom (never the intermediate ones of a zoom animation), and its
// requests for tiles that left the view are aborted, which cancels them on the server.
"use strict";
(() => {
  const OSD = window.OpenSeadragon;
  // A level is drawn down to this many screen pixels per level pixel (0.75: at most 1.33x
  // downsampled, and magnified by at most 1.06x between the half-octave levels).
  const MIN_PIXEL_RATIO = 0.75;
  const MAX_ZOOM = 30;
  const $ = (id) => document.getElementById(id);
  // Sent with every request that changes something: the server refuses those without it
  // (or a JSON body), which another site's page cannot send here without the server's consent.
  const OWN_PAGE = { "X-Liifsr": "1" };
  const state = {
    config: null, images: [], image: null, viewer: null, model: null, bicubic: null,
    split: 0.5, level: -1, pending: new Map(), batchTotal: 0, batchDone: 0, download: null,
  };

  function showMessage(text, kind = "error") {
    const box = $("message");
    box.textContent = text;
    box.className = kind;
    box.hidden = !text;
  }

  async function api(url, options) {
    const response = await fetch(url, options);
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
    return body;
  }

  // --- levels and tile sources ---------------------------------------------------------

  function bestLevel(image, zoom) {
    let best = 0;
    image.levels.forEach((level, i) => { if (zoom / level.scale >= MIN_PIXEL_RATIO - 1e-9) best = i; });
    return best;
  }

  function makeSource(image, kind) {
    const T = image.tile, overlap = image.overlap;
    const aspect = image.height / image.width;
    const levels = image.levels;
    return new OSD.TileSource({
      width: image.width, height: image.height, tileSize: T, tileOverlap: overlap,
      minLevel: 0, maxLevel: levels.length - 1, liifsrKind: kind,
      getLevelScale: (level) => levels[level].width / image.width,
      getNumTiles: (level) => new OSD.Point(Math.ceil(levels[level].width / T), Math.ceil(levels[level].height / T)),
      // Exact level sizes from the server (round(h * s), round(w * s)), not OSD's own rounding.
      getTileBounds: (level, x, y, isSource) => {
        const lv = levels[level];
        const px = x ? x * T - overlap : 0, py = y ? y * T - overlap : 0;
        const sx = Math.min(T + (x ? 2 : 1) * overlap, lv.width - px), sy = Math.min(T + (y ? 2 : 1) * overlap, lv.height - py);
        if (isSource) return new OSD.Rect(0, 0, sx, sy);
        const fy = aspect / lv.height;
        return new OSD.Rect(px / lv.width, py * fy, sx / lv.width, sy * fy);
      },
      getTileAtPoint: (level, point) => {
        const lv = levels[level];
        const x = Math.floor(point.x * lv.width / T), y = Math.floor(point.y / aspect * lv.height / T);
        return new OSD.Point(Math.max(0, Math.min(x, Math.ceil(lv.width / T) - 1)), Math.max(0, Math.min(y, Math.ceil(lv.height / T) - 1)));
      },
      getTileUrl: (level, x, y) => `/api/images/${image.id}/tiles/${kind}/${level}/${x}_${y}.png`,
      downloadTileStart: (context) => loadTile(context, kind),
      downloadTileAbort: (context) => { if (context.userData.controller) context.userData.controller.abort(); },
    });
  }

  async function loadTile(context, kind) {
    const controller = new AbortController();
    const entry = { controller, kind, level: context.tile.level, tile: context.tile, src: context.src };
    context.userData.controller = controller;
    if (!wanted(entry) || [...state.pending.values()].some((e) => e.src === entry.src)) {
      // Not (or no longer) in view, or asked for already: OpenSeadragon may ask again later.
      context.fail("liifsr: aborted", null);
      return;
    }
    state.pending.set(context, entry);
    state.batchTotal += 1;
    updateProgress();
    try {
      const response = await fetch(context.src, { signal: controller.signal });
      if (!response.ok) {
        let text = `${response.status}`;
        try { text = (await response.json()).error; } catch (_) { /* keep the status */ }
        throw new Error(text);
      }
      const blob = await response.blob();
      finishTile(context, () => context.finish(blob, null, "rasterBlob"));
    } catch (error) {
      const aborted = error.name === "AbortError";
      if (!aborted) showMessage(`tile failed: ${error.message}`);
      finishTile(context, () => context.fail(aborted ? "liifsr: aborted" : String(error.message), null));
    }
  }

  function finishTile(context, settle) {
    if (!state.pending.delete(context)) return; // settled already
    state.batchDone += 1;
    updateProgress();
    settle();
  }

  // --- viewer ------------------------------------------------------------------------

  function createViewer() {
    OSD.DEFAULT_SETTINGS.timeout = 600000; // tiles wait in the model's queue
    const viewer = OSD({
      element: $("viewer"),
      prefixUrl: "/static/vendor/openseadragon/images/",
      drawer: "canvas",
      maxZoomPixelRatio: MAX_ZOOM,
      minPixelRatio: MIN_PIXEL_RATIO,
      immediateRender: true,
      blendTime: 0,
      animationTime: 0.6,
      maxImageCacheCount: 300,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      gestureSettingsMouse: { clickToZoom: false },
    });
    viewer.addHandler("tile-load-failed", (event) => {
      // An aborted tile may be wanted again later: let OpenSeadragon ask for it again
      // (after it has marked the tile as missing, which it does once this event returns).
      if (event.message === "liifsr: aborted") setTimeout(() => { event.tile.exists = true; viewer.forceRedraw(); }, 0);
    });
    viewer.addHandler("zoom", onZoom);
    viewer.addHandler("viewport-change", () => { updateClip(); updateScaleField(); });
    viewer.addHandler("animation-finish", () => { alignToPixels(); abortUnneeded(); });
    viewer.addHandler("resize", updateClip);
    return viewer;
  }

  function imageZoom(current) {
    if (!state.model) return 1;
    return state.model.viewportToImageZoom(state.viewer.viewport.getZoom(current));
  }

  function onZoom() {
    if (!state.model) return;
    // The model layer loads one level: the one for the zoom the animation is heading to.
    const level = bestLevel(state.image, imageZoom(false));
    if (level !== state.level) {
      state.level = level;
      state.model.source.minLevel = level;
      state.model.source.maxLevel = level;
      abortUnneeded();
      state.viewer.forceRedraw();
    }
    const lv = state.image.levels[level];
    $("level").textContent = lv.decoded ? `tiles: model at ×${formatScale(lv.scale)}` : `tiles: overview ×${formatScale(lv.scale)}`;
  }

  function formatScale(s) { return s >= 10 ? s.toFixed(1) : s.toFixed(2); }

  function updateScaleField() {
    const field = $("scale");
    if (document.activeElement !== field) field.value = formatScale(imageZoom(true));
  }

  // Left of the split line shows bicubic (the layer underneath), right of it the model.
  function updateClip() {
    if (!state.model) return;
    const width = $("viewer").clientWidth;
    $("split").style.left = `${state.split * 100}%`;
    const x = state.model.viewerElementToImageCoordinates(new OSD.Point(state.split * width, 0)).x;
    const left = Math.max(0, Math.min(x, state.image.width));
    state.model.setClip(new OSD.Rect(left, 0, state.image.width - left, state.image.height));
  }

  // At a level's exact scale one level pixel is one screen pixel: put the pixel grid on
  // the screen's, so tiles are drawn as they are (no resampling).
  function alignToPixels() {
    if (!state.model) return;
    const level = state.image.levels[state.level];
    if (!level || Math.abs(imageZoom(true) - level.scale) > 1e-6 * level.scale) return;
    const origin = state.model.imageToViewerElementCoordinates(new OSD.Point(0, 0));
    const dx = origin.x - Math.round(origin.x), dy = origin.y - Math.round(origin.y);
    if (Math.abs(dx) < 1e-3 && Math.abs(dy) < 1e-3) return;
    const viewport = state.viewer.viewport;
    viewport.panBy(viewport.deltaPointsFromPixels(new OSD.Point(dx, dy)), true);
  }

  // Whether a tile is in the view the viewer is heading to (and, for the model, at its level).
  function wanted(entry) {
    if (!state.model) return false;
    if (entry.kind === "model" && entry.level > state.level) return false; // lower ones are cheap: keep them
    const item = entry.kind === "model" ? state.model : state.bicubic;
    const bounds = item.source.getTileBounds(entry.level, entry.tile.x, entry.tile.y);
    const view = item.viewportToImageRectangle(state.viewer.viewport.getBounds(false));
    const width = state.image.width;
    return intersects(new OSD.Rect(bounds.x * width, bounds.y * width, bounds.width * width, bounds.height * width), view);
  }

  function abortUnneeded() {
    for (const entry of state.pending.values()) if (!wanted(entry)) entry.controller.abort();
  }

  function intersects(a, b) {
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  }

  function updateProgress() {
    const pending = state.pending.size;
    if (pending === 0) { state.batchTotal = 0; state.batchDone = 0; }
    $("tile-progress").max = Math.max(1, state.batchTotal);
    $("tile-progress").value = state.batchDone;
    $("progress-box").style.visibility = pending ? "visible" : "hidden";
    $("tile-text").textContent = pending ? `decoding: ${state.batchDone} of ${state.batchTotal} tiles` : "";
  }

  function addItem(image, kind) {
    return new Promise((resolve, reject) => {
      state.viewer.addTiledImage({
        tileSource: makeSource(image, kind),
        success: (event) => resolve(event.item),
        error: (event) => reject(new Error(event.message || "cannot open the image")),
      });
    });
  }

  async function openImage(image) {
    state.image = image;
    state.level = -1;
    for (const entry of state.pending.values()) entry.controller.abort();
    state.viewer.world.removeAll();
    state.model = null;
    state.bicubic = await addItem(image, "bicubic");
    const model = await addItem(image, "model");  // the model's layer, over bicubic's
    state.model = model;
    $("images").value = image.id;
    onZoom();
    updateClip();
    updateScaleField();
  }

  function zoomTo(scale, x, y) {
    const viewport = state.viewer.viewport;
    const z = Math.max(0.01, Math.min(MAX_ZOOM, scale));
    const center = (x === undefined) ? viewport.getCenter(false) : state.model.imageToViewportCoordinates(new OSD.Point(x, y));
    viewport.zoomTo(state.model.imageToViewportZoom(z), null, true);
    viewport.panTo(center, true);
    onZoom();
    alignToPixels();
  }

  // --- images, upload, download ---------------------------------------------------------

  function listImages(images) {
    state.images = images;
    const select = $("images");
    select.innerHTML = "";
    for (const image of images) {
      const option = document.createElement("option");
      option.value = image.id;
      option.textContent = `${image.name} (${image.width}×${image.height})`;
      select.appendChild(option);
    }
  }

  async function upload(file) {
    showMessage(`uploading ${file.name}…`, "info");
    try {
      const image = await api("/api/images", {
        method: "POST", body: file, headers: { ...OWN_PAGE, "X-Filename": encodeURIComponent(file.name) },
      });
      listImages(await api("/api/images"));
      await openImage(image);
      showMessage("");
    } catch (error) {
      showMessage(`upload failed: ${error.message}`);
    }
  }

  function parseTarget(text) {
    const size = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(text);
    if (size) return { size: [Number(size[1]), Number(size[2])] };
    const scale = Number(text);
    if (text.trim() === "" || !Number.isFinite(scale)) throw new Error(`'${text}' is neither a scale (e.g. 4) nor a size HEIGHTxWIDTH (e.g. 1080x1920)`);
    return { scale };
  }

  async function startDownload() {
    if (!state.image) return;
    let job;
    try {
      job = await api(`/api/images/${state.image.id}/upscale`, {
        method: "POST", headers: { ...OWN_PAGE, "Content-Type": "application/json" },
        body: JSON.stringify(parseTarget($("download-target").value)),
      });
    } catch (error) {
      showMessage(`download: ${error.message}`);
      return;
    }
    showMessage(`upscaling to ${job.width}×${job.height}…`, "info");
    const bar = $("download-progress");
    bar.hidden = false; bar.value = 0;
    $("download-cancel").hidden = false;
    const events = new EventSource(`/api/jobs/${job.job}/events`);
    state.download = events;
    const finish = () => { events.close(); state.download = null; bar.hidden = true; $("download-cancel").hidden = true; };
    events.onmessage = (message) => {
      const progress = JSON.parse(message.data);
      bar.max = progress.total; bar.value = progress.done;
      if (progress.state === "running") return;
      finish();
      if (progress.state === "done") {
        showMessage(`upscaled to ${job.width}×${job.height}`, "info");
        const link = document.createElement("a");
        link.href = `/api/jobs/${job.job}/file`;
        link.download = "";
        document.body.appendChild(link); link.click(); link.remove();
      } else {
        showMessage(`download ${progress.state}${progress.error ? ": " + progress.error : ""}`);
      }
    };
    events.onerror = () => { if (state.download === events) { finish(); showMessage("download: the connection to the server was lost"); } };
  }

  // --- wiring ----------------------------------------------------------------------------

  function initSplit() {
    const handle = $("split-handle");
    handle.addEventListener("pointerdown", (event) => {
      handle.setPointerCapture(event.pointerId);
      const move = (e) => {
        const rect = $("viewer").getBoundingClientRect();
        state.split = Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
        updateClip();
        state.viewer.forceRedraw();
      };
      const up = () => { handle.removeEventListener("pointermove", move); handle.removeEventListener("pointerup", up); };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
      event.stopPropagation();
    });
  }

  async function main() {
    state.viewer = createViewer();
    initSplit();
    $("scale").addEventListener("change", () => { if (state.model) zoomTo(Number($("scale").value)); });
    $("zoom-in").addEventListener("click", () => zoomTo(imageZoom(false) * Math.SQRT2));
    $("zoom-out").addEventListener("click", () => zoomTo(imageZoom(false) / Math.SQRT2));
    $("images").addEventListener("change", () => openImage(state.images.find((i) => i.id === $("images").value)));
    $("upload").addEventListener("change", (event) => { if (event.target.files[0]) upload(event.target.files[0]); event.target.value = ""; });
    $("download").addEventListener("click", startDownload);
    $("download-target").addEventListener("keydown", (event) => { if (event.key === "Enter") startDownload(); });
    $("download-cancel").addEventListener("click", () => {
      if (state.download) { state.download.close(); state.download = null; }
      $("download-progress").hidden = true; $("download-cancel").hidden = true;
      showMessage("download cancelled", "info");
    });
    updateProgress();
    try {
      state.config = await api("/api/config");
      $("model").textContent = `model: ${state.config.model} (${state.config.precision})`;
      $("model-hint").textContent = state.config.model_hint;
      listImages(await api("/api/images"));
      const wanted = new URLSearchParams(location.search).get("image");
      const first = state.images.find((i) => i.id === wanted) || state.images[0];
      if (first) await openImage(first); else showMessage("upload an image to start", "info");
    } catch (error) {
      showMessage(`cannot reach the liifsr server: ${error.message}`);
    }
    window.liifsr.ready = true;
  }

  // For scripts and tests: the state, and where the screen's pixels come from.
  window.liifsr = {
    ready: false, state, zoomTo, openImage,
    idle: () => state.pending.size === 0 && !!state.model && state.model.getFullyLoaded() && state.bicubic.getFullyLoaded(),
    // Level pixel at the viewer element's top-left corner, when at the level's exact scale.
    origin: () => {
      const p = state.model.imageToViewerElementCoordinates(new OSD.Point(0, 0));
      const level = state.image.levels[state.level];
      return { level: state.level, scale: level.scale, zoom: imageZoom(true), x: -p.x, y: -p.y, split: state.split * $("viewer").clientWidth };
    },
  };
  main();
})();
