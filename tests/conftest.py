"""Shared fixtures: a storefront app on a fresh database, served over HTTP, paying through the sandbox."""

import logging
import os
import secrets
import threading
import uuid

import pytest
import redis
import requests
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from storefront import create_app
from storefront.extensions import db, socketio

pytest_plugins = ["tests.plugins.sandbox", "tests.plugins.browser"]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# The handshake's per-client limits, off (tests/integration/test_hoarding.py sets its own).
NO_HOLD_LIMITS = {
    "CHECKOUT_RATE_LIMIT": "1000 per second",
    "CHECKOUT_ADDRESS_RATE_LIMIT": "1000 per second",
    "RESERVE_FREEZES_PER_SESSION": 0,
    "RESERVE_UNITS_PER_SESSION": 0,
    "RESERVE_FREEZES_PER_ADDRESS": 0,
    "RESERVE_UNITS_PER_ADDRESS": 0,
}


def wait_for(condition, timeout=10.0, message="condition"):
    """Poll until `condition()` is truthy; return its value or fail after `timeout` seconds."""
    from tests.plugins.sandbox import wait_until  # loaded by pytest_plugins; imported late to keep it rewritten

    return wait_until(condition, timeout=timeout, interval=0.02, message=message)


def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def redis_url():
    """The local Redis; skipped (outside CI) when it is not running."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not available: {err}")
    return REDIS_URL


@pytest.fixture(autouse=True)
def root_log_level_restored():
    """An app sets the root logger's level from its LOG_LEVEL (the soak's is ERROR): put it back after each
    test, so a later test's log assertions do not depend on which app an earlier test built."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def instance_outside_the_repository(tmp_path_factory):
    """Apps and servers the tests start (and the processes they spawn) keep instance files, such as a
    generated SECRET_KEY, in a temporary folder: never in the repository's instance/."""
    before = os.environ.get("INSTANCE_PATH")
    os.environ["INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    yield os.environ["INSTANCE_PATH"]
    if before is None:
        os.environ.pop("INSTANCE_PATH", None)
    else:
        os.environ["INSTANCE_PATH"] = before


@pytest.fixture
def postgres_url():
    """A fresh schema-free database on the local PostgreSQL, dropped afterwards."""
    name = f"store_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # noqa: BLE001 - any failure here means no PostgreSQL
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not available: {err}")
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def store_config(database_url, sandbox=None, **overrides):
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-" + secrets.token_hex(8),
        "SOCKETIO_ASYNC_MODE": "threading",
        "SOCKETIO_MESSAGE_QUEUE": None,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        "STRIPE_TIMEOUT": 5,
        "STRIPE_MAX_RETRIES": 2,
        "SYNC_COALESCE_SECONDS": 0.01,
        "RECONCILE_INTERVAL_SECONDS": 0,
        "CART_RATE_LIMIT": "1000 per second",
        # Every test shopper comes from 127.0.0.1: the per-client limits are off unless a test sets them.
        **NO_HOLD_LIMITS,
        "TESTING": True,
    }
    if sandbox is not None:
        config.update(
            STRIPE_SECRET_KEY=sandbox.secret_key,
            STRIPE_PUBLISHABLE_KEY=sandbox.publishable_key,
            STRIPE_API_BASE=sandbox.url,
            STRIPE_JS_URL=f"{sandbox.url}/v3/",
        )
    config.update(overrides)
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql://"):
        config["SQLALCHEMY_DATABASE_URI"] = config["SQLALCHEMY_DATABASE_URI"].replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
    return config


class LiveStore:
    """A storefront app served on a free port, with its webhook registered at the sandbox."""

    def __init__(self, app, sandbox):
        self.app = app
        self.sandbox = sandbox
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = (
            sandbox.add_webhook_endpoint(f"{self.url}/webhooks/stripe", app.config["STRIPE_WEBHOOK_SECRET"])
            if sandbox is not None
            else None
        )

    def client(self):
        """A shopper: an HTTP client with its own session cookie."""
        return self.app.test_client()

    def tab(self, client):
        """A Socket.IO connection sharing the shopper's session, as another browser tab."""
        return socketio.test_client(self.app, flask_test_client=client)

    def stop(self):
        self.app.extensions["worker"].stop()
        self.app.extensions["worker"].wait_idle(10)
        if self.endpoint is not None:
            requests.delete(f"{self.sandbox.url}/_sandbox/webhook_endpoints/{self.endpoint['id']}", timeout=5)
        self._server.shutdown()
        self._thread.join(5)
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def make_store(tmp_path):
    """Build stores on demand: make_store(sandbox=..., database_url=..., **config)."""
    stores = []

    def build(sandbox=None, database_url=None, **overrides):
        app = create_app(store_config(database_url or sqlite_url(tmp_path), sandbox, **overrides))
        store = LiveStore(app, sandbox)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.stop()


@pytest.fixture
def store(make_store, sandbox):
    """The storefront on SQLite, paying through the sandbox."""
    return make_store(sandbox=sandbox)


@pytest.fixture
def offline_store(make_store):
    """A storefront with no reachable Stripe: for cart behaviour that never calls it."""
    return make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_SECRET_KEY="sk_test_unused")
