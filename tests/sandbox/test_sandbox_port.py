"""A taken port is an error: the sandbox never shares one, and the demo never uses a stranger's."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from stripe_sandbox.server import PortUnavailable, SandboxServer

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port():
    """A port some other program is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


def test_sandbox_server_raises_on_a_taken_port(taken_port):
    with pytest.raises(PortUnavailable) as exc:
        SandboxServer(port=taken_port)
    assert f"127.0.0.1:{taken_port}" in str(exc.value.strerror)
    assert "Address already in use" in exc.value.strerror


def test_sandbox_server_raises_on_a_port_another_sandbox_holds(sandbox):
    with pytest.raises(PortUnavailable):
        SandboxServer(port=sandbox.port)
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).status_code == 200


def test_cli_exits_non_zero_with_a_clear_message(taken_port):
    done = subprocess.run(
        [sys.executable, "-m", "stripe_sandbox", "--port", str(taken_port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken_port}" in done.stderr
    assert "listening on" not in done.stdout


def test_the_sandbox_reports_its_process_id(sandbox):
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["pid"] == os.getpid()


def test_demo_refuses_to_start_when_another_sandbox_holds_its_port(sandbox, tmp_path):
    """Two clones on one sandbox port: the second demo must stop, not use the first's sandbox."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        web_port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("STRIPE_")}
    env.update(
        PORT=str(web_port),
        STRIPE_SANDBOX_PORT=str(sandbox.port),
        PYTHONUNBUFFERED="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        SEED_CATALOG="0",
    )
    demo = subprocess.Popen(
        [sys.executable, "wsgi.py"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = demo.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGTERM)
        out, err = demo.communicate(timeout=10)
        pytest.fail(f"wsgi.py kept running on another sandbox's port:\n{out}\n{err}")
    assert demo.returncode != 0
    assert f"is port {sandbox.port} taken?" in err
    assert "Storefront (" not in out
