"""Regenerate the screenshots in ``docs/`` (headless system Chromium against ``viewer serve``).

    uv run python docs/screenshots.py

Every picture is taken at 1280x800 (the issue's laptop size) and the main ones also at
1920x1080 (``*_1920.png``). Web requests other than the local server are blocked, as on an
offline demo machine; the online-basemap picture shows the notice that follows.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZES = {"": (1280, 800), "_1920": (1920, 1080)}


def _serve(script: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, VIEWER_STATE_DIR=tempfile.mkdtemp(prefix="viewer-shots-"))
    proc = subprocess.Popen(script + ["--port", str(port), "--address", "127.0.0.1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=5)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


def _ready(page, button: str) -> None:
    page.get_by_role("button", name=re.compile(rf"^{re.escape(button)}")).first.wait_for(timeout=60000)
    page.wait_for_timeout(5000)


def _uids() -> dict[str, str]:
    """Demo layer name -> its stable uid (the same in every session: the URL names layers by it)."""
    os.environ.setdefault("VIEWER_STATE_DIR", tempfile.mkdtemp(prefix="viewer-shots-"))
    from viewer.ui.demo import demo_map

    return {l.name: l.uid for l in demo_map().state.layers}


def _query(**layers: str) -> str:
    uids = _uids()
    params = {"lon": "-87.42", "lat": "30.735", "zoom": "14"}
    params.update({uids[name]: value for name, value in layers.items()})
    return "?" + urllib.parse.urlencode(params, safe=",:;")


def main() -> None:
    from viewer.ui.demo import PREDICTION, TRUTH

    proc, url = _serve([sys.executable, "-m", "viewer.cli", "serve"])
    overlays = _query(**{PREDICTION: "vis:1;op:0.55", TRUTH: "vis:0", "Cloud mask (BQA high confidence)": "vis:0"})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("VIEWER_CHROMIUM", "/usr/bin/chromium"),
                                        args=ARGS)
            for suffix, (w, h) in SIZES.items():
                page = browser.new_page(viewport={"width": w, "height": h})
                page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
                # the first screen of the demo
                page.goto(url)
                _ready(page, "vegetation")
                page.screenshot(path=str(DOCS / f"demo{suffix}.png"))
                # true colour and the prediction overlay (k-means relabelled), a click in the inspector
                page.goto(url + overlays)
                _ready(page, "vegetation")
                box = page.locator("canvas").first.bounding_box()
                page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
                page.wait_for_timeout(2500)
                page.screenshot(path=str(DOCS / f"overlays{suffix}.png"))
                if suffix:
                    page.close()
                    continue
                # prediction vs truth: IoU in view and the difference layer
                page.goto(url)
                _ready(page, "vegetation")
                page.get_by_text("Prediction vs truth (IoU in view)").click()
                page.get_by_text(re.compile("mean IoU")).first.wait_for(timeout=40000)
                page.get_by_text("Legend of the current view").click()  # fold the legend: the table shows
                page.get_by_role("button", name="Show difference").click()
                page.wait_for_timeout(5000)
                page.screenshot(path=str(DOCS / "compare.png"))
                # both side panels hidden: the map takes the window
                page.goto(url)
                _ready(page, "vegetation")
                for i in range(2):
                    page.locator(".viewer-panel-hide button").nth(i).click()
                page.wait_for_timeout(4000)
                page.screenshot(path=str(DOCS / "panels_hidden.png"))
                # add a layer from the catalog: Landsat B5 with viridis
                for i in range(2):
                    page.locator(".viewer-panel-show button").nth(i).click()
                card = page.locator(".viewer-add-layer")
                card.get_by_text("Add a layer from the catalog").click()
                card.locator("select").first.select_option("LANDSAT/LC08/SAMPLE")
                card.get_by_text("1 band", exact=True).click()
                card.locator("select").nth(4).select_option("B5")
                card.locator("select").nth(5).select_option("viridis")
                card.locator("input[type=text]").last.fill("Landsat 8 NIR")
                card.locator("input[type=text]").last.press("Enter")
                card.get_by_role("button", name="Add layer").click()
                page.wait_for_timeout(6000)
                page.screenshot(path=str(DOCS / "add_layer.png"))
                # an online basemap with no network: the notice
                page.goto(url)
                _ready(page, "vegetation")
                page.locator(".viewer-panel-left select").first.select_option("OpenStreetMap")
                page.get_by_text(re.compile("did not load")).first.wait_for(timeout=20000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(DOCS / "basemap_offline.png"))
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
