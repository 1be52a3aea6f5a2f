"""Configuration in one place: viewer.core.config reads every variable, checks it, and nothing runs at import."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from viewer.core import config
from viewer.core.access import GDAL_CONFIG
from viewer.core.config import BUNDLED_CATALOG, VARIABLES, settings
from viewer.core.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch):
    for v in VARIABLES:
        monkeypatch.delenv(v.name, raising=False)
    yield monkeypatch


def test_defaults(clean_env):
    clean_env.setenv("XDG_CACHE_HOME", "/tmp/xdg")
    s = settings()
    assert s.catalog is None and s.state_dir == Path("/tmp/xdg/viewer/layers")
    assert (s.state_max_files, s.state_max_mb, s.layer_cache) == (20000, 1024, 2048)
    assert (s.tile_timeout, s.export_timeout, s.export_threads, s.tile_cache_mb) == (20, 120, 2, 128)
    assert s.tile_threads == min(8, os.cpu_count() or 2)
    assert s.render_processes is None  # viewer serve decides: one per CPU, none with --num-procs
    assert (s.tile_url, s.tile_host, s.tile_port, s.http_timeout, s.cookie_secret) == (None, "127.0.0.1", 0, 10, None)


def test_values_are_read_when_asked_and_again_when_the_environment_changes(clean_env, tmp_path):
    clean_env.setenv("VIEWER_STATE_DIR", str(tmp_path / "a"))
    clean_env.setenv("VIEWER_TILE_TIMEOUT", "0.5")
    clean_env.setenv("VIEWER_TILE_URL", "")  # empty is a value here: page-relative tile URLs
    clean_env.setenv("VIEWER_CATALOG", str(tmp_path / "cat.json"))
    s = settings()
    assert s.state_dir == tmp_path / "a" and s.tile_timeout == 0.5 and s.tile_url == ""
    assert s.catalog == tmp_path / "cat.json"
    assert settings() is s  # cached while the environment is the same
    clean_env.setenv("VIEWER_STATE_DIR", str(tmp_path / "b"))
    assert settings().state_dir == tmp_path / "b"
    clean_env.setenv("VIEWER_TILE_CACHE_MB", "0")  # 0 turns the tile cache off
    assert settings().tile_cache_mb == 0
    config.clear()
    assert settings().state_dir == tmp_path / "b"


@pytest.mark.parametrize("name, raw, allowed", [
    ("VIEWER_TILE_TIMEOUT", "soon", "a positive number of seconds"),
    ("VIEWER_EXPORT_TIMEOUT", "-1", "a positive number of seconds"),
    ("VIEWER_TILE_THREADS", "1.5", "a positive integer"),
    ("VIEWER_EXPORT_THREADS", "0", "a positive integer"),
    ("VIEWER_RENDER_PROCESSES", "-1", "an integer 0..256"),
    ("VIEWER_RENDER_PROCESSES", "two", "an integer 0..256"),
    ("VIEWER_TILE_CACHE_MB", "-5", "a number >= 0"),
    ("VIEWER_TILE_PORT", "70000", "an integer 0..65535"),
    ("VIEWER_LAYER_CACHE", "many", "a positive number"),
    ("VIEWER_STATE_MAX_MB", "inf", "a positive number"),
    ("VIEWER_STATE_MAX_FILES", "nan", "a positive number"),
    ("GDAL_HTTP_TIMEOUT", "0", "a positive number of seconds"),
])
def test_a_bad_value_names_the_variable_and_what_is_allowed(clean_env, name, raw, allowed):
    clean_env.setenv(name, raw)
    with pytest.raises(InvalidArgument) as err:
        settings()
    assert f"{name}={raw!r} is not allowed; allowed: {allowed}" in str(err.value)
    assert err.value.value == raw


def test_catalog_default_is_the_bundled_one(clean_env):
    from viewer.core.catalog import default_catalog_path

    assert default_catalog_path() == BUNDLED_CATALOG and BUNDLED_CATALOG.is_file()


def _run(code: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in GDAL_CONFIG}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_changes_no_gdal_setting_and_the_first_open_applies_them():
    code = """
