"""Pytest plugin: a running Stripe sandbox, an SDK client pointed at it, a webhook receiver.

Loaded by the root conftest (`pytest_plugins = ["tests.plugins.sandbox"]`) or `-p tests.plugins.sandbox`.
- `sandbox` (session): a started `SandboxServer` on a free port, reset before each test that uses it.
- `stripe_client`: `stripe.StripeClient` aimed at it (short timeout, 2 network retries).
- `webhook_receiver`: a local HTTP server recording deliveries; `status_codes` scripts its answers.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from stripe_sandbox.server import SandboxServer


def wait_until(condition, timeout: float = 5.0, interval: float = 0.01, message: str = "condition"):
    """Poll until condition() is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def make_client(
    server: SandboxServer, key: str | None = None, timeout: float = 5.0, retries: int = 2
) -> stripe.StripeClient:
    """An SDK client for the sandbox, configured as the storefront configures its own."""
    return stripe.StripeClient(
        key or server.secret_key,
        base_addresses={"api": server.url},
        http_client=stripe.RequestsClient(session=requests.Session(), timeout=timeout),
        max_network_retries=retries,
    )


@pytest.fixture(scope="session")
def sandbox():
    """A started sandbox for the whole session (fast webhook retries)."""
    server = SandboxServer(
        port=0,
        sepa_delay=float(os.environ.get("STRIPE_SANDBOX_SEPA_DELAY", "3")),
        webhook_retry_base=0.05,
        webhook_max_attempts=4,
    ).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_sandbox(request):
    """Every test that uses the sandbox starts from empty state and start-up faults."""
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


@pytest.fixture
def stripe_client(sandbox) -> stripe.StripeClient:
    return make_client(sandbox)


class Receiver:
    """A tiny webhook receiver: records (headers, body) and answers from `status_codes`."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        self.status_codes: list[int] = []  # consumed one per request; then 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.deliveries.append((dict(self.headers), body))
                    status = receiver.status_codes.pop(0) if receiver.status_codes else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict]:
        """The JSON bodies received so far, in arrival order."""
        with self.lock:
            return [json.loads(body) for _, body in self.deliveries]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()
