"""`liifsr serve` in a real headless Chromium: zoom to x8 at a point, the pixels shown are
the CLI's upscale of that region (and bicubic left of the split); a corrupt upload shows
its error in the page while the server keeps serving."""

import json
import os
import shutil
import time
import urllib.request
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'liifsr[serve]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")

from serve_helpers import running  # noqa: E402

from liifsr.cli import main  # noqa: E402
from liifsr.imageio import sample_image  # noqa: E402
from liifsr.resize import imresize  # noqa: E402
from liifsr.serve.service import Server, served_files  # noqa: E402
from liifsr.zoo import load_model  # noqa: E402

WINDOW = (1100, 760)
SCALE = 8
POINT = (70, 50)  # LR pixel the view is centred on


def chromium():
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        reason = "Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must run the browser test")
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 "--force-device-scale-factor=1", "--force-color-profile=srgb", "--hide-scrollbars"):
        options.add_argument(flag)
    options.binary_location = binary
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(browser, script, timeout, what):
    deadline = time.monotonic() + timeout
    while not browser.execute_script(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 160 x 120 crop of the bundled photograph: at x8 wider and taller than the viewer."""
    path = tmp_path_factory.mktemp("serve") / "face.png"
    Image.open(sample_image()).convert("RGB").crop((150, 60, 310, 180)).save(path)
    return path


def test_zoom_shows_the_cli_upscale_and_uploads_report_errors(photo, tmp_path):
    browser = chromium()
    server = Server(load_model(), "edsr-liif-relu-skip-shared", served_files([(photo.name, photo)]))
    try:
        with running(server) as url:
            browser.get(url + "/?image=0")
            wait_for(browser, "return window.liifsr && window.liifsr.ready", 60, "the page")
            browser.execute_script(f"liifsr.zoomTo({SCALE}, {POINT[0]}, {POINT[1]})")
            wait_for(browser, "return liifsr.idle()", 600, "the tiles")
            origin = browser.execute_script("return liifsr.origin()")
            shown = np.asarray(Image.open(BytesIO(browser.find_element("id", "viewer").screenshot_as_png)).convert("RGB")).astype(int)
            assert origin["scale"] == SCALE and abs(origin["zoom"] - SCALE) < 1e-6
            x0, y0, split = round(origin["x"]), round(origin["y"]), round(origin["split"])
            assert abs(origin["x"] - x0) < 1e-3 and abs(origin["y"] - y0) < 1e-3  # pixel-aligned

            assert main(["upscale", str(photo), "--scale", str(SCALE), "-o", str(tmp_path / "cli.png"),
                         "--precision", "fp32"]) == 0  # the server's precision (the CLI's default may be bf16)
            cli = np.asarray(Image.open(tmp_path / "cli.png")).astype(int)
            height = shown.shape[0] - 170  # leave out the navigator and labels at the bottom
            model_side = shown[60:height, split + 16 : -4]  # right of the split line and its handle
            expected = cli[y0 + 60 : y0 + height, x0 + split + 16 : x0 + shown.shape[1] - 4]
            assert model_side.shape == expected.shape and model_side.shape[1] > 300
            assert np.abs(model_side - expected).max() <= 1 and (model_side != expected).mean() < 1e-3

            lr = np.asarray(Image.open(photo), dtype=np.float64) / 255
            bicubic = imresize(__import__("torch").from_numpy(lr).permute(2, 0, 1), scale=SCALE).permute(1, 2, 0).numpy()
            bicubic = np.rint(np.clip(bicubic, 0, 1) * 255).astype(int)
            bicubic_side = shown[60:height, 40 : split - 16]  # OpenSeadragon's buttons are top left
            assert np.abs(bicubic_side - bicubic[y0 + 60 : y0 + height, x0 + 40 : x0 + split - 16]).max() <= 1
            assert np.abs(bicubic_side - model_side[:, : bicubic_side.shape[1]]).mean() > 1  # two different images

            if os.environ.get("LIIFSR_SCREENSHOT"):  # tools/serve_screenshot.sh
                browser.save_screenshot(os.environ["LIIFSR_SCREENSHOT"])

            corrupt = tmp_path / "corrupt.png"
            corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
            browser.find_element("id", "upload").send_keys(str(corrupt))
            wait_for(browser, "return document.getElementById('message').textContent.includes('upload failed')", 60, "the upload error")
            message = browser.find_element("id", "message").text
            assert "corrupt.png" in message and "cannot read" in message, message
            with urllib.request.urlopen(url + "/api/images") as response:  # still serving
                assert [image["name"] for image in json.load(response)] == [photo.name]
    finally:
        browser.quit()
