"""The webhook inbox: an event is acknowledged without a Stripe request, processed once, retried after any
failure (Stripe's, or its handler's), and never applied twice by two workers at once."""

import dataclasses
import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from storefront.extensions import db
from storefront.models import WebhookEvent, utcnow
from storefront.webhooks import inbox
from storefront.webhooks.inbox import process_due
from storefront.wiring import current_shop
from tests.shopping import browser_confirm, control, post_event, start_and_confirm

pytestmark = pytest.mark.timeout(90)


class RecordingWorker:
    """Stands in for the worker process: it is woken, and processes nothing until the test says so."""

    def __init__(self, worker):
        self._worker, self.wakes = worker, 0

    def wake(self):
        self.wakes += 1

    def __getattr__(self, name):  # everything else (schedule, stop, …) is the store's own worker
        return getattr(self._worker, name)


def with_recording_worker(store):
    worker = store.app.extensions["worker"] = RecordingWorker(store.app.extensions["worker"])
    return worker


def process(store, *, later_seconds=0, limit=100):
    """One pass over the inbox, as the worker makes it (`later_seconds` from now)."""
    with store.app.app_context():
        try:
            shop = current_shop()
            if later_seconds:
                shop = dataclasses.replace(shop, now=lambda: utcnow() + timedelta(seconds=later_seconds))
            return process_due(shop, limit=limit)
        finally:
            db.session.remove()


def inbox_row(store, event_id):
    with store.app.app_context():
        try:
            return db.session.execute(select(WebhookEvent.__table__).where(WebhookEvent.id == event_id)).one()
        finally:
            db.session.remove()


def stripe_requests(sandbox):
    """Requests the sandbox has served: a zero latency fault counts each one without slowing it."""
    return requests.get(f"{sandbox.url}/_sandbox/faults/stats", timeout=5).json().get("latency", 0)


def paid_without_webhook(store, stripe_client):
    """A shopper paid through the handshake while every webhook was dropped: the order awaits, and the
    succeeded event as Stripe would have delivered it."""
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0, "latency": {"fixed_ms": 0}})
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    store.app.extensions["worker"].wait_idle(10)
    events = stripe_client.v1.events.list(params={"type": "payment_intent.succeeded"}).data
    event = next(e.to_dict() for e in events if e.data.object.id == started["payment_intent_id"])
    return shopper, order_id, event


def order_of(shopper, order_id):
    return shopper.get(f"/api/orders/{order_id}").get_json()


def test_a_webhook_is_acknowledged_without_any_stripe_request_and_applied_by_the_worker(store, stripe_client):
    worker = with_recording_worker(store)
    shopper, order_id, event = paid_without_webhook(store, stripe_client)
    before = stripe_requests(store.sandbox)
    answer = post_event(store.client(), event, store.app.config["STRIPE_WEBHOOK_SECRET"])
    assert answer.status_code == 200 and answer.get_json() == {"received": True}
    assert stripe_requests(store.sandbox) == before
    assert worker.wakes == 1
    row = inbox_row(store, event["id"])
    assert (row.type, row.object_id, row.processed_at) == (event["type"], event["data"]["object"]["id"], None)
    assert order_of(shopper, order_id)["status"] == "awaiting_payment"

    assert process(store) == 1
    assert stripe_requests(store.sandbox) > before  # the worker asked Stripe, not the webhook
    assert order_of(shopper, order_id)["status"] == "paid"
    assert inbox_row(store, event["id"]).processed_at is not None


def test_a_duplicate_delivery_is_acknowledged_and_processed_once(store, stripe_client):
    worker = with_recording_worker(store)
    shopper, order_id, event = paid_without_webhook(store, stripe_client)
    secret = store.app.config["STRIPE_WEBHOOK_SECRET"]
    assert post_event(store.client(), event, secret).get_json() == {"received": True}
    again = post_event(store.client(), json.dumps(event), secret, timestamp=int(time.time()) + 1)
    assert again.status_code == 200 and again.get_json() == {"received": True, "duplicate": True}
    assert worker.wakes == 1
    assert process(store) == 1
    assert process(store, later_seconds=3600) == 0
    assert inbox_row(store, event["id"]).attempts == 1
    assert order_of(shopper, order_id)["status"] == "paid"


