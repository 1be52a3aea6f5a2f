"""Scale-out: two `viewer serve` processes sharing one state folder render any token identically."""
from __future__ import annotations

import os
import subprocess
import sys

import viewer
from viewer.core.layers import class_layer, image_layer, register

from test_server import fetch, free_port, scene_tiles, wait_up


def test_two_processes_sharing_the_state_folder_render_the_same_tiles(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("VIEWER_STATE_DIR", str(state))
    tokens = [register(image_layer(viewer.Image("LANDSAT/LC08/SAMPLE"), {"bands": ["B5"], "min": 7000,
                                                                         "max": 20000, "palette": ["000000", "00ff00"]})),
              register(class_layer(viewer.Image("VIEWER/SAMPLE_CLASSES/LC08_RULES")))]
    procs, bases = [], []
    env = dict(os.environ, VIEWER_STATE_DIR=str(state), PYTHONUNBUFFERED="1")
    try:
        for i in range(2):
            port = free_port()
            log = open(tmp_path / f"server{i}.log", "wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "viewer.cli", "serve", "--port", str(port)],
                                          stdout=log, stderr=subprocess.STDOUT, env=env))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs):
            wait_up(base + "/", proc)
        for token in tokens:  # registered by this process only: both servers read it from the folder
            for z, x, y in scene_tiles(13)[:3]:
                a = fetch(f"{bases[0]}/tiles/{token}/{z}/{x}/{y}.png")
                b = fetch(f"{bases[1]}/tiles/{token}/{z}/{x}/{y}.png")
                assert a[0] == b[0] == 200
                assert a[2] == b[2] and a[1]["Etag"] == b[1]["Etag"]
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
