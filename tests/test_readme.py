"""The README's Python examples run as written."""
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "viewer.Map" not in b
          and "pn.serve" not in b]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(code):
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    if "png" in namespace:
        assert namespace["png"][:4] == b"\x89PNG"
    if "cmp" in namespace:
        assert namespace["cmp"].accuracy == pytest.approx(0.9)
