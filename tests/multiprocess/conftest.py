"""Two store processes on one PostgreSQL database and one Redis channel, one sandbox.

Every test runs on the demo server (`python wsgi.py`, eventlet) and on the production server
(gunicorn's gevent worker serving production:app, as docs/production.md runs it), each time with the
background work embedded in both web processes and with both web processes at WORKER=off beside
one separate `flask --app storefront worker` process.
"""

import secrets
import shutil
import signal
import subprocess
import sys
import threading
import uuid

import pytest
import redis
import requests
import socketio

from bench.stack import ServerProcess, free_port, store_env
from bench.stripe_meter import StripeMeter
from stripe_sandbox.server import SandboxServer
from tests.conftest import NO_HOLD_LIMITS, wait_for


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own on a free port: it can be stopped without touching anyone else's."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        wait_for(lambda: _pings(client), timeout=10, message="the test's redis-server to answer")
        yield process, url
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(10)
        client.close()


def _pings(client):
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.fixture
def metered_sandbox():
    """A sandbox whose API calls are counted; overlapping writes to one PaymentIntent fail as on Stripe."""
    server = SandboxServer(port=0, webhook_retry_base=0.05, webhook_max_attempts=4, faults={"lock_timeout": True})
    meter = StripeMeter(server.app.wsgi_app)
    server.app.wsgi_app = meter
    server.meter = meter
    server.start()
    yield server
    meter.release_updates()
    server.stop()


class Cluster:
    """Store processes sharing a database, a Redis channel, a session secret and one sandbox."""

    def __init__(self, processes, sandbox, webhook_secret):
        self.processes, self.sandbox, self.webhook_secret = processes, sandbox, webhook_secret
        self.endpoints = {}

    def __getitem__(self, index):
        return self.processes[index]

    def deliver_webhooks_to(self, *indexes):
        """Point the sandbox's webhook endpoints at exactly these processes."""
        for index in list(self.endpoints):
            if index not in indexes:
                self.sandbox.state.webhooks.remove_endpoint(self.endpoints.pop(index)["id"])
        for index in indexes:
            if index not in self.endpoints:
                url = f"{self.processes[index].url}/webhooks/stripe"
                self.endpoints[index] = self.sandbox.add_webhook_endpoint(url, self.webhook_secret)


SERVERS = {"eventlet": ServerProcess.store, "gunicorn-gevent": ServerProcess.production}


@pytest.fixture(params=list(SERVERS))
def server_kind(request):
    """Which server the store processes run: the eventlet demo or the gunicorn/gevent production command."""
    return request.param


@pytest.fixture(params=["embedded", "separate"], ids=["worker-embedded", "worker-separate"])
def worker_kind(request):
    """Where the background work runs: in both web processes, or in one worker process beside them."""
    return request.param


def worker_process(env, log_dir):
    """`flask --app storefront worker` with a store process's environment (it serves no port)."""
    command = [sys.executable, "-m", "flask", "--app", "storefront", "worker"]
    return ServerProcess("worker", command, {**env, "WORKER": "off"}, log_dir, port=0)


@pytest.fixture
def cluster(postgres_url, redis_url, metered_sandbox, tmp_path, server_kind, worker_kind):
    """Two store processes started together, as a deployment starts them (and the worker after them)."""
    webhook_secret = "whsec_" + secrets.token_hex(16)
    common = {
        "database_url": postgres_url,
        "sandbox_port": metered_sandbox.port,
        "webhook_secret": webhook_secret,
        "secret_key": "test-" + secrets.token_hex(16),
        "queue": redis_url,
        "channel": f"storefront-test-{uuid.uuid4().hex}",
        "SYNC_COALESCE_SECONDS": "0.01",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "STRIPE_TIMEOUT": "20",
        "CART_RATE_LIMIT": "1000 per second",
        **{name: str(value) for name, value in NO_HOLD_LIMITS.items()},
        "WORKER": "off" if worker_kind == "separate" else "embedded",
    }
    processes = [SERVERS[server_kind](f"store{i}", store_env(port=free_port(), **common), tmp_path) for i in (1, 2)]
    try:
        for process in processes:
            process.wait_ready()
        cluster = Cluster(list(processes), metered_sandbox, webhook_secret)
        if worker_kind == "separate":
            # Started once the schema is migrated; stopped with the web processes.
            processes.append(worker_process(store_env(port=0, **common), tmp_path))
        cluster.deliver_webhooks_to(0)
        yield cluster
    finally:
        for process in processes:
            process.stop()


class Shopper:
    """A browser: one cookie jar, talking to whichever process it is given."""

    def __init__(self):
        self.http = requests.Session()
        self.tabs = []

    def call(self, process, method, path, **kwargs):
        answer = self.http.request(method, process.url + path, timeout=20, **kwargs)
        return answer.status_code, answer.json()

    def cart(self, process):
        status, body = self.call(process, "GET", "/api/cart")
        assert status == 200, body
        return body

    def change(self, process, product_id, quantity):
        status, body = self.call(process, "PUT", f"/api/cart/items/{product_id}", json={"quantity": quantity})
        assert status == 200, body
        return body

    def tab(self, process, transport="websocket"):
        """A Socket.IO tab on `process`, carrying this shopper's session cookie."""
        self.tabs.append(Tab(process, self.http.cookies, transport))
        return self.tabs[-1]


class Tab:
    """A python-socketio client recording every `cart` and `order` push."""

    def __init__(self, process, cookies, transport):
        self.received = {"cart": [], "order": []}
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        for name in self.received:
            self.client.on(name, self._recorder(name))
        cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
        self.client.connect(process.url, headers={"Cookie": cookie}, transports=[transport], wait_timeout=10)

    def _recorder(self, name):
        def record(data):
            with self.lock:
                self.received[name].append(data)

        return record

    def pushes(self, name):
        with self.lock:
            return list(self.received[name])

    def wait_for_cart(self, condition, message):
        """Wait for a `cart` push satisfying `condition`; returns it."""
        return wait_for(
            lambda: next((c for c in self.pushes("cart") if condition(c)), None), timeout=20, message=message
        )

    def close(self):
        self.client.disconnect()


@pytest.fixture
def shoppers():
    """Make shoppers; their tabs are closed afterwards."""
    made = []

    def make():
        made.append(Shopper())
        return made[-1]

    yield make
    for shopper in made:
        for tab in shopper.tabs:
            tab.close()
        shopper.http.close()
