"""Refunds and events through the official SDK."""

import pytest
import stripe

pytestmark = pytest.mark.timeout(30)


def paid_pi(client, amount=10000):
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method_types": ["card"],
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )


def test_partial_then_full_refund_then_over_refund(stripe_client):
    pi = paid_pi(stripe_client)
    first = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 3000})
    assert first.id.startswith("re_") and first.amount == 3000 and first.status == "succeeded"
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 3000 and charge.refunded is False
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 7001})
    assert (exc.value.code, exc.value.param) == ("amount_too_large", "amount")
    rest = stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert rest.amount == 7000
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 10000 and charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1})
    assert exc.value.code == "charge_already_refunded"
    listed = stripe_client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert stripe_client.v1.refunds.retrieve(first.id).amount == 3000


def test_refund_events(stripe_client):
    pi = paid_pi(stripe_client)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2500})
    events = stripe_client.v1.events.list(params={"limit": 2}).data
    assert [e.type for e in events] == ["charge.refunded", "refund.created"]
    assert events[1].data.object.id == refund.id
    assert events[0].data.object.amount_refunded == 2500


def test_refund_of_unpaid_or_unknown_payment_intent(stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert exc.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.refunds.create(params={"payment_intent": "pi_missing"})
    assert (exc.value.code, exc.value.param) == ("resource_missing", "payment_intent")


def test_events_are_snapshots_newest_first(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method_types": ["card"]},
        options={"idempotency_key": "create-1"},
    )
    stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    events = stripe_client.v1.events.list().data
    assert [e.type for e in events] == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]
    created = events[-1]
    assert created.id.startswith("evt_") and created.object == "event" and created.livemode is False
    assert created.data.object.status == "requires_payment_method"  # the state at that moment
    assert created.api_version == stripe.api_version
    assert created.request.idempotency_key == "create-1" and created.request.id.startswith("req_")
    assert stripe_client.v1.events.retrieve(created.id).type == "payment_intent.created"


def test_events_filter_and_paginate(stripe_client):
    for _ in range(3):
        paid_pi(stripe_client)
    succeeded = stripe_client.v1.events.list(params={"type": "payment_intent.succeeded"}).data
    assert len(succeeded) == 3
    assert len(stripe_client.v1.events.list(params={"type": "charge.*"}).data) == 3
    first = stripe_client.v1.events.list(params={"limit": 4})
    second = stripe_client.v1.events.list(params={"limit": 4, "starting_after": first.data[-1].id})
    assert first.has_more and not {e.id for e in first.data} & {e.id for e in second.data}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.events.retrieve("evt_missing")
    assert exc.value.http_status == 404


def test_amount_capturable_updated_and_canceled_events(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    stripe_client.v1.payment_intents.cancel(pi.id)
    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types[:2] == ["payment_intent.canceled", "payment_intent.amount_capturable_updated"]
