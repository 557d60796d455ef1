"""Logs, health checks and metrics of an app: request ids on log lines, JSON lines, caplog, /healthz, /readyz
(ok, database gone, Redis hung, heartbeat stale) and /metrics (token, the store's gauges)."""

import json
import logging
import re
import socket
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text, update

from storefront.extensions import db
from storefront.models import Product, utcnow
from storefront.ops import heartbeat
from storefront.wiring import current_shop
from tests.conftest import wait_for
from tests.shopping import fill, start_and_confirm

pytestmark = pytest.mark.timeout(60)
TOKEN = "scrape-" + "x" * 24


def test_store_info_lines_reach_caplog_with_the_request_id(make_store, sandbox, caplog):
    store = make_store(sandbox=sandbox, WORKER="off")  # migrations ran: caplog's handler must still be there
    shopper = store.client()
    fill(shopper, (1, 1))
    answer = shopper.post("/api/checkout", headers={"X-Request-Id": "lb-7f3a.2"})
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "lb-7f3a.2"
    created = [r for r in caplog.records if "PaymentIntent" in r.getMessage() and "created" in r.getMessage()]
    assert [(r.levelno, r.name, r.request_id) for r in created] == [
        (logging.INFO, "storefront.checkout.service", "lb-7f3a.2")
    ]
    access = [r for r in caplog.records if r.name == "storefront.access" and r.request_id == "lb-7f3a.2"]
    assert [(r.method, r.path, r.status) for r in access] == [("POST", "/api/checkout", 200)]


def test_an_absent_or_insane_request_id_is_replaced_by_a_new_one(offline_store):
    client = offline_store.client()
    for incoming in (None, "", "a b", "x" * 200, "<script>", "id\u00e9", "-leading-dash", "a\tb"):
        headers = {} if incoming is None else {"X-Request-Id": incoming}
        first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
        second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second, incoming
    assert client.get("/healthz", headers={"X-Request-Id": "x" * 128}).headers["X-Request-Id"] == "x" * 128


def test_json_lines_parse_and_carry_the_request_id(make_store, capsys):
    store = make_store(sandbox=None, LOG_FORMAT="json", STRIPE_API_BASE="http://127.0.0.1:9")
    capsys.readouterr()
    answer = store.client().get("/api/products")
    logging.getLogger("storefront.test").warning("outside any request")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "storefront.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == answer.headers["X-Request-Id"]
    assert (access[0]["method"], access[0]["path"], access[0]["status"], access[0]["level"]) == (
        "GET",
        "/api/products",
        200,
        "INFO",
    )
    assert access[0]["duration_ms"] >= 0 and access[0]["pid"] > 0 and access[0]["time"][:2] == "20"
    assert [line["request_id"] for line in lines if line["logger"] == "storefront.test"] == ["-"]


def test_healthz_answers_without_the_database(offline_store):
    answer = offline_store.client().get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})


def test_readyz_is_ready_once_a_worker_beats(make_store):
    store = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9", WORKER_POLL_SECONDS=0.05)
    client = store.client()
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.get_json()["failed"] == ["worker"]
    assert answer.get_json()["checks"]["worker"]["error"] == "no worker has written a heartbeat"
    store.app.extensions["worker"].start()
    ready = wait_for(lambda: client.get("/readyz").status_code == 200 and client.get("/readyz"), message="ready")
    body = ready.get_json()
    assert body["status"] == "ok" and body["failed"] == [] and set(body["checks"]) == {"database", "worker"}
    assert body["checks"]["worker"]["heartbeat_age_seconds"] < 5


def test_readyz_fails_on_a_stale_heartbeat(make_store):
    store = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9", READYZ_HEARTBEAT_SECONDS=30)
    write_heartbeat(store.app, "gone-host:4242", seconds_ago=45)
    answer = store.client().get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["failed"] == ["worker"] and body["checks"]["database"] == {"ok": True}
    assert re.fullmatch(r"the newest worker heartbeat is 4\d s old \(limit 30 s\)", body["checks"]["worker"]["error"])
    write_heartbeat(store.app, "live-host:7", seconds_ago=3)  # the newest row counts
    assert store.client().get("/readyz").status_code == 200


@pytest.mark.postgres
def test_readyz_names_the_database_when_it_is_gone(make_store, postgres_url):
    store = make_store(sandbox=None, database_url=postgres_url, STRIPE_API_BASE="http://127.0.0.1:9")
    write_heartbeat(store.app, "host:1", seconds_ago=1)
    assert store.client().get("/readyz").status_code == 200
    drop_database(postgres_url)
    started = time.monotonic()
    answer = store.client().get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["failed"] == ["database", "worker"]
    assert body["checks"]["database"] == {"ok": False, "error": "database unreachable (OperationalError)"}
    assert time.monotonic() - started < 10  # generous: the probe's connect timeout is 2 s