def test_an_event_whose_stripe_read_fails_is_retried_after_a_backoff_and_applied(store, stripe_client):
    with_recording_worker(store)
    shopper, order_id, event = paid_without_webhook(store, stripe_client)
    assert post_event(store.client(), event, store.app.config["STRIPE_WEBHOOK_SECRET"]).status_code == 200
    control(store.sandbox.url, "POST", "/faults", {"error_rate": 1.0})
    assert process(store) == 1
    row = inbox_row(store, event["id"])
    assert row.processed_at is None and row.claimed_until is None and row.due_at > utcnow()
    assert order_of(shopper, order_id)["status"] == "awaiting_payment"
    control(store.sandbox.url, "POST", "/faults", {"error_rate": None})
    assert process(store) == 0  # not due yet: its backoff holds it back
    assert process(store, later_seconds=60) == 1
    assert order_of(shopper, order_id)["status"] == "paid"
    row = inbox_row(store, event["id"])
    assert row.processed_at is not None and row.attempts == 2


def test_a_malformed_event_is_acknowledged_and_never_due(store):
    worker = with_recording_worker(store)
    malformed = {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.succeeded", "data": {"object": {"id": 7}}}
    answer = post_event(store.client(), malformed, store.app.config["STRIPE_WEBHOOK_SECRET"])
    assert answer.status_code == 200 and answer.get_json() == {"received": True}
    assert worker.wakes == 0
    assert inbox_row(store, malformed["id"]).processed_at is not None
    assert process(store) == 0


@pytest.mark.parametrize("error", [KeyError, TypeError, ValueError, AttributeError, OSError, OverflowError])
def test_a_handler_raising_what_a_malformed_shape_raises_is_retried_not_dropped(store, monkeypatch, error):
    """Shapes are checked at receipt: inside a handler these are a bug or a fault, so the event stays due."""
    with_recording_worker(store)
    [event] = signed_events(1)
    real, calls = inbox.HANDLERS[event["type"]], []

    def failing_once(shop, claimed):
        calls.append(claimed.id)
        if len(calls) == 1:
            raise error("a bug in the handler")
        return real(shop, claimed)

    monkeypatch.setitem(inbox.HANDLERS, event["type"], failing_once)
    assert post_event(store.client(), event, store.app.config["STRIPE_WEBHOOK_SECRET"]).status_code == 200
    assert process(store) == 1
    row = inbox_row(store, event["id"])
    assert row.processed_at is None and row.claimed_until is None and row.due_at > utcnow()
    assert row.last_error.startswith(error.__name__) and "a bug in the handler" in row.last_error
    assert process(store) == 0  # its backoff holds it back
    assert process(store, later_seconds=60) == 1
    row = inbox_row(store, event["id"])
    assert (row.processed_at is not None, row.attempts, len(calls)) == (True, 2, 2)


def signed_events(count):
    return [
        {
            "id": "evt_" + uuid.uuid4().hex,
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_unknown_" + uuid.uuid4().hex, "object": "payment_intent"}},
        }
        for _ in range(count)
    ]


@pytest.mark.postgres
def test_two_workers_on_postgres_never_process_one_event_twice(make_store, sandbox, postgres_url):
    stores = [make_store(sandbox=sandbox, database_url=postgres_url) for _ in range(2)]
    for store in stores:
        with_recording_worker(store)
    events = signed_events(40)
    for event in events:
        assert post_event(stores[0].client(), event, stores[0].app.config["STRIPE_WEBHOOK_SECRET"]).status_code == 200
    # Each event asks Stripe about its (unknown) PaymentIntent: slow enough for the two passes to overlap.
    control(sandbox.url, "POST", "/faults", {"latency": {"fixed_ms": 20}})
    handled, start = [0, 0], threading.Barrier(2)

    def work(index):
        start.wait()
        while (count := process(stores[index], limit=3)) > 0:
            handled[index] += count

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(handled) == len(events) and min(handled) > 0, handled
    rows = [inbox_row(stores[0], event["id"]) for event in events]
    assert all(row.processed_at is not None for row in rows)
    assert {row.attempts for row in rows} == {1}  # every event claimed once, by one of the two
