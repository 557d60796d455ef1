"""Freezes that outlive their time limit, the periodic reconcile, and how Stripe is called."""

import threading

import pytest
from sqlalchemy import select

from storefront.checkout.service import release_expired_freeze
from storefront.extensions import db
from storefront.models import Cart, PaymentAttempt
from storefront.wiring import current_shop
from tests.conftest import wait_for
from tests.shopping import browser_confirm, control, fill, order_status, start_and_confirm, synced

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_abandoned_freeze_is_released_once_stripe_says_nothing_was_paid(
    make_store, sandbox, stripe_client, database, request
):
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    store = make_store(sandbox=sandbox, database_url=url, FREEZE_SECONDS=0)
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 1))
    with store.app.app_context():  # the background sweep's release of a freeze past its time limit
        assert release_expired_freeze(current_shop(), cart["id"]) is True
        db.session.remove()
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "canceled"
    answer = shopper.post("/api/cart/items", json={"product_id": 2, "quantity": 1})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "open"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "payment_failed"


def test_an_expired_freeze_holds_while_the_payment_is_processing(make_store, sandbox):
    store = make_store(sandbox=sandbox, FREEZE_SECONDS=0, CURRENCY="eur")  # SEPA Debit: eur only
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    browser_confirm(
        sandbox.url,
        sandbox.publishable_key,
        started,
        **{"payment_method_data[type]": "sepa_debit", "payment_method_data[sepa_debit][iban]": "AT611904300234573201"},
    )
    answer = shopper.post("/api/cart/items", json={"product_id": 2, "quantity": 1})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "checkout_in_progress"
    control(sandbox.url, "POST", f"/payment_intents/{started['payment_intent_id']}/settle")
    order_status(shopper, order_id, "paid")


def test_the_periodic_reconcile_settles_a_payment_whose_webhook_was_lost(make_store, sandbox):
    control(sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    store = make_store(sandbox=sandbox, RECONCILE_INTERVAL_SECONDS=0.2, RECONCILE_AFTER_SECONDS=0)
    store.app.extensions["worker"].start()
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 2))
    assert browser_confirm(sandbox.url, sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")


def test_stripe_calls_carry_keys_named_after_what_they_do(store, stripe_client):
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    started = shopper.post("/api/checkout").get_json()
    events = stripe_client.v1.events.list(params={"type": "payment_intent.created"}).data
    store_id = store.app.extensions["gateway"].store_id
    with store.app.app_context():
        token = db.session.scalar(select(PaymentAttempt.id).where(PaymentAttempt.cart_id == cart["id"]))
    assert [e.request.idempotency_key for e in events] == [f"store-{store_id}-attempt-{token}"]
    assert events[0].data.object.metadata.to_dict() == {
        "store_id": store_id,
        "cart_id": str(cart["id"]),
        "cart_version": str(cart["version"]),
        "checkout_attempt": token,
    }
    assert shopper.post("/api/checkout").get_json()["payment_intent_id"] == started["payment_intent_id"]


def test_one_http_session_serves_every_stripe_call(store):
    gateway = store.app.extensions["gateway"]
    session = gateway._client._requestor._client._session
    shopper = store.client()
    fill(shopper, (1, 1))
    shopper.post("/api/checkout")
    fill(shopper, (2, 1))
    synced(shopper)
    assert gateway._client._requestor._client._session is session
    assert gateway._client._requestor._client._timeout == store.app.config["STRIPE_TIMEOUT"]


def test_one_update_in_flight_per_cart(store):
    gateway = store.app.extensions["gateway"]
    real, lock = gateway.set_amount, threading.Lock()
    in_flight, most = [0], [0]

    def watched(*args, **kwargs):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    gateway.set_amount = watched
    control(store.sandbox.url, "POST", "/faults", {"latency": {"fixed_ms": 100}})
    shopper = store.client()
    fill(shopper, (1, 1))
    shopper.post("/api/checkout")
    for _ in range(10):
        fill(shopper, (2, 1))
    cart = synced(shopper)
    assert most[0] == 1
    with store.app.app_context():
        row = db.session.get(Cart, cart["id"])
        assert row.pi_version == cart["version"] and row.sync_owner is None


def test_a_stripe_outage_during_the_handshake_unfreezes_the_cart(store):
    shopper = store.client()
    fill(shopper, (1, 1))
    shopper.post("/api/checkout")
    control(store.sandbox.url, "POST", "/faults", {"error_rate": 1.0})
    cart = fill(shopper, (2, 1))
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "payment_unavailable"
    wait_for(lambda: shopper.get("/api/cart").get_json()["status"] == "open", message="cart to reopen")
    control(store.sandbox.url, "DELETE", "/faults")
    assert shopper.post("/api/cart/items", json={"product_id": 3, "quantity": 1}).status_code == 200


STRIPE_CALLS = ("create_payment_intent", "set_amount", "retrieve", "cancel", "payment_method_of")


def watching(gateway, name, asked):
    real = getattr(gateway, name)

    def watched(*args, **kwargs):
        asked.append((name, db.session().in_transaction()))  # on SQLite, the write lock held across Stripe
        return real(*args, **kwargs)

    return watched


def test_no_transaction_is_open_while_stripe_is_asked(store):
    gateway, asked = store.app.extensions["gateway"], []
    for name in STRIPE_CALLS:
        setattr(gateway, name, watching(gateway, name, asked))
    shopper = store.client()
    fill(shopper, (1, 1))
    shopper.post("/api/checkout")
    cart = fill(shopper, (2, 1))  # the handshake syncs the PaymentIntent to this version
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 200, answer.get_json()
    started = shopper.post("/api/checkout").get_json()
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, answer.get_json()["order_id"], "paid")
    _, _, cancelled = start_and_confirm(shopper, (3, 1))
    assert shopper.post("/api/checkout/cancel").status_code == 200
    order_status(shopper, cancelled, "payment_failed")

    assert {name for name, _ in asked} == set(STRIPE_CALLS)
    assert [name for name, in_transaction in asked if in_transaction] == []
