"""The sandbox behaves as Stripe does where it used to be lax (issue 23, point 9).

Each behaviour is checked against Stripe's published API reference / OpenAPI spec or an answer of Stripe's
quoted in a public thread (named in each test). All through the official SDK against the sandbox over HTTP.
"""

import pytest
import requests
import stripe

from tests.plugins.sandbox import wait_until

pytestmark = pytest.mark.timeout(30)

CARD_ONLY = {"payment_method_types": ["card"]}
SEPA = {"type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573201"}}


def create(client, amount=5000, currency="usd", **params):
    return client.v1.payment_intents.create(params={"amount": amount, "currency": currency, **params})


def refused(call, *args, **kwargs) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        call(*args, **kwargs)
    return exc.value


def control(sandbox, method, path):
    answer = requests.request(method, f"{sandbox.url}/_sandbox{path}", timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def versioned(sandbox, version):
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.url}, stripe_version=version, max_network_retries=0
    )


def declined(client):
    pi = create(client, **CARD_ONLY)
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    return client.v1.payment_intents.retrieve(pi.id)


def test_an_update_clears_last_payment_error(stripe_client):
    """Stripe's spec, PaymentIntent.last_payment_error: "The payment error encountered in the previous
    PaymentIntent confirmation. It will be cleared if the PaymentIntent is later updated for any reason."."""
    pi = declined(stripe_client)
    assert pi.last_payment_error.code == "card_declined"
    updated = stripe_client.v1.payment_intents.update(pi.id, params={"amount": 6000})
    assert updated.last_payment_error is None
    assert stripe_client.v1.payment_intents.retrieve(pi.id).last_payment_error is None
    again = declined(stripe_client)
    assert stripe_client.v1.payment_intents.update(again.id, params={"metadata": {"k": "v"}}).last_payment_error is None


def test_sepa_debit_takes_only_eur(stripe_client):
    """docs.stripe.com/payments/sepa-debit: presentment currency eur only. Stripe's answer for another one, as
    quoted in Automattic/woocommerce-payments#3233: "The currency provided (usd) is invalid for one or more
    payment method types on this PaymentIntent. The payment method type sepa_debit only supports the following
    currencies: eur. ..."; a PaymentMethod of a type the PaymentIntent does not take is refused with "The
    PaymentMethod provided (link) is not allowed for this PaymentIntent. ..." (woocommerce-payments#7026).
    With automatic payment methods, Stripe offers only the types that take the PaymentIntent's currency."""
    err = refused(create, stripe_client, payment_method_types=["card", "sepa_debit"])
    assert err.user_message.startswith("The currency provided (usd) is invalid for one or more payment method")
    usd = create(stripe_client)
    assert usd.payment_method_types == ["card"]
    err = refused(
        stripe_client.v1.payment_intents.confirm,
        usd.id,
        params={"payment_method_data": SEPA, "return_url": "https://x.test/"},
    )
    assert err.user_message.startswith("The PaymentMethod provided (sepa_debit) is not allowed for this PaymentIntent.")
    after = stripe_client.v1.payment_intents.retrieve(usd.id)
    assert after.status == "requires_payment_method" and after.latest_charge is None
    eur = create(stripe_client, currency="eur")
    assert eur.payment_method_types == ["card", "sepa_debit"]
    assert stripe_client.v1.payment_intents.update(eur.id, params={"currency": "usd"}).payment_method_types == ["card"]
    debit = create(stripe_client, currency="eur", payment_method_types=["sepa_debit"])
    refused(stripe_client.v1.payment_intents.update, debit.id, params={"currency": "usd"})
    assert stripe_client.v1.payment_intents.retrieve(debit.id).currency == "eur"
    paying = stripe_client.v1.payment_intents.confirm(debit.id, params={"payment_method_data": SEPA})
    assert paying.status == "processing"


