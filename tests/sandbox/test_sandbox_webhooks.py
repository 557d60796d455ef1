"""Webhook deliveries: Stripe signatures, retries with backoff, and webhook faults."""

import json

import pytest
import requests
import stripe

from stripe_sandbox.webhooks import sign
from tests.plugins.sandbox import wait_until

pytestmark = pytest.mark.timeout(30)
SECRET = "whsec_test_receiver"


@pytest.fixture
def add_endpoint(sandbox):
    """Register endpoints for one test; they are removed afterwards (reset keeps endpoints)."""
    added = []

    def add(url, enabled_events=None):
        added.append(sandbox.add_webhook_endpoint(url, SECRET, enabled_events))
        return added[-1]

    yield add
    for created in added:
        requests.delete(f"{sandbox.url}/_sandbox/webhook_endpoints/{created['id']}", timeout=5)


@pytest.fixture
def endpoint(add_endpoint, webhook_receiver):
    return add_endpoint(webhook_receiver.url)


def pay(client):
    return client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method_types": ["card"],
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )


def deliveries(sandbox, event_id=None):
    params = {"event": event_id} if event_id else {}
    return requests.get(f"{sandbox.url}/_sandbox/deliveries", params=params, timeout=5).json()["data"]


def set_faults(sandbox, **faults):
    requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()


def test_deliveries_verify_with_construct_event(stripe_client, endpoint, webhook_receiver):
    pi = pay(stripe_client)
    wait_until(lambda: len(webhook_receiver.deliveries) == 3, message="3 deliveries")
    types = []
    for headers, body in webhook_receiver.deliveries:
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
        types.append(event.type)
        assert event.data.object.id in (pi.id, pi.latest_charge)
    assert sorted(types) == ["charge.succeeded", "payment_intent.created", "payment_intent.succeeded"]


def test_tampered_or_wrongly_signed_payload_is_refused(stripe_client, endpoint, webhook_receiver):
    pay(stripe_client)
    headers, body = wait_until(lambda: webhook_receiver.deliveries and webhook_receiver.deliveries[0])
    tampered = body.replace(b'"livemode": false', b'"livemode": true')
    assert tampered != body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, headers["Stripe-Signature"], SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    stale = sign(body.decode(), SECRET, timestamp=1_000_000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, stale, SECRET)


def test_failed_deliveries_are_retried_with_backoff_and_fresh_signatures(
    sandbox, stripe_client, webhook_receiver, add_endpoint
):
    add_endpoint(webhook_receiver.url, enabled_events=["payment_intent.created"])
    webhook_receiver.status_codes = [500, 500]
    pi = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    wait_until(lambda: len(webhook_receiver.deliveries) == 3, message="third attempt")
    attempts = deliveries(sandbox)
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert attempts[1]["at"] - attempts[0]["at"] >= 0.05 * 0.9
    assert attempts[2]["at"] - attempts[1]["at"] >= 0.1 * 0.9  # exponential
    events = webhook_receiver.events()
    assert {e["id"] for e in events} == {events[0]["id"]} and events[0]["data"]["object"]["id"] == pi.id
    for headers, body in webhook_receiver.deliveries:
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)


def test_unreachable_endpoint_gives_up_after_max_attempts(sandbox, stripe_client, add_endpoint):
    add_endpoint("http://127.0.0.1:9/nothing", enabled_events=["payment_intent.created"])
    stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    wait_until(lambda: len(deliveries(sandbox)) == 4, message="4 attempts")
    assert all(a["status_code"] is None and a["error"] for a in deliveries(sandbox))
    assert deliveries(sandbox)[-1]["retry_in"] is None


def test_duplicate_fault_delivers_the_same_event_twice(sandbox, stripe_client, endpoint, webhook_receiver):
    set_faults(sandbox, webhook_duplicate_rate=1.0)
    stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    wait_until(lambda: len(webhook_receiver.deliveries) == 2)
    first, second = webhook_receiver.events()
    assert first["id"] == second["id"]
    assert requests.get(f"{sandbox.url}/_sandbox/faults/stats", timeout=5).json()["webhook_duplicate"] == 1


def test_drop_fault_never_delivers(sandbox, stripe_client, endpoint, webhook_receiver):
    set_faults(sandbox, webhook_drop_rate=1.0)
    stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    dropped = wait_until(lambda: deliveries(sandbox))
    assert dropped[0]["dropped"] is True and webhook_receiver.deliveries == []
    # ...but the event exists, so reconciliation can find it through the API.
    assert stripe_client.v1.events.list().data[0].type == "payment_intent.created"


def test_reorder_fault_shuffles_a_window(sandbox, stripe_client, endpoint, webhook_receiver):
    set_faults(sandbox, webhook_reorder={"window": 3, "hold_ms": 2000}, seed=7)
    pay(stripe_client)  # created, charge.succeeded, succeeded
    wait_until(lambda: len(webhook_receiver.deliveries) == 3)
    emitted = [e.id for e in reversed(stripe_client.v1.events.list().data)]
    received = [e["id"] for e in webhook_receiver.events()]
    assert sorted(received) == sorted(emitted) and received != emitted


def test_delay_fault_and_endpoint_control(sandbox, stripe_client, webhook_receiver):
    set_faults(sandbox, webhook_delay_ms=300)
    created = requests.post(
        f"{sandbox.url}/_sandbox/webhook_endpoints",
        timeout=5,
        json={"url": webhook_receiver.url, "secret": SECRET, "enabled_events": ["payment_intent.*"]},
    ).json()
    listed = requests.get(f"{sandbox.url}/_sandbox/webhook_endpoints", timeout=5).json()["data"]
    assert created["id"] in [e["id"] for e in listed]
    pi = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    event = stripe_client.v1.events.list().data[0]
    assert event.pending_webhooks == 1 and event.data.object.id == pi.id
    assert webhook_receiver.deliveries == []  # not yet: delayed
    wait_until(lambda: webhook_receiver.deliveries, message="delayed delivery")
    gone = requests.delete(f"{sandbox.url}/_sandbox/webhook_endpoints/{created['id']}", timeout=5)
    assert gone.json()["deleted"] is True


def test_payload_is_the_event_as_the_api_returns_it(stripe_client, endpoint, webhook_receiver):
    stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    headers, body = wait_until(lambda: webhook_receiver.deliveries and webhook_receiver.deliveries[0])
    event = json.loads(body)
    assert headers["Content-Type"].startswith("application/json")
    # Sent while it was pending at this endpoint; once acknowledged, the API counts it delivered.
    assert event["pending_webhooks"] == 1
    retrieved = wait_until(
        lambda: (e := stripe_client.v1.events.retrieve(event["id"]).to_dict())["pending_webhooks"] == 0 and e
    )
    assert event == {**retrieved, "pending_webhooks": 1}
