"""`python wsgi.py`'s own checks, run as the demo runs them (a fresh interpreter, eventlet patched)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sandbox_readiness_check_ignores_an_http_proxy(sandbox):
    env = {key: value for key, value in os.environ.items() if key.lower() not in ("no_proxy", "http_proxy")}
    env["HTTP_PROXY"] = env["http_proxy"] = "http://127.0.0.1:9"  # a proxy that answers nothing
    result = subprocess.run(
        [sys.executable, "-c", f"import wsgi; print(wsgi._sandbox_pid({sandbox.port}))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(os.getpid())  # the in-process sandbox of this test run