def test_readyz_does_not_wait_on_a_hung_redis(make_store):
    with silent_listener() as port:  # accepts connections (the kernel's backlog) and never answers
        store = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9", REDIS_URL=f"redis://127.0.0.1:{port}/0")
        write_heartbeat(store.app, "host:1", seconds_ago=1)
        started = time.monotonic()
        answer = store.client().get("/readyz")
        elapsed = time.monotonic() - started
    assert answer.status_code == 503 and answer.get_json()["failed"] == ["redis"]
    assert answer.get_json()["checks"]["redis"]["error"].startswith("redis unreachable")
    assert elapsed < 5  # the probe gives Redis 1 s; generous for a loaded machine


def test_metrics_are_off_without_a_token_and_refused_without_it(make_store):
    off = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9")
    assert off.client().get("/metrics", headers=bearer(TOKEN)).status_code == 404
    on = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9", METRICS_TOKEN=TOKEN)
    for headers in ({}, bearer("wrong"), bearer(TOKEN[:-1]), {"Authorization": f"Basic {TOKEN}"}):
        answer = on.client().get("/metrics", headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"storefront_" not in answer.data
    assert on.client().get("/metrics", headers=bearer(TOKEN)).status_code == 200


def test_metrics_show_a_lagging_cart_reserved_stock_and_requests(make_store, sandbox):
    store = make_store(sandbox=sandbox, WORKER="off", METRICS_TOKEN=TOKEN)
    with store.app.app_context():
        db.session.execute(update(Product).where(Product.id == 1).values(stock=10))
        db.session.commit()
        db.session.remove()
    assert gauges(store)["storefront_lagging_carts"] == 0
    frozen, lagging = store.client(), store.client()
    start_and_confirm(frozen, (1, 3))  # a frozen cart holds 3 units of product 1
    fill(lagging, (2, 1))
    assert lagging.post("/api/checkout").status_code == 200
    fill(lagging, (2, 2))  # with WORKER=off nobody brings its PaymentIntent to the new total
    values = gauges(store)
    assert values["storefront_lagging_carts"] == 1
    assert values["storefront_stock_reserved_units"] == 3
    assert values["storefront_inbox_events_needing_attention"] == 0
    assert "storefront_worker_heartbeat_age_seconds" not in values  # no worker has ever beaten
    assert values["storefront_database_up"] == 1
    samples = scrape(store)
    changes = [
        s for s in samples if s.name == "storefront_http_requests_total" and s.labels["route"] == "/api/cart/items"
    ]
    assert changes and all(s.labels["method"] == "POST" and s.labels["status"] == "200" for s in changes)
    assert sum(s.value for s in changes) >= 3


def gauges(store):
    return {s.name: s.value for s in scrape(store) if s.name.startswith("storefront_") and not s.labels}


def scrape(store):
    answer = store.client().get("/metrics", headers=bearer(TOKEN))
    assert answer.status_code == 200, answer.data
    return [sample for family in text_string_to_metric_families(answer.data.decode()) for sample in family.samples]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def write_heartbeat(app, key, seconds_ago):
    with app.app_context(), db.engine.begin() as conn:
        heartbeat.write(conn, key, utcnow() - timedelta(seconds=seconds_ago))


def drop_database(url):
    base, name = url.rsplit("/", 1)
    admin = create_engine(
        f"{base}/postgres".replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


class silent_listener:
    """A TCP port on loopback whose connections are queued by the kernel and never served."""

    def __enter__(self):
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        return self._sock.getsockname()[1]

    def __exit__(self, *_):
        self._sock.close()


def test_a_worker_beats_at_most_every_few_seconds_and_forgets_long_gone_workers(offline_store):
    app, clock = offline_store.app, FakeClock()
    write_heartbeat(app, "gone-long-ago:1", seconds_ago=2 * 86400)
    beats = heartbeat.Heartbeat(every_seconds=5, clock=clock)
    with app.app_context():
        shop = current_shop()
        beats.beat(shop)
        first = rows(app)
        assert list(first) == [heartbeat.worker_id()]  # the long-gone worker's row is removed by the first beat
        clock.now += 4
        beats.beat(shop)  # not due: nothing written
        assert rows(app) == first
        clock.now += 1
        beats.beat(shop)
        assert rows(app)[heartbeat.worker_id()] > first[heartbeat.worker_id()]
        db.session.remove()


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def rows(app):
    with app.app_context(), db.engine.connect() as conn:
        return dict(conn.execute(select(heartbeat.heartbeats.c.worker_id, heartbeat.heartbeats.c.beat_at)).all())
