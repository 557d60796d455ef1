"""Webhooks act on what Stripe says when asked, and ask for redelivery when the store can't record them."""

import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL, wait_for
from tests.shopping import browser_confirm, order_status, orders_snapshot, post_event, start_and_confirm

pytestmark = pytest.mark.timeout(90)


def event(object_, event_type):
    return {"id": "evt_" + uuid.uuid4().hex, "object": "event", "type": event_type, "created": int(time.time()),
            "data": {"object": object_}, "livemode": False}


def paid_order(store):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")
    return shopper, cart, started["payment_intent_id"], order_id


def test_a_signed_but_false_refund_event_changes_nothing(store, stripe_client):
    shopper, cart, pi_id, order_id = paid_order(store)
    charge_id = stripe_client.v1.payment_intents.retrieve(pi_id).latest_charge
    before = orders_snapshot(store.app)
    lie = {"id": charge_id, "object": "charge", "payment_intent": pi_id, "amount": cart["total"],
           "amount_refunded": cart["total"], "refunded": True}
    answer = post_event(store.client(), event(lie, "charge.refunded"), store.app.config["STRIPE_WEBHOOK_SECRET"])
    assert answer.status_code == 200, answer.get_json()
    assert orders_snapshot(store.app) == before
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"


def test_a_real_refund_is_mirrored_from_stripe(store, stripe_client):
    shopper, cart, pi_id, order_id = paid_order(store)
    stripe_client.v1.refunds.create(params={"payment_intent": pi_id})
    order = wait_for(lambda: (o := shopper.get(f"/api/orders/{order_id}").get_json())["status"] == "refunded" and o,
                     message="the refund to be recorded")
    assert order["amount_refunded"] == cart["total"]


def admin(statement):
    engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.mark.postgres
def test_webhooks_answer_503_while_the_database_is_down(make_store, sandbox, postgres_url):
    store = make_store(sandbox=sandbox, database_url=postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    secret = store.app.config["STRIPE_WEBHOOK_SECRET"]
    delivered = event({"id": "pi_" + uuid.uuid4().hex, "object": "payment_intent"}, "payment_intent.succeeded")
    admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        for _ in range(2):  # a pooled connection found dead, then no connection at all
            answer = post_event(store.client(), delivered, secret)
            assert answer.status_code == 503, answer.get_json()
            assert answer.get_json()["error"]["code"] == "store_unavailable"
        assert store.client().get("/api/cart").status_code == 503  # the shopper's side: 503, not a 500
    finally:
        admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    answer = post_event(store.client(), delivered, secret)  # Stripe delivers again
    assert answer.status_code == 200 and "duplicate" not in answer.get_json()
    assert post_event(store.client(), delivered, secret).get_json()["duplicate"] is True

