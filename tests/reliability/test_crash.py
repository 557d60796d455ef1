"""Crash safety: SIGKILL the real server (`python wsgi.py`) at chosen points, restart it on the same
database, and show that redelivery or reconciliation ends in the correct state.

The test runs its own Stripe sandbox (in this process, slow webhook retries so a delivery outlives a
restart) and chooses each kill point from what it can observe, never from a sleep: the sandbox's
record of deliveries and of the PaymentIntent, its fault counters, and the storefront's database.
"""

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from stripe_sandbox.server import SandboxServer
from tests.conftest import NO_HOLD_LIMITS, wait_for
from tests.shopping import browser_confirm, control

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "whsec_crash_tests"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def crash_sandbox():
    """A sandbox whose webhook retries back off from 0.5 s over about a minute, so they outlive a restart."""
    server = SandboxServer(port=0, webhook_retry_base=0.5, webhook_max_attempts=8).start()
    yield server
    server.stop()


class Server:
    """`python wsgi.py` on a fixed port and SQLite file, against the test's sandbox; killable and restartable."""

    def __init__(self, tmp_path, sandbox, **settings):
        self.port, self.db_path, self.sandbox = free_port(), tmp_path / "store.sqlite3", sandbox
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "server.log"
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "STRIPE_SANDBOX_PORT": str(sandbox.port),
            "STRIPE_SANDBOX_EXTERNAL": "1",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "SECRET_KEY": "crash-" + secrets.token_hex(16),  # one key for every restart of this server
            "RECONCILE_INTERVAL_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
            "CART_RATE_LIMIT": "1000 per second",
            **{name: str(value) for name, value in NO_HOLD_LIMITS.items()},
            **{k: str(v) for k, v in settings.items()},
        }
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "SOCKETIO_MESSAGE_QUEUE"):
            self.env.pop(name, None)
        self.process = None
        self.endpoint = sandbox.add_webhook_endpoint(f"{self.url}/webhooks/stripe", SECRET)

    def start(self):
        log = open(self.log_path, "a")  # noqa: SIM115 - the child keeps writing to it
        self.process = subprocess.Popen(
            [sys.executable, "wsgi.py"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

        def ready():
            assert self.process.poll() is None, f"the server exited:\n{self.log()[-3000:]}"
            try:
                return requests.get(f"{self.url}/api/products", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=30, message="the server to answer")
        return self

    def kill(self):
        """SIGKILL: no atexit, no rollback, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.kill()
        self.sandbox.state.webhooks.remove_endpoint(self.endpoint["id"])

    def log(self):
        return self.log_path.read_text(errors="replace")

    def query(self, sql, *args):
        """Read the storefront's database directly (WAL lets us read while the server writes)."""
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return conn.execute(sql, args).fetchall()

    def flask(self, *args):
        """Run a `flask` command of the storefront against the same database and sandbox."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "storefront", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout


@pytest.fixture
def server(tmp_path, crash_sandbox):
    crash_sandbox.reset()
    servers = []

    def build(**settings):
        servers.append(Server(tmp_path, crash_sandbox, **settings))
        return servers[-1].start()

    yield build
    for built in servers:
        built.stop()
    crash_sandbox.state.faults.clear()


class Shopper:
    """A browser: one cookie jar, the JSON API, and Stripe.js's confirm straight to the sandbox."""

    def __init__(self, server):
        self.server, self.http = server, requests.Session()

    def call(self, method, path, **kwargs):
        return self.http.request(method, f"{self.server.url}{path}", timeout=60, **kwargs)

    def cart(self):
        return self.call("GET", "/api/cart").json()

    def add(self, product_id, quantity=1):
        answer = self.call("POST", "/api/cart/items", json={"product_id": product_id, "quantity": quantity})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def synced(self):
        def check():
            cart = self.cart()
            return cart if cart["payment"] and cart["payment"]["amount"] == cart["total"] else None

        return wait_for(check, timeout=30, message="the PaymentIntent to charge the cart total")

    def checkout(self):
        answer = self.call("POST", "/api/checkout")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def handshake(self, version):
        answer = self.call("POST", "/api/checkout/confirm", json={"cart_version": version})
        assert answer.status_code == 200, answer.text
        return answer.json()["order_id"]

    def pay(self, started):
        status, pi = browser_confirm(self.server.sandbox.url, self.server.sandbox.publishable_key, started)
        assert status == 200 and pi["status"] == "succeeded", pi
        return pi

    def order(self, order_id):
        return self.call("GET", f"/api/orders/{order_id}").json()

    def order_becomes(self, order_id, status, timeout=60):
        return wait_for(
            lambda: (o := self.order(order_id))["status"] == status and o,
            timeout=timeout,
            message=f"order {order_id} to be {status}",
        )


def succeeded_event_id(sandbox, pi_id):
    with sandbox.state.lock:
        return next(
            e["id"]
            for e in sandbox.state.events
            if e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == pi_id
        )


def assert_paid_once(server, shopper, order_id, cart, pi_id):
    """The correct end state: one paid order that is exactly the frozen cart, charged once, nothing refunded."""
    order = shopper.order(order_id)
    assert order["status"] == "paid" and order["amount"] == order["amount_received"] == cart["total"]
    assert order["items"] == cart["items"]
    assert server.query("SELECT count(*) FROM orders WHERE payment_intent_id = ?", pi_id) == [(1,)]
    after = shopper.cart()
    assert after["items"] == [] and after["status"] == "open" and after["version"] == cart["version"] + 1
    assert server.sandbox.state.payment_intents[pi_id]["amount_received"] == cart["total"]
    assert not [r for r in server.sandbox.state.refunds.values() if r["payment_intent"] == pi_id]
    assert "unhandled error" not in server.log(), "the server answered a 500 on the way"


def paying_shopper(server):
    shopper = Shopper(server)
    shopper.add(1, 2)
    shopper.add(5, 3)
    started = shopper.checkout()
    cart = shopper.synced()
    order_id = shopper.handshake(cart["version"])
    return shopper, started, cart, order_id


# --- after Stripe confirmed, before the webhook was recorded -------------------------------------


@pytest.mark.parametrize("recovery", ["redelivery", "flask-reconcile"])
def test_killed_after_stripe_confirmed_before_the_webhook_was_recorded(server, recovery):
    store = server()
    shopper, started, cart, order_id = paying_shopper(store)
    # Redelivery: the webhook is held back long enough to find the server dead; reconcile: it never comes.
    fault = {"webhook_delay_ms": 3000} if recovery == "redelivery" else {"webhook_drop_rate": 1.0}
    control(store.sandbox.url, "POST", "/faults", fault)
    shopper.pay(started)
    store.kill()

    event_id = succeeded_event_id(store.sandbox, started["payment_intent_id"])
    delivered = [d for d in store.sandbox.state.webhooks.list_deliveries(event_id) if d["status_code"] == 200]
    assert delivered == [], "the kill came too late: the webhook was already delivered"
    assert store.query("SELECT count(*) FROM webhook_events WHERE id = ?", event_id) == [(0,)]
    assert store.query("SELECT status FROM orders WHERE id = ?", order_id) == [("awaiting_payment",)]

    if recovery == "redelivery":
        wait_for(
            lambda: any(d["status_code"] is None for d in store.sandbox.state.webhooks.list_deliveries(event_id)),
            timeout=30,
            message="a delivery attempt to find the server dead",
        )
    control(store.sandbox.url, "DELETE", "/faults")
    store.start()
    if recovery == "flask-reconcile":
        summary = json.loads(store.flask("reconcile", "--older-than", "0").strip().splitlines()[-1])
        assert summary["orders_checked"] >= 1 and summary["errors"] == 0, summary
    shopper.order_becomes(order_id, "paid")
    assert_paid_once(store, shopper, order_id, cart, started["payment_intent_id"])
    if recovery == "redelivery":
        attempts = store.sandbox.state.webhooks.list_deliveries(event_id)
        assert attempts[0]["status_code"] is None and attempts[-1]["status_code"] == 200


# --- in the middle of webhook processing ---------------------------------------------------------


def test_killed_in_the_middle_of_webhook_processing(server):
    store = server()
    shopper, started, cart, order_id = paying_shopper(store)
    control(store.sandbox.url, "POST", "/faults", {"webhook_delay_ms": 3000})
    shopper.pay(started)
    # The webhook will read the PaymentIntent from Stripe: make that read hang, so processing stops midway.
    control(store.sandbox.url, "POST", "/faults", {"hang_rate": 1.0, "hang_seconds": 120})
    event_id = succeeded_event_id(store.sandbox, started["payment_intent_id"])

    def midway():
        recorded = store.query("SELECT processed_at FROM webhook_events WHERE id = ?", event_id)
        hanging = store.sandbox.state.faults.snapshot()["stats"].get("hang", 0) >= 1
        return recorded == [(None,)] and hanging

    wait_for(midway, timeout=30, message="the event to be recorded and its PaymentIntent read to hang")
    store.kill()
    assert store.query("SELECT status FROM orders WHERE id = ?", order_id) == [("awaiting_payment",)]

    control(store.sandbox.url, "DELETE", "/faults")
    store.start()
    shopper.order_becomes(order_id, "paid")
    assert_paid_once(store, shopper, order_id, cart, started["payment_intent_id"])
    assert store.query("SELECT processed_at IS NOT NULL FROM webhook_events WHERE id = ?", event_id) == [(1,)]


# --- during a PaymentIntent update ---------------------------------------------------------------


@pytest.mark.parametrize("recovery", ["periodic-reconcile", "flask-reconcile", "handshake"])
def test_killed_during_a_payment_intent_update(server, recovery):
    interval = 1 if recovery == "periodic-reconcile" else 0
    store = server(SYNC_LEASE_SECONDS=2, RECONCILE_INTERVAL_SECONDS=interval)
    shopper = Shopper(store)
    shopper.add(2, 1)
    started = shopper.checkout()
    before = shopper.synced()
    pi_id = started["payment_intent_id"]

    # Stripe applies the update but its answer never reaches the storefront.
    control(store.sandbox.url, "POST", "/faults", {"hang_rate": 1.0, "hang_seconds": 120})
    cart = shopper.add(6, 2)

    def applied_at_stripe_only():
        pi = store.sandbox.state.payment_intents[pi_id]
        recorded = store.query("SELECT pi_version FROM carts WHERE id = ?", cart["id"])
        return pi["amount"] == cart["total"] and recorded == [(before["version"],)]

    wait_for(applied_at_stripe_only, timeout=30, message="Stripe to apply the update the storefront awaits")
    store.kill()
    control(store.sandbox.url, "DELETE", "/faults")
    if recovery == "flask-reconcile":
        # The restarted server's worker would find the lagging cart itself: here only the command may.
        store.env["WORKER"] = "off"
    store.start()

    if recovery == "flask-reconcile":
        summary = json.loads(
            wait_for(
                lambda: _lease_expired(store, cart["id"]) and store.flask("reconcile", "--older-than", "0"),
                timeout=30,
                message="reconcile",
            )
            .strip()
            .splitlines()[-1]
        )
        assert summary["syncs_requested"] == 1, summary
        # The payment's webhook is applied by a worker: the server gets its embedded one back.
        store.kill()
        store.env["WORKER"] = "embedded"
        store.start()
    if recovery != "handshake":
        current = shopper.synced()
        assert current["version"] == cart["version"] and current["payment"]["amount"] == cart["total"]
    order_id = shopper.handshake(cart["version"])
    pi = store.sandbox.state.payment_intents[pi_id]
    assert pi["amount"] == cart["total"] and pi["metadata"]["cart_version"] == str(cart["version"])
    shopper.pay(started)
    shopper.order_becomes(order_id, "paid")
    assert_paid_once(store, shopper, order_id, cart, pi_id)


def _lease_expired(store, cart_id):
    lease = store.query("SELECT sync_lease_until FROM carts WHERE id = ?", cart_id)[0][0]
    if lease is None:
        return True
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) > lease[:19]
