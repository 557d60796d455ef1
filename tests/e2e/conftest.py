"""Real-browser fixtures: the storefront as `python wsgi.py` (eventlet + offline Stripe sandbox) and Chromium.

One browser context is one shopper; its pages are that shopper's tabs, sharing the session cookie.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
SERVER_START_SECONDS = 45


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`python wsgi.py` in its own process group (it starts the sandbox as a child)."""

    def __init__(self, tmp_dir, database_url=None, extra_env=None):
        self.port, self.sandbox_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.log_path = tmp_dir / "server.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("STRIPE_")}
        env.update(
            PORT=str(self.port),
            STRIPE_SANDBOX_PORT=str(self.sandbox_port),
            DATABASE_URL=database_url or f"sqlite:///{tmp_dir / 'store.sqlite3'}",
            SECRET_KEY="e2e-" + secrets.token_hex(16),
            # SEPA payments stay `processing` until a test settles them through the sandbox control API.
            STRIPE_SANDBOX_SEPA_DELAY="600",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env or {})
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "wsgi.py"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_ready(self):
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"wsgi.py exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/api/products", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"wsgi.py did not answer within {SERVER_START_SECONDS}s:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def products(self):
        return requests.get(f"{self.url}/api/products", timeout=5).json()

    def sandbox(self, method, path, **kwargs):
        """Call the sandbox's control API (`/_sandbox/...`)."""
        answer = requests.request(method, f"{self.sandbox_url}/_sandbox{path}", timeout=10, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def stop(self):
        # wsgi.py and the sandbox it started share this process group.
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


@pytest.fixture
def server(browser, tmp_path, request):
    """A fresh storefront per scenario (SQLite by default; E2E_DATABASE=postgres uses a fresh PostgreSQL database)."""
    database_url = request.getfixturevalue("postgres_url") if os.environ.get("E2E_DATABASE") == "postgres" else None
    live = LiveServer(tmp_path, database_url)
    try:
        live.wait_until_ready()
        yield live
    finally:
        live.stop()


@pytest.fixture
def make_server(browser, tmp_path):
    """Start a storefront with extra environment settings (e.g. a wrong publishable key)."""
    started = []

    def start(**extra_env):
        live = LiveServer(tmp_path, extra_env=extra_env)
        started.append(live)
        live.wait_until_ready()
        return live

    yield start
    for live in started:
        live.stop()


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shoppers(browser, request):
    """Open shoppers (browser contexts) on a server at a viewport; on failure their tabs are screenshotted."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    opened = []

    def open_shopper(live, viewport=None):
        context = browser.new_context(
            base_url=live.url, viewport=viewport or {"width": 1100, "height": 820}, locale="en-US"
        )
        context.set_default_timeout(15_000)
        # Any Content-Security-Policy violation on any page is recorded for the tests to check.
        context.add_init_script(
            "window.__cspViolations = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        opened.append((context, live))
        return context

    yield open_shopper
    report = getattr(request.node, "rep_call", None)
    for number, (context, live) in enumerate(opened, start=1):
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for index, page in enumerate(context.pages, start=1):
                page.screenshot(path=ARTIFACTS / f"{request.node.name}-s{number}-failed-tab{index}.png", full_page=True)
            print(f"--- wsgi.py log (last lines) ---\n{live.log_tail(80)}")
        context.close()


@pytest.fixture
def shopper(server, shoppers):
    """One shopper (a browser context) on the scenario's server."""
    return shoppers(server)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
