"""A long fuzzing run of tests/test_fuzz.py (issue 7): many more examples than CI runs.

    uv run python benchmarks/fuzz_long.py                 # 10,000 examples per property
    uv run python benchmarks/fuzz_long.py 50000 -k tile   # more, only the tile-URL properties

It sets ``$VIEWER_FUZZ_EXAMPLES`` (read by tests/test_fuzz.py), which also turns off
derandomization: each long run draws fresh examples, and a failure prints the falsifying
example and a ``@reproduce_failure`` blob. Extra arguments go to pytest.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    examples = argv[0] if argv and argv[0].isdigit() else "10000"
    extra = argv[1:] if argv and argv[0].isdigit() else argv
    env = dict(os.environ, VIEWER_FUZZ_EXAMPLES=examples)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           str(ROOT / "tests" / "test_fuzz.py"), *extra]
    print(f"VIEWER_FUZZ_EXAMPLES={examples} {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"fuzz_long: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
