"""Disputes, refunds that fail later, and webhook endpoints through Stripe's API, with the official SDK."""

import pytest
import requests
import stripe

from tests.plugins.sandbox import wait_until
from tests.sandbox.test_sandbox_openapi import assert_conforms, wire

pytestmark = pytest.mark.timeout(30)


def paid_with(client, payment_method, amount=5000):
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method_types": ["card"],
            "confirm": True,
            "payment_method": payment_method,
        }
    )


def events_of(client, event_type):
    return client.v1.events.list(params={"type": event_type}).data


def test_the_dispute_card_is_disputed_as_fraudulent_after_its_payment(stripe_client):
    pi = paid_with(stripe_client, "pm_card_createDispute")
    assert pi.status == "succeeded"
    created = wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    dispute = stripe_client.v1.disputes.retrieve(created[0].data.object.id)
    assert dispute.id.startswith("du_")
    assert (dispute.charge, dispute.payment_intent) == (pi.latest_charge, pi.id)
    assert (dispute.reason, dispute.status, dispute.amount, dispute.currency) == (
        "fraudulent",
        "needs_response",
        5000,
        "usd",
    )
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).disputed is True
    # The charge is charged back: Stripe refuses to refund it as well.
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert exc.value.code == "charge_disputed"


def fields_outside(obj, model):
    """The fields of `obj` (a dict) the SDK's model, generated from Stripe's OpenAPI spec, does not have."""
    return set(obj) - set(model.__annotations__)


def test_a_dispute_carries_only_fields_stripe_has(stripe_client):
    paid_with(stripe_client, "pm_card_createDispute")
    created = wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    dispute = wire(stripe_client.v1.disputes.retrieve(created[0].data.object.id))
    assert fields_outside(dispute, stripe.Dispute) == set()
    assert fields_outside(dispute["evidence"], stripe.Dispute.Evidence) == set()
    assert fields_outside(dispute["evidence_details"], stripe.Dispute.EvidenceDetails) == set()
    assert fields_outside(dispute["payment_method_details"], stripe.Dispute.PaymentMethodDetails) == set()
    assert fields_outside(dispute["payment_method_details"]["card"], stripe.Dispute.PaymentMethodDetails.Card) == set()


def test_the_card_typed_in_by_number_is_disputed_too(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1200,
            "currency": "usd",
            "payment_method_types": ["card"],
            "confirm": True,
            "payment_method_data": {"type": "card", "card": {"number": "4000000000000259"}},
        }
    )
    created = wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    assert created[0].data.object.payment_intent == pi.id


def test_an_ordinary_card_is_not_disputed(stripe_client, sandbox):
    paid_with(stripe_client, "pm_card_visa")
    disputed = paid_with(stripe_client, "pm_card_createDispute")
    wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    created = events_of(stripe_client, "charge.dispute.created")
    assert [e.data.object.payment_intent for e in created] == [disputed.id]


def test_closing_a_dispute_accepts_it_as_lost_once(stripe_client):
    paid_with(stripe_client, "pm_card_createDispute")
    created = wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    dispute_id = created[0].data.object.id
    closed = stripe_client.v1.disputes.close(dispute_id)
    assert closed.status == "lost"
    assert [e.data.object.status for e in events_of(stripe_client, "charge.dispute.closed")] == ["lost"]
    assert stripe_client.v1.disputes.retrieve(dispute_id).status == "lost"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.disputes.close(dispute_id)
    assert exc.value.http_status == 400


def test_what_the_sandbox_does_not_model_of_disputes_is_refused(stripe_client):
    paid_with(stripe_client, "pm_card_createDispute")
    created = wait_until(lambda: events_of(stripe_client, "charge.dispute.created"), message="a dispute")
    dispute_id = created[0].data.object.id
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.disputes.update(dispute_id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert "does not model" in exc.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.list()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.disputes.retrieve("du_missing")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
    assert stripe_client.v1.disputes.retrieve(dispute_id).status == "needs_response"  # nothing changed


def test_a_refund_to_the_refund_failure_card_succeeds_then_fails(stripe_client):
    pi = paid_with(stripe_client, "pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2000})
    assert refund.status == "succeeded"
    failed = wait_until(lambda: events_of(stripe_client, "refund.failed"), message="the refund to fail")
    assert failed[0].data.object.id == refund.id
    assert [e.data.object.status for e in events_of(stripe_client, "charge.refund.updated")] == ["failed"]
    now = stripe_client.v1.refunds.retrieve(refund.id)
    assert (now.status, now.failure_reason) == ("failed", "expired_or_canceled_card")
    assert now.failure_balance_transaction.startswith("txn_")
    assert_conforms(wire(now), "refund")
    # The money is back in the merchant's balance: the charge counts it refunded no more.
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)


def test_a_refund_to_an_ordinary_card_stays_succeeded(stripe_client, sandbox):
    pi = paid_with(stripe_client, "pm_card_visa")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    failing = paid_with(stripe_client, "pm_card_refundFail")
    stripe_client.v1.refunds.create(params={"payment_intent": failing.id})
    wait_until(lambda: events_of(stripe_client, "refund.failed"), message="the other refund to fail")
    assert stripe_client.v1.refunds.retrieve(refund.id).status == "succeeded"


def test_a_webhook_endpoint_is_created_at_an_api_version_for_its_events(stripe_client, sandbox, webhook_receiver):
    endpoint = stripe_client.v1.webhook_endpoints.create(
        params={
            "url": webhook_receiver.url,
            "enabled_events": ["charge.dispute.created", "refund.failed"],
            "api_version": stripe.api_version,
            "description": "the store",
        }
    )
    assert endpoint.id.startswith("we_") and endpoint.secret.startswith("whsec_")
    assert set(wire(endpoint)) - set(stripe.WebhookEndpoint.__annotations__) == set()
    assert endpoint.api_version == stripe.api_version
    assert endpoint.enabled_events == ["charge.dispute.created", "refund.failed"]
    try:
        listed = stripe_client.v1.webhook_endpoints.list().data
        assert [e.id for e in listed] == [endpoint.id]
        assert "secret" not in listed[0].to_dict()  # shown once, at creation, as on Stripe
        assert stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).url == webhook_receiver.url
        # It gets the events it asked for, signed with its secret, and no others.
        paid_with(stripe_client, "pm_card_createDispute")
        wait_until(lambda: webhook_receiver.events(), message="a delivery")
        assert [e["type"] for e in webhook_receiver.events()] == ["charge.dispute.created"]
        header = webhook_receiver.deliveries[0][0]["Stripe-Signature"]
        stripe.WebhookSignature.verify_header(webhook_receiver.deliveries[0][1].decode(), header, endpoint.secret)
    finally:
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)
    assert stripe_client.v1.webhook_endpoints.list().data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"connect": "true"}, "connect"),
        ({"invented": "1"}, "invented"),
        ({"enabled_events": ["invoice.paid"]}, "enabled_events[0]"),
        ({"enabled_events": []}, "enabled_events"),
        ({"api_version": "2019-01-01"}, "api_version"),
        ({"api_version": "not-a-version"}, "api_version"),
        ({"url": "ftp://example.com/hook"}, "url"),
    ],
)
def test_what_an_endpoint_cannot_be_is_refused(stripe_client, sandbox, params, param):
    base = {"url": "https://shop.example/webhooks/stripe", "enabled_events": ["refund.failed"]}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.webhook_endpoints.create(params={**base, **params})
    assert (exc.value.http_status, exc.value.param) == (400, param)
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["webhook_endpoints"] == 0
