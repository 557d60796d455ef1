"""The Events list filters reconciliation uses: `types[]`, `created` ranges, `delivery_success`."""

import time

import pytest
import stripe

from tests.conftest import wait_for
from tests.shopping import control

pytestmark = pytest.mark.timeout(30)


def paid_pi(client):
    return client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method_types": ["card"],
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )


def listed(client, **params):
    return [(e.type, e.data.object.id) for e in client.v1.events.list(params=params).data]


def test_types_and_created_ranges(stripe_client):
    pi = paid_pi(stripe_client)
    created = stripe_client.v1.events.list().data[0].created
    types = ["payment_intent.succeeded", "payment_intent.created"]
    assert listed(stripe_client, types=types) == [
        ("payment_intent.succeeded", pi.id),
        ("payment_intent.created", pi.id),
    ]
    assert len(listed(stripe_client, types=types, created={"gte": created - 5})) == 2
    assert listed(stripe_client, types=types, created={"gt": created + 5}) == []
    assert listed(stripe_client, types=types, created={"gte": created - 5, "lt": created - 1}) == []
    assert len(listed(stripe_client, created=created)) == len(listed(stripe_client))  # one second, one exact time
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.events.list(params={"created": {"after": 1}})
    assert exc.value.param == "created[after]"


def test_delivery_success_separates_acknowledged_from_failed_events(sandbox, stripe_client, webhook_receiver):
    # The session's sandbox keeps its endpoints across tests: this one goes with the test (its receiver does).
    endpoint = sandbox.add_webhook_endpoint(webhook_receiver.url, "whsec_test", ["payment_intent.succeeded"])
    try:
        delivered = paid_pi(stripe_client)
        wait_for(lambda: webhook_receiver.events(), message="the first payment's webhook")
        control(sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
        dropped = paid_pi(stripe_client)
        wait_for(lambda: control(sandbox.url, "GET", "/deliveries")["data"][-1]["dropped"], message="the drop logged")
        since = int(time.time()) - 60
        common = {"types": ["payment_intent.succeeded"], "created": {"gte": since}}
        assert listed(stripe_client, **common, delivery_success=False) == [("payment_intent.succeeded", dropped.id)]
        assert listed(stripe_client, **common, delivery_success=True) == [("payment_intent.succeeded", delivered.id)]
        # An event no endpoint subscribed to was delivered to everyone it had to be.
        assert ("payment_intent.created", dropped.id) in listed(stripe_client, delivery_success=True)
    finally:
        control(sandbox.url, "DELETE", f"/webhook_endpoints/{endpoint['id']}")
