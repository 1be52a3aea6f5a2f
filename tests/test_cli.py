"""The ``viewer`` command: start-up problems are one line and a non-zero exit, never a traceback;
the ``--basic-auth`` file format."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from viewer.cli import StartupError, basic_auth_setting, read_password_file


def run_viewer(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VIEWER_STATE_DIR=str(tmp_path / "state"))
    env.pop("VIEWER_CATALOG", None)
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def assert_one_line_error(out: subprocess.CompletedProcess, *fragments: str) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("viewer: error: "), out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_missing_catalog(tmp_path):
    assert_one_line_error(run_viewer("serve", "--catalog", "/nonexistent.json", tmp_path=tmp_path),
                          "/nonexistent.json", "does not exist")
    assert_one_line_error(run_viewer("catalog", "--catalog", "/nonexistent.json", tmp_path=tmp_path),
                          "/nonexistent.json")


def test_malformed_catalog(tmp_path):
    bad = tmp_path / "catalog.json"
    bad.write_text('{"images": ')
    assert_one_line_error(run_viewer("serve", "--catalog", str(bad), tmp_path=tmp_path), str(bad), "JSON")


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert_one_line_error(run_viewer("serve", "--port", str(port), tmp_path=tmp_path),
                              f"cannot listen on 127.0.0.1:{port}")


def test_malformed_password_file_names_file_and_line_but_not_the_password(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("alice:secret-one\n# comment\nbob-without-password\n")
    line = assert_one_line_error(run_viewer("serve", "--basic-auth", str(users), tmp_path=tmp_path),
                                 str(users), "line 3", "user:password")
    assert "secret-one" not in line and "bob-without-password" not in line


def test_password_file_format(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# who may look\n\n  alice:pa:ss word  \r\nbob:x#y\n")
    assert read_password_file(users) == {"alice": "pa:ss word", "bob": "x#y"}
    assert basic_auth_setting(str(users)) == {"alice": "pa:ss word", "bob": "x#y"}
    assert basic_auth_setting("just-a-password") == "just-a-password"


@pytest.mark.parametrize("text, message", [
    ("alice\n", "line 1: expected user:password"),
    ("# c\n:nobody\n", "line 2: expected user:password"),
    ("alice:\n", "line 1: expected user:password"),
    ("alice:a\nalice:b\n", "line 2: user 'alice' is listed twice"),
    ('{"alice": "a"}\n', "line 1: looks like JSON"),
    ("# nothing\n\n", "has no user:password line"),
])
def test_malformed_password_files(tmp_path, text, message):
    users = tmp_path / "users.txt"
    users.write_text(text)
    with pytest.raises(StartupError, match=message):
        read_password_file(users)


def test_a_bad_environment_variable_stops_the_start(tmp_path):
    env = dict(os.environ, VIEWER_STATE_DIR=str(tmp_path / "state"), VIEWER_TILE_TIMEOUT="soon")
    out = subprocess.run([sys.executable, "-m", "viewer.cli", "serve", "--port", "0"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert_one_line_error(out, "VIEWER_TILE_TIMEOUT='soon' is not allowed", "a positive number of seconds")
