"""Regenerate the screenshots in ``docs/`` (headless system Chromium against ``viewer serve``).

    uv run python docs/screenshots.py
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _serve(script: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(script + ["--port", str(port), "--address", "127.0.0.1"],
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
    page.get_by_role("button", name=re.compile(rf"^{button}")).first.wait_for(timeout=60000)
    page.wait_for_timeout(6000)


def main() -> None:
    proc, url = _serve([sys.executable, "-m", "viewer.cli", "serve"])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("VIEWER_CHROMIUM", "/usr/bin/chromium"),
                                        args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            _ready(page, "vegetation")
            page.screenshot(path=str(DOCS / "demo.png"))
            # true colour and the k-means overlay (visible layers and opacities from the URL)
            page.goto(url + "?lon=-87.42&lat=30.735&zoom=14&layers=1,3&opacity=1,1,1,0.55,0.45,0.7")
            _ready(page, "cluster 0")
            box = page.locator("canvas").first.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
            page.wait_for_timeout(2500)
            page.screenshot(path=str(DOCS / "overlays.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