def test_a_payment_method_used_without_a_customer_cannot_pay_again(stripe_client):
    """Stripe refuses a PaymentMethod that already paid (or tried to) without a Customer: "The provided
    PaymentMethod was previously used with a PaymentIntent without Customer attachment, ... It may not be used
    again. To use a PaymentMethod multiple times, you must attach it to a Customer first." (quoted in
    stripe/stripe-react-native#1170 for a retry after a failure, and liberapay/liberapay.com#2686)."""
    first = create(stripe_client, **CARD_ONLY)
    card = {"type": "card", "card": {"number": "4242424242424242"}}
    pm = stripe_client.v1.payment_intents.confirm(first.id, params={"payment_method_data": card}).payment_method
    second = create(stripe_client, **CARD_ONLY)
    err = refused(stripe_client.v1.payment_intents.confirm, second.id, params={"payment_method": pm})
    assert err.param == "payment_method" and "It may not be used again" in err.user_message
    assert stripe_client.v1.payment_intents.retrieve(second.id).status == "requires_payment_method"
    refused(create, stripe_client, **CARD_ONLY, payment_method=pm)
    failed = declined(stripe_client)
    spent = failed.last_payment_error.payment_method.id
    err = refused(stripe_client.v1.payment_intents.confirm, failed.id, params={"payment_method": spent})
    assert "It may not be used again" in err.user_message


def test_an_unknown_customer_is_refused_on_update_too(stripe_client):
    """Stripe: an unknown customer is `resource_missing` on `customer` ("No such customer: 'cus_x'")."""
    pi = create(stripe_client)
    err = refused(stripe_client.v1.payment_intents.update, pi.id, params={"customer": "cus_nope"})
    assert (err.code, err.param, err.http_status) == ("resource_missing", "customer", 400)


def test_ending_before_pages_backwards(stripe_client):
    """docs.stripe.com/api/pagination: `ending_before` "defines your place in the list" to "fetch the previous
    page"; only one of starting_after and ending_before may be given."""
    ids = [create(stripe_client).id for _ in range(5)][::-1]  # newest first, as Stripe lists
    listing = stripe_client.v1.payment_intents.list
    page = listing(params={"ending_before": ids[3], "limit": 2})
    assert [p.id for p in page.data] == ids[1:3] and page.has_more
    page = listing(params={"ending_before": ids[1], "limit": 2})
    assert [p.id for p in page.data] == ids[:1] and not page.has_more
    err = refused(listing, params={"ending_before": ids[1], "starting_after": ids[3]})
    assert err.user_message == "You may only specify one of these parameters: ending_before, starting_after."


def test_pending_webhooks_drops_as_deliveries_succeed(sandbox, stripe_client, webhook_receiver):
    """Stripe's spec, Event.pending_webhooks: "Number of webhooks that haven't been successfully delivered (for
    example, to return a 20x response) to the URLs you specify." It drops as each endpoint acknowledges."""
    good = sandbox.add_webhook_endpoint(webhook_receiver.url, "whsec_a", ["payment_intent.created"])
    bad = sandbox.add_webhook_endpoint("http://127.0.0.1:9/hook", "whsec_b", ["payment_intent.created"])
    try:
        pi = create(stripe_client)
        event = stripe_client.v1.events.list(params={"type": "payment_intent.created"}).data[0]
        assert event.data.object.id == pi.id
        wait_until(lambda: webhook_receiver.events(), message="the delivery")
        assert webhook_receiver.events()[0]["pending_webhooks"] == 2  # as it was when sent
        left = wait_until(lambda: stripe_client.v1.events.retrieve(event.id).pending_webhooks == 1, message="ack")
        assert left and stripe_client.v1.events.list(params={"delivery_success": False}).data[0].id == event.id
    finally:
        for endpoint in (good, bad):
            control(sandbox, "DELETE", f"/webhook_endpoints/{endpoint['id']}")


