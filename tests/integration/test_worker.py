"""The worker inside a store: what WORKER=off leaves undone, the two statements of a Stripe update,
the release of an expired freeze within seconds, and a price change's syncs on the bounded pool."""

import base64
import threading
import time
import uuid

import pytest
from sqlalchemy import event, select

from storefront.extensions import db
from storefront.merchant.history import history
from storefront.payments.sync import DONE, sync_cart
from storefront.wiring import current_shop
from tests.conftest import wait_for
from tests.shopping import fill, start_and_confirm, synced

pytestmark = pytest.mark.timeout(60)


def lagging_cart(store):
    """A cart with a PaymentIntent, changed since: its PaymentIntent lags. Returns (shopper, cart)."""
    shopper = store.client()
    fill(shopper, (1, 1))
    assert shopper.post("/api/checkout").status_code == 200
    return shopper, fill(shopper, (2, 1))


def test_with_the_worker_off_nothing_follows_a_change_in_the_background(make_store, sandbox):
    store = make_store(sandbox=sandbox, WORKER="off", SYNC_COALESCE_SECONDS=0, WORKER_POLL_SECONDS=0.05)
    worker = store.app.extensions["worker"]
    worker.start()
    worker.wake()
    shopper, cart = lagging_cart(store)
    time.sleep(0.5)  # an embedded worker syncs within a few milliseconds
    assert shopper.get("/api/cart").get_json()["payment"]["amount"] != cart["total"]
    with store.app.app_context():
        assert sync_cart(current_shop(), cart["id"], uuid.uuid4().hex) == DONE  # what a worker process does
        db.session.remove()
    assert shopper.get("/api/cart").get_json()["payment"]["amount"] == cart["total"]


@pytest.mark.postgres
def test_a_stripe_update_costs_a_claim_and_a_record(make_store, sandbox, postgres_url):
    store = make_store(sandbox=sandbox, database_url=postgres_url, WORKER="off")
    _, cart = lagging_cart(store)
    statements = []

    def count(conn, cursor, statement, *_):
        statements.append(statement.split(None, 1)[0].upper())

    with store.app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert sync_cart(current_shop(), cart["id"], uuid.uuid4().hex) == DONE
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        lines = (
            db.session.execute(
                select(history.c.message).where(history.c.kind == "sync", history.c.cart_id == cart["id"])
            )
            .scalars()
            .all()
        )
        db.session.remove()
    # The claim, the record (lease released, history line, cart read for the push), the look that finds
    # nothing more to send: two statements for the one update.
    assert statements == ["UPDATE", "WITH", "UPDATE"], statements
    assert [line.rsplit(" ", 1)[-1] for line in lines] == [f"v{cart['version']}"]


def test_the_worker_releases_an_expired_freeze_within_seconds(make_store, sandbox):
    store = make_store(sandbox=sandbox, FREEZE_SECONDS=1, FREEZE_SWEEP_SECONDS=0.2, RECONCILE_INTERVAL_SECONDS=0)
    store.app.extensions["worker"].start()
    shopper = store.client()
    start_and_confirm(shopper, (1, 1))
    assert shopper.get("/api/cart").get_json()["status"] == "frozen"
    wait_for(
        lambda: shopper.get("/api/cart").get_json()["status"] == "open",
        timeout=6,
        message="the worker to release the freeze past FREEZE_SECONDS",
    )


def test_a_price_change_in_many_checkouts_is_synced_by_the_pool_alone(make_store, sandbox):
    store = make_store(sandbox=sandbox, ADMIN_PASSWORD="merchant-secret", SYNC_CONCURRENCY=2)
    syncs = store.app.extensions["worker"].syncs
    shoppers = [store.client() for _ in range(30)]
    for shopper in shoppers:
        fill(shopper, (1, 1))
        assert shopper.post("/api/checkout").status_code == 200
    wait_for(lambda: syncs.busy() == 0, message="the checkouts' own syncs to end")
    tasks, stop = [], threading.Event()

    def gauge():
        while not stop.wait(0.002):
            tasks.append((syncs.tasks(), syncs.busy()))

    sampler = threading.Thread(target=gauge)
    sampler.start()
    try:
        headers = {"Authorization": "Basic " + base64.b64encode(b"admin:merchant-secret").decode()}
        answer = store.app.test_client().patch("/admin/api/products/1", json={"unit_amount": 2000}, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        for shopper in shoppers:
            assert synced(shopper)["total"] == 2000
    finally:
        stop.set()
        sampler.join()
    assert max(t for t, _ in tasks) <= 2  # never more tasks than SYNC_CONCURRENCY
    assert max(b for _, b in tasks) > 2  # while more carts waited
