"""Stripe's test cards and IBANs: declines, 3D Secure, SEPA processing."""

import pytest
import requests
import stripe

from tests.plugins.sandbox import wait_until

pytestmark = pytest.mark.timeout(30)


def card_pi(client, **params):
    return client.v1.payment_intents.create(
        params={"amount": 5000, "currency": "eur", "payment_method_types": ["card"], **params}
    )


def sepa_pi(client, iban):
    pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur"})
    return client.v1.payment_intents.confirm(
        pi.id,
        params={
            "return_url": "http://shop/return",
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": iban}},
        },
    )


def event_types(client, pi_id):
    events = [e.to_dict() for e in client.v1.events.list(params={"limit": 100}).data]
    return [
        e["type"]
        for e in reversed(events)
        if pi_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
    ]


@pytest.mark.parametrize(
    "method, decline_code",
    [
        ({"payment_method": "pm_card_chargeDeclined"}, "generic_decline"),
        ({"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}, "insufficient_funds"),
        ({"payment_method_data": {"type": "card", "card": {"number": "4000000000000002"}}}, "generic_decline"),
        ({"payment_method_data": {"type": "card", "card": {"number": "4000000000009995"}}}, "insufficient_funds"),
    ],
)
def test_declines_are_402_card_errors(stripe_client, method, decline_code):
    pi = card_pi(stripe_client)
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.payment_intents.confirm(pi.id, params=method)
    err = exc.value
    assert err.http_status == 402 and err.code == "card_declined"
    assert err.error.decline_code == decline_code
    assert err.error.payment_intent.status == "requires_payment_method"
    pi = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_payment_method" and pi.last_payment_error.decline_code == decline_code
    assert event_types(stripe_client, pi.id)[-1] == "payment_intent.payment_failed"
    # A declined PaymentIntent can be paid again with another card.
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded" and pi.last_payment_error is None


def test_card_number_confirm_succeeds(stripe_client):
    pi = card_pi(stripe_client)
    pi = stripe_client.v1.payment_intents.confirm(
        pi.id, params={"payment_method_data": {"type": "card", "card": {"number": "4242 4242 4242 4242"}}}
    )
    assert pi.status == "succeeded"


def authenticate(sandbox, pi, outcome):
    return requests.post(
        f"{sandbox.url}/_sandbox/payment_intents/{pi.id}/authenticate",
        json={"outcome": outcome, "client_secret": pi.client_secret},
        headers={"Authorization": f"Bearer {sandbox.publishable_key}"},
        timeout=5,
    )


def test_3ds_requires_action_then_complete(sandbox, stripe_client):
    pi = card_pi(stripe_client)
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_authenticationRequired"})
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"
    assert f"/_sandbox/3ds/{pi.id}" in pi.next_action.use_stripe_sdk.stripe_js
    resp = authenticate(sandbox, pi, "complete")
    assert resp.status_code == 200 and resp.json()["status"] == "succeeded"
    assert "metadata" not in resp.json()  # publishable-key view
    assert stripe_client.v1.payment_intents.retrieve(pi.id).amount_received == 5000
    assert "payment_intent.requires_action" in event_types(stripe_client, pi.id)


def test_3ds_fail_returns_to_requires_payment_method(sandbox, stripe_client):
    pi = card_pi(stripe_client)
    pi = stripe_client.v1.payment_intents.confirm(
        pi.id, params={"payment_method": "pm_card_authenticationRequired", "return_url": "http://shop/return"}
    )
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.url.startswith(f"{sandbox.url}/_sandbox/3ds/{pi.id}")
    assert authenticate(sandbox, pi, "fail").status_code == 200
    pi = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.code == "payment_intent_authentication_failure"
    assert event_types(stripe_client, pi.id)[-1] == "payment_intent.payment_failed"
    page = requests.get(f"{sandbox.url}/_sandbox/3ds/{pi.id}", timeout=5)
    assert 'data-testid="sandbox-3ds-complete"' in page.text


def test_authenticate_needs_the_client_secret(sandbox, stripe_client):
    pi = card_pi(stripe_client, confirm=True, payment_method="pm_card_authenticationRequired")
    resp = requests.post(
        f"{sandbox.url}/_sandbox/payment_intents/{pi.id}/authenticate",
        json={"outcome": "complete", "client_secret": "pi_x_secret_wrong"},
        timeout=5,
    )
    assert resp.status_code == 401


def settle(sandbox, pi_id):
    return requests.post(f"{sandbox.url}/_sandbox/payment_intents/{pi_id}/settle", timeout=5)


def test_sepa_processing_then_succeeds(sandbox, stripe_client):
    pi = sepa_pi(stripe_client, "AT611904300234573201")
    assert pi.status == "processing" and pi.amount_received == 0
    assert settle(sandbox, pi.id).json()["status"] == "succeeded"
    pi = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "succeeded" and pi.amount_received == 5000
    assert event_types(stripe_client, pi.id)[-2:] == ["charge.succeeded", "payment_intent.succeeded"]
    assert "payment_intent.processing" in event_types(stripe_client, pi.id)


def test_sepa_processing_then_fails(sandbox, stripe_client):
    pi = sepa_pi(stripe_client, "AT861904300235473202")
    assert pi.status == "processing"
    assert settle(sandbox, pi.id).json()["status"] == "requires_payment_method"
    pi = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert pi.last_payment_error is not None and pi.amount_received == 0
    assert event_types(stripe_client, pi.id)[-1] == "payment_intent.payment_failed"
    assert settle(sandbox, pi.id).status_code == 400  # no longer processing


def test_sepa_settles_by_itself_after_the_delay(sandbox, stripe_client):
    sandbox.state.settings.sepa_delay = 0.1
    try:
        normal = sepa_pi(stripe_client, "AT611904300234573201")
        late = sepa_pi(stripe_client, "AT321904300235473204")
        wait_until(lambda: stripe_client.v1.payment_intents.retrieve(normal.id).status == "succeeded")
        assert stripe_client.v1.payment_intents.retrieve(late.id).status == "processing"
        wait_until(lambda: stripe_client.v1.payment_intents.retrieve(late.id).status == "succeeded")
    finally:
        sandbox.state.settings.sepa_delay = 3.0


def test_processing_amount_cannot_change(stripe_client):
    pi = sepa_pi(stripe_client, "AT611904300234573201")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": 9000})
    assert exc.value.code == "payment_intent_unexpected_state"