def test_charges_and_refunds_get_a_balance_transaction(sandbox, stripe_client):
    """Stripe's spec, Charge.balance_transaction: "ID of the balance transaction that describes the impact of
    this charge on your account balance (not including refunds or disputes)" — set once money moved (captured,
    or a debit settled), null for a failed or uncaptured charge; a refund has its own."""
    charge_of = lambda pi: stripe_client.v1.charges.retrieve(pi.latest_charge)  # noqa: E731
    pi = stripe_client.v1.payment_intents.confirm(
        create(stripe_client, **CARD_ONLY).id, params={"payment_method": "pm_card_visa"}
    )
    assert charge_of(pi).balance_transaction.startswith("txn_")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    assert refund.balance_transaction.startswith("txn_")
    held = create(stripe_client, **CARD_ONLY, capture_method="manual")
    held = stripe_client.v1.payment_intents.confirm(held.id, params={"payment_method": "pm_card_visa"})
    assert charge_of(held).balance_transaction is None
    assert charge_of(stripe_client.v1.payment_intents.capture(held.id)).balance_transaction.startswith("txn_")
    assert charge_of(declined(stripe_client)).balance_transaction is None
    debit = create(stripe_client, currency="eur", payment_method_types=["sepa_debit"])
    debit = stripe_client.v1.payment_intents.confirm(debit.id, params={"payment_method_data": SEPA})
    assert charge_of(debit).balance_transaction is None
    control(sandbox, "POST", f"/payment_intents/{debit.id}/settle")
    assert charge_of(debit).balance_transaction.startswith("txn_")


def test_the_settle_shortcut_makes_automatic_events(sandbox, stripe_client):
    """Stripe's Event.request: "id: ID of the API request that caused the event. If null, the event was
    automatic"; a SEPA debit settling is no request of the merchant's, so `request` is
    {"id": null, "idempotency_key": null}, as on the events Stripe makes by itself."""
    pi = create(stripe_client, currency="eur", payment_method_types=["sepa_debit"])
    stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method_data": SEPA})
    control(sandbox, "POST", f"/payment_intents/{pi.id}/settle")
    events = {e.type: e for e in stripe_client.v1.events.list(params={"limit": 20}).data}
    assert events["payment_intent.processing"].request.id.startswith("req_")
    for kind in ("payment_intent.succeeded", "charge.succeeded"):
        assert events[kind].request.to_dict() == {"id": None, "idempotency_key": None}


@pytest.mark.parametrize("action", ["retrieve", "update", "confirm", "cancel", "capture"])
def test_a_missing_payment_intent_is_reported_on_intent(stripe_client, action):
    """Stripe's answer for an unknown PaymentIntent in the URL, as quoted in stripe/stripe-terminal-js-demo#72
    and stripe/stripe-ios#4531: 404, {"code": "resource_missing", "message": "No such payment_intent: 'pi_…'",
    "param": "intent", "type": "invalid_request_error"} (`intent` is the path parameter's name in the spec)."""
    call = getattr(stripe_client.v1.payment_intents, action)
    err = refused(call, "pi_missing")
    assert (err.http_status, err.code, err.param) == (404, "resource_missing", "intent")
    assert err.user_message == "No such payment_intent: 'pi_missing'"


def test_an_older_api_release_is_refused_not_answered_as_today(sandbox, stripe_client):
    """docs.stripe.com/api/versioning: a major release "includes changes that aren't backward-compatible with
    previous releases"; its monthly versions only backward-compatible ones. The sandbox models its own release
    (endive, from 2026-09-30): a monthly version of it is answered, an older release is refused, since
    answering it with today's behaviour (e.g. automatic payment methods on by default, 2023-08-16) would lie."""
    pi = create(stripe_client)
    monthly = versioned(sandbox, "2026-09-30.endive")
    assert monthly.v1.payment_intents.retrieve(pi.id).id == pi.id
    for older in ("2023-08-16", "2024-06-20", "2025-03-31.basil", "2024-09-30.acacia"):
        client = versioned(sandbox, older)
        err = refused(client.v1.payment_intents.create, params={"amount": 5000, "currency": "usd"})
        assert err.http_status == 400 and err.user_message.startswith(
            f"The Stripe sandbox does not model API version {older}"
        )
