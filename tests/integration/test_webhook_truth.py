"""Webhooks act on what Stripe says when asked, ask for redelivery when the store can't record them, and retry
themselves what Stripe could not explain."""

import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from storefront.extensions import db
from storefront.models import WebhookEvent
from storefront.payments.gateway import StripeGateway
from storefront.payments.reconcile import reconcile
from storefront.wiring import current_shop
from tests.conftest import POSTGRES_URL, wait_for
from tests.shopping import (
    browser_confirm,
    control,
    event_processed,
    order_status,
    orders_snapshot,
    post_event,
    process_inbox_later,
    start_and_confirm,
)

pytestmark = pytest.mark.timeout(90)


def event(object_, event_type):
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": object_},
        "livemode": False,
    }


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
    lie = {
        "id": charge_id,
        "object": "charge",
        "payment_intent": pi_id,
        "amount": cart["total"],
        "amount_refunded": cart["total"],
        "refunded": True,
    }
    answer = post_event(store.client(), event(lie, "charge.refunded"), store.app.config["STRIPE_WEBHOOK_SECRET"])
    assert answer.status_code == 200, answer.get_json()
    assert orders_snapshot(store.app) == before
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"


def test_a_real_refund_is_mirrored_from_stripe(store, stripe_client):
    shopper, cart, pi_id, order_id = paid_order(store)
    stripe_client.v1.refunds.create(params={"payment_intent": pi_id})
    order = wait_for(
        lambda: (o := shopper.get(f"/api/orders/{order_id}").get_json())["status"] == "refunded" and o,
        message="the refund to be recorded",
    )
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


def revoked_charge_reads(store):
    """Charges read with a key Stripe refuses (a restricted key without charge access, a revoked one)."""
    gateway = store.app.extensions["gateway"]
    revoked = StripeGateway("sk_test_revoked", store_id=gateway.store_id, api_base=store.sandbox.url, max_retries=0)
    real, gateway.retrieve_charge = gateway.retrieve_charge, revoked.retrieve_charge
    return lambda: setattr(gateway, "retrieve_charge", real)


def test_an_event_stripe_refuses_to_explain_is_acknowledged_and_processed_once_stripe_answers(store, stripe_client):
    shopper, cart, pi_id, order_id = paid_order(store)
    charge_id = stripe_client.v1.payment_intents.retrieve(pi_id).latest_charge
    stripe_client.v1.refunds.create(params={"payment_intent": pi_id})
    order_status(shopper, order_id, "refunded")
    delivered = event({"id": charge_id, "object": "charge"}, "charge.refunded")
    secret = store.app.config["STRIPE_WEBHOOK_SECRET"]
    restore = revoked_charge_reads(store)
    answer = post_event(store.client(), delivered, secret)
    assert answer.status_code == 200, answer.get_json()  # our retry replaces Stripe's redelivery
    wait_for(lambda: tried_and_left_due(store, delivered["id"]), message="the refused event to be tried")
    restore()
    assert process_inbox_later(store, 0) == 0  # its backoff holds it back
    wait_for(
        lambda: process_inbox_later(store, 3600) >= 0 and event_processed(store, delivered["id"]),
        message="the event to be processed once its backoff is over",
    )


def tried_and_left_due(store, event_id):
    with store.app.app_context():
        try:
            row = db.session.get(WebhookEvent, event_id)
            return row.attempts >= 1 and row.claimed_until is None and row.processed_at is None and row.due_at
        finally:
            db.session.remove()


def test_reconcile_counts_an_event_stripe_refuses_to_explain_and_applies_the_rest(store, stripe_client):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    paying, refunding = store.client(), store.client()
    orders = []
    for shopper in (refunding, paying):
        _, started, order_id = start_and_confirm(shopper, (1, 1))
        assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
        orders.append((shopper, started["payment_intent_id"], order_id))
    stripe_client.v1.refunds.create(params={"payment_intent": orders[0][1]})  # its charge.refunded is newest
    restore = revoked_charge_reads(store)
    with store.app.app_context():
        summary = reconcile(current_shop(), older_than_seconds=99999)
        db.session.remove()
    assert summary["errors"] == 1 and summary["payments_applied"] == 2
    assert [shopper.get(f"/api/orders/{o}").get_json()["status"] for shopper, _, o in orders] == ["paid", "paid"]
    restore()
    with store.app.app_context():
        summary = reconcile(current_shop(), older_than_seconds=99999)
        db.session.remove()
    assert summary["errors"] == 0 and summary["payments_applied"] == 1
    assert refunding.get(f"/api/orders/{orders[0][2]}").get_json()["status"] == "refunded"
