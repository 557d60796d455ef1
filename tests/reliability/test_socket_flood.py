"""One socket must not stall the store: flood `get_cart` from one connection of the real server
(`python wsgi.py`, eventlet, SQLite or PostgreSQL, its own Stripe sandbox) and watch what other shoppers see.

While one client emits `get_cart` as fast as it can (bounded in count and time), another shopper
reads its cart over HTTP; the test records that shopper's latencies and status codes and the
server's resident memory (VmRSS) during the flood and after it.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import websocket

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FLOOD_SECONDS = 6
FLOOD_EVENTS = 60_000
AFTER_SECONDS = 2
RSS_LIMIT_MB = 300


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Store:
    """`python wsgi.py` in its own process group (it starts the Stripe sandbox as its child)."""

    def __init__(self, tmp_path, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SOCKETIO_"))}
        env.update(
            PORT=str(self.port),
            STRIPE_SANDBOX_PORT=str(free_port()),
            PYTHONUNBUFFERED="1",
            DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
            SECRET_KEY="flood-" + secrets.token_hex(16),
            RECONCILE_INTERVAL_SECONDS="0",
        )
        env.update({k: str(v) for k, v in settings.items()})
        self.log_path = tmp_path / "server.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "wsgi.py"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"wsgi.py exited:\n{self.log_tail()}"
            try:
                if requests.get(f"{self.url}/api/products", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        pytest.fail(f"wsgi.py did not answer:\n{self.log_tail()}")

    def rss_mb(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def log_tail(self, lines=30):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(10)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def start_store(request, tmp_path):
    """Start `python wsgi.py` on SQLite (a pool of one connection) or PostgreSQL (a pool of 20)."""
    stores = []
    database = {"DATABASE_URL": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}

    def start(**settings):
        stores.append(Store(tmp_path, **database, **settings))
        return stores[-1]

    yield start
    for store in stores:
        store.stop()


def shopper_with_a_cart(store):
    http = requests.Session()
    answer = http.post(f"{store.url}/api/cart/items", json={"product_id": 1, "quantity": 1}, timeout=10)
    assert answer.status_code == 200, answer.text
    return http


class Connection:
    """One Socket.IO connection over a raw WebSocket, emitting `get_cart` with an ack id as fast as it can."""

    def __init__(self, store, cookie):
        url = store.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(url, cookie=cookie, timeout=10)
        assert self.ws.recv().startswith("0{")
        self.ws.send("40")
        while not (first := self.ws.recv()).startswith("40"):
            assert not first.startswith("44"), f"the connection was refused: {first}"
        self.sent = self.acks = 0
        self.closed = False

    def flood(self, deadline, count):
        """Emit until the server closes the connection, `count` events are sent or the deadline passes."""
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        try:
            while self.sent < count and time.monotonic() < deadline and not self.closed:
                self.ws.send(f'42{self.sent}["get_cart"]')
                self.sent += 1
        except (websocket.WebSocketException, OSError):
            pass
        reader.join(max(0.0, deadline - time.monotonic()) + 5)
        self.ws.close(timeout=1)

    def _read(self):
        while True:
            try:
                message = self.ws.recv()
            except (websocket.WebSocketException, OSError):
                break
            if not message:
                break
            if message.startswith("43"):
                self.acks += 1
            elif message == "2":
                self.ws.send("3")
        self.closed = True


class Flooder:
    """An attacker with a cart: floods from one connection and, when that is closed, opens the next one."""

    def __init__(self, store, http):
        self.store = store
        self.cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        self.connections = []

    def run(self, seconds, count):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and sum(c.sent for c in self.connections) < count:
            connection = Connection(self.store, self.cookie)
            self.connections.append(connection)
            connection.flood(deadline, count)

    @property
    def acks(self):
        return sum(c.acks for c in self.connections)

    @property
    def sent(self):
        return sum(c.sent for c in self.connections)


class Watcher:
    """Another shopper reading its cart over HTTP every 20 ms, and the server's VmRSS every 100 ms."""

    def __init__(self, store, http):
        self.store, self.http = store, http
        self.latencies, self.failures, self.rss = [], [], []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._shop, daemon=True),
            threading.Thread(target=self._measure_memory, daemon=True),
        ]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _shop(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = self.http.get(f"{self.store.url}/api/cart", timeout=5).status_code
            except requests.RequestException as err:
                self.failures.append(repr(err))
            else:
                self.latencies.append(time.monotonic() - started)
                if status != 200:
                    self.failures.append(status)
            self._stop.wait(0.02)

    def _measure_memory(self):
        while not self._stop.is_set():
            self.rss.append(self.store.rss_mb())
            self._stop.wait(0.1)

    def p99(self):
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99)] if ordered else float("inf")


def flood(store, *, seconds=FLOOD_SECONDS, count=FLOOD_EVENTS):
    """Flood from one socket at a time while another shopper shops; (flooder, watcher during, watcher after)."""
    other = shopper_with_a_cart(store)
    flooder = Flooder(store, shopper_with_a_cart(store))
    with Watcher(store, other) as during:
        flooder.run(seconds, count)
    with Watcher(store, other) as after:
        time.sleep(AFTER_SECONDS)
    return flooder, during, after


def assert_others_unharmed(store, during, after):
    for phase, watcher in (("during", during), ("after", after)):
        assert watcher.failures == [], (phase, watcher.failures[:5], store.log_tail())
        assert len(watcher.latencies) >= 10, (phase, len(watcher.latencies))
        assert watcher.p99() < 1.0, (phase, watcher.p99(), store.log_tail())
        assert max(watcher.rss) < RSS_LIMIT_MB, (phase, max(watcher.rss))


def test_a_socket_flooding_get_cart_is_disconnected_and_other_shoppers_are_unharmed(start_store):
    store = start_store()
    flooder, during, after = flood(store)
    assert_others_unharmed(store, during, after)
    first = flooder.connections[0]
    assert first.closed and first.acks <= 10, f"the flooding client was not disconnected ({first.sent} sent)"
    assert all(c.acks <= 10 for c in flooder.connections), [c.acks for c in flooder.connections]


def test_without_the_rate_limit_one_socket_still_cannot_stall_the_store(start_store):
    """Raise the event limit out of reach: events of one connection are then handled one at a time."""
    store = start_store(SOCKETIO_EVENT_LIMIT="1000000 per second")
    flooder, during, after = flood(store)
    assert_others_unharmed(store, during, after)
    assert flooder.acks > 0, "the flood was never answered"
