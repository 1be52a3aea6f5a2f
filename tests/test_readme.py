"""The README's Python examples run as written."""
import re
from pathlib import Path

import pytest

import viewer

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write (m.to_html("map.html")) land here
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    if "png" in namespace:
        assert namespace["png"][:4] == b"\x89PNG"
    if "m" in namespace and hasattr(namespace["m"], "layers"):
        m = namespace["m"]
        names = [layer.name for layer in m.layers]
        if "col" in namespace:  # the analysis example: its region figures are reduceRegion's
            assert names == ["Landsat 8 (time slider)", "median"]
            [median] = [entry for entry in m.region_stats(scale=60)["layers"] if entry["name"] == "median"]
            b4 = median["summary"]["bands"][0]
            expected = namespace["col"].median().select(["B4"]).reduceRegion(viewer.Reducer.mean(), m.user_roi, 60)
            assert b4["count"] > 100_000 and b4["mean"] == expected["B4"]
        else:
            assert names[:1] == ["Sentinel-2 image"]
    if "cmp" in namespace:
        assert namespace["cmp"].accuracy == pytest.approx(0.9)