import json, os
import viewer, viewer.core, viewer.server, viewer.server.handlers, viewer.cli
from viewer.core.access import GDAL_CONFIG
at_import = {k: os.environ.get(k) for k in GDAL_CONFIG}
from viewer.core.read import open_raster
from viewer.core.catalog import get_catalog
path = next(iter(get_catalog().images.values())).bands[0].path
open_raster(path).close()
print(json.dumps({"at_import": at_import, "after_open": {k: os.environ.get(k) for k in GDAL_CONFIG}}))
"""
    got = _run(code, GDAL_HTTP_TIMEOUT="3")
    assert got["at_import"] == {k: ("3" if k == "GDAL_HTTP_TIMEOUT" else None) for k in GDAL_CONFIG}
    # the operator's value wins; every other serving default is in place before the first open
    assert got["after_open"] == {**GDAL_CONFIG, "GDAL_HTTP_TIMEOUT": "3"}
    assert got["after_open"]["PROJ_NETWORK"] == "OFF"
    assert got["after_open"]["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"


def test_a_crs_from_text_and_the_tile_routes_apply_the_gdal_settings_too():
    code = """
import json, os
from viewer.core.access import GDAL_CONFIG
from viewer.core.grid import parse_crs
parse_crs("EPSG:32616")
first = os.environ.get("PROJ_NETWORK")
print(json.dumps({"crs": first}))
"""
    assert _run(code) == {"crs": "OFF"}
    code = """
import json, os
from viewer.server.routes import tile_routes
tile_routes()
print(json.dumps({"routes": os.environ.get("PROJ_NETWORK")}))
"""
    assert _run(code) == {"routes": "OFF"}


def _environment_reads(path: Path) -> list[str]:
    """Every use of ``os.environ``/``os.getenv`` in one module other than a write
    (``os.environ[k] = v``, ``os.environ.setdefault(k, v)``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and ast.unparse(node) in ("os.environ", "os.getenv")):
            continue
        parent = parents[node]
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
            continue
        if isinstance(parent, ast.Attribute) and parent.attr == "setdefault":
            continue
        found.append(f"{path.name}:{node.lineno} {ast.unparse(parent)[:60]}")
    return found


def test_only_the_config_module_reads_the_environment():
    modules = sorted((ROOT / "viewer" / "core").glob("*.py")) + sorted((ROOT / "viewer" / "server").glob("*.py"))
    modules.append(ROOT / "viewer" / "cli.py")
    reads = [r for p in modules if p.name != "config.py" for r in _environment_reads(p)]
    assert reads == []
    assert _environment_reads(ROOT / "viewer" / "core" / "config.py")  # the check finds reads where they are


def test_readme_lists_every_variable():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for v in VARIABLES:
        assert f"`{v.name}`" in section, v.name


def test_gdals_block_cache_is_bounded_unless_the_operator_sets_it():
    """GDAL sizes its block cache once, from GDAL_CACHEMAX (default: 5 % of the RAM); the first
    open has set 128 MB by then. Read back from libgdal itself (GDALGetCacheMax64)."""
    code = """
import ctypes, glob, json, os
import rasterio
from viewer.core.read import open_raster
from viewer.core.catalog import get_catalog
path = next(iter(get_catalog().images.values())).bands[0].path
with open_raster(path) as ds:
    ds.read(1, window=((0, 64), (0, 64)))
lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(rasterio.__file__), "..", "rasterio.libs", "libgdal*.so*"))[0])
lib.GDALGetCacheMax64.restype = ctypes.c_int64
print(json.dumps({"cache_max": lib.GDALGetCacheMax64()}))
"""
    assert _run(code) == {"cache_max": 128 * 2**20}
    assert _run(code, GDAL_CACHEMAX="64") == {"cache_max": 64 * 2**20}  # the operator's value wins
