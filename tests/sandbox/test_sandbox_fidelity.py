"""The sandbox refuses what Stripe refuses: currencies, per-currency limits, IBAN check digits,
`expand[]`, `Stripe-Version`. All through the official SDK over HTTP."""

import pytest
import requests
import stripe

from stripe_sandbox.currencies import MINIMUMS

pytestmark = pytest.mark.timeout(30)

CARD_ONLY = {"payment_method_types": ["card"]}


def create(client, amount=5000, currency="usd", **params):
    return client.v1.payment_intents.create(params={"amount": amount, "currency": currency, **params})


def refused(call, *args, **kwargs) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        call(*args, **kwargs)
    assert exc.value.http_status == 400
    return exc.value


# --- currency ---------------------------------------------------------------------------------


def test_unknown_currency_is_refused_in_stripes_words(stripe_client):
    err = refused(create, stripe_client, currency="xyz")
    assert err.param == "currency" and err.error.type == "invalid_request_error"
    assert err.user_message.startswith(
        "Invalid currency: xyz. Stripe currently supports these currencies: usd, aed, afn,"
    )
    assert refused(create, stripe_client, currency="us").param == "currency"


def test_currency_is_lowercased_and_checked_on_update(stripe_client):
    pi = create(stripe_client, currency="EUR")
    assert pi.currency == "eur"
    err = refused(stripe_client.v1.payment_intents.update, pi.id, params={"currency": "abc"})
    assert err.param == "currency"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).currency == "eur"


# --- minimum and maximum amounts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "currency, minimum, written",
    [
        ("usd", 50, "$0.50"),
        ("eur", 50, "€0.50"),
        ("gbp", 30, "£0.30"),
        ("jpy", 50, "¥50"),
        ("huf", 17500, "175.00 Ft"),
        ("mxn", 1000, "$10"),
        ("hkd", 400, "$4.00"),
    ],
)
def test_minimum_charge_differs_per_currency(stripe_client, currency, minimum, written):
    assert create(stripe_client, amount=minimum, currency=currency).amount == minimum
    err = refused(create, stripe_client, amount=minimum - 1, currency=currency)
    assert (err.code, err.param) == ("amount_too_small", "amount")
    assert err.user_message == f"Amount must be at least {written} {currency}"


def test_gbp_takes_less_than_the_old_flat_50(stripe_client):
    assert create(stripe_client, amount=30, currency="gbp").amount == 30
    assert MINIMUMS["gbp"][0] == 30


def test_a_currency_change_rechecks_the_amount(stripe_client):
    pi = create(stripe_client, amount=100, currency="usd", **CARD_ONLY)
    err = refused(stripe_client.v1.payment_intents.update, pi.id, params={"currency": "huf"})
    assert err.code == "amount_too_small"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).currency == "usd"
    err = refused(stripe_client.v1.payment_intents.update, pi.id, params={"amount": 20})
    assert err.code == "amount_too_small"


@pytest.mark.parametrize("currency, maximum", [("usd", 99_999_999), ("jpy", 99_999_999), ("inr", 999_999_999)])
def test_maximum_amount(stripe_client, currency, maximum):
    assert create(stripe_client, amount=maximum, currency=currency).amount == maximum
    err = refused(create, stripe_client, amount=maximum + 1, currency=currency)
    assert (err.code, err.param) == ("amount_too_large", "amount")


def test_zero_decimal_currency_amounts_are_whole_units(stripe_client):
    err = refused(create, stripe_client, amount=100_000_000, currency="jpy")
    assert "99,999,999 jpy" in err.user_message  # no decimals for yen
    err = refused(create, stripe_client, amount=100_000_000, currency="usd")
    assert "999,999.99 usd" in err.user_message
    assert refused(create, stripe_client, amount=550, currency="isk").param == "amount"
    assert create(stripe_client, amount=500, currency="isk").amount == 500


# --- IBAN check digits --------------------------------------------------------------------------


def confirm_sepa(client, iban):
    pi = create(client, currency="eur")
    return client.v1.payment_intents.confirm(
        pi.id,
        params={
            "return_url": "http://shop/return",
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": iban}},
        },
    )


@pytest.mark.parametrize("iban", ["AT611904300234573202", "DE89370400440532013001", "AT601904300234573201"])
def test_iban_with_bad_check_digits_is_refused(stripe_client, iban):
    err = refused(confirm_sepa, stripe_client, iban)
    assert err.code == "invalid_bank_account_iban"
    assert err.param == "payment_method_data[sepa_debit][iban]"
    assert not [pi for pi in stripe_client.v1.payment_intents.list().data if pi.status != "requires_payment_method"]


def test_iban_with_good_check_digits_is_accepted(stripe_client):
    pi = confirm_sepa(stripe_client, "DE89 3704 0044 0532 0130 00")
    assert pi.status == "processing"


# --- expand[] -----------------------------------------------------------------------------------


def paid(client, **params):
    pi = create(client, **CARD_ONLY)
    return client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa", **params})


def test_expand_latest_charge_and_payment_method(stripe_client):
    pi = paid(stripe_client, expand=["latest_charge", "payment_method"])
    assert pi.latest_charge.object == "charge" and pi.latest_charge.amount == 5000
    assert pi.payment_method.object == "payment_method" and pi.payment_method.card.last4 == "4242"
    again = stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge", "customer"]})
    assert again.latest_charge.id == pi.latest_charge.id and again.customer is None
    # A captured charge has a balance transaction on Stripe; the sandbox keeps none to expand, so it refuses.
    assert again.latest_charge.balance_transaction.startswith("txn_")
    err = refused(
        stripe_client.v1.payment_intents.retrieve, pi.id, params={"expand": ["latest_charge.balance_transaction"]}
    )
    assert "cannot be expanded (latest_charge.balance_transaction)" in err.user_message
    plain = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert isinstance(plain.latest_charge, str)


def test_expand_on_update_list_charge_and_refund(stripe_client):
    pi = paid(stripe_client)
    updated = stripe_client.v1.payment_intents.update(
        pi.id, params={"metadata": {"k": "v"}, "expand": ["latest_charge"]}
    )
    assert updated.latest_charge.payment_intent == pi.id
    listed = stripe_client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.id == pi.latest_charge
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["payment_intent"]})
    assert charge.payment_intent.id == pi.id
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "expand": ["charge", "payment_intent"]})
    assert refund.charge.refunded and refund.payment_intent.status == "succeeded"


def test_expand_refuses_what_stripe_refuses(stripe_client):
    pi = create(stripe_client)
    err = refused(stripe_client.v1.payment_intents.retrieve, pi.id, params={"expand": ["amount"]})
    assert err.user_message == "This property cannot be expanded (amount)."
    err = refused(stripe_client.v1.payment_intents.list, params={"expand": ["latest_charge"]})
    assert "You may want to try expanding 'data.latest_charge' instead." in err.user_message
    count = len(stripe_client.v1.payment_intents.list().data)
    refused(create, stripe_client, expand=["nope"])
    assert len(stripe_client.v1.payment_intents.list().data) == count  # nothing was created


# --- Stripe-Version -----------------------------------------------------------------------------


def raw_get(sandbox, path, **headers):
    return requests.get(
        f"{sandbox.url}{path}", timeout=5, headers={"Authorization": f"Bearer {sandbox.secret_key}", **headers}
    )


def test_stripe_version_is_echoed(sandbox, stripe_client):
    pi = create(stripe_client)
    assert pi.last_response.headers["Stripe-Version"] == stripe.api_version
    monthly = make_versioned_client(sandbox, "2026-09-30.endive")  # a monthly version of the same release
    assert monthly.v1.payment_intents.retrieve(pi.id).last_response.headers["Stripe-Version"] == "2026-09-30.endive"
    assert raw_get(sandbox, "/v1/events").headers["Stripe-Version"] == stripe.api_version


def make_versioned_client(sandbox, version):
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.url}, stripe_version=version, max_network_retries=0
    )


@pytest.mark.parametrize(
    "version",
    ["2099-01-01.zinnia", "2024-13-01", "banana", "2025-03-31", "2024-06-20.acacia", "2025-03-31.basil; beta=v1"],
)
def test_invalid_stripe_version_is_refused(sandbox, version):
    client = make_versioned_client(sandbox, version)
    err = refused(client.v1.payment_intents.list)
    assert err.user_message == f"Invalid Stripe API version: {version}"
    assert err.error.type == "invalid_request_error"


def test_expand_nests_and_a_list_expands_each_item(stripe_client):
    pi = paid(stripe_client)
    again = stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge.payment_intent"]})
    assert again.latest_charge.payment_intent.id == pi.id
    assert isinstance(again.latest_charge.payment_intent.latest_charge, str)
    charges = stripe_client.v1.charges.list(params={"expand": ["data.payment_intent"]})
    assert charges.data[0].payment_intent.object == "payment_intent"
    err = refused(stripe_client.v1.payment_intents.retrieve, pi.id, params={"expand": ["a.b.c.d.e"]})
    assert "more than 4 levels" in err.user_message


def test_a_customer_the_sandbox_does_not_have_is_refused(stripe_client):
    """Stripe answers an unknown customer with resource_missing on `customer`; the sandbox has no Customers."""
    count = len(stripe_client.v1.payment_intents.list().data)
    err = refused(create, stripe_client, customer="cus_123")
    assert (err.code, err.param, err.user_message) == ("resource_missing", "customer", "No such customer: 'cus_123'")
    assert len(stripe_client.v1.payment_intents.list().data) == count


def test_a_publishable_key_expands_only_the_payment_method(sandbox, stripe_client):
    pi = create(stripe_client, **CARD_ONLY)
    public = stripe.StripeClient(sandbox.publishable_key, base_addresses={"api": sandbox.url}, max_network_retries=0)
    err = refused(
        public.v1.payment_intents.confirm,
        pi.id,
        params={"client_secret": pi.client_secret, "payment_method": "pm_card_visa", "expand": ["latest_charge"]},
    )
    assert "cannot be expanded (latest_charge)" in err.user_message
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
    done = public.v1.payment_intents.confirm(
        pi.id,
        params={"client_secret": pi.client_secret, "payment_method": "pm_card_visa", "expand": ["payment_method"]},
    )
    assert done.status == "succeeded" and done.payment_method.card.last4 == "4242"


def test_lists_filter_on_created(stripe_client):
    pi = paid(stripe_client)
    listing = stripe_client.v1.payment_intents.list
    assert [p.id for p in listing(params={"created": {"gte": pi.created}}).data] == [pi.id]
    assert listing(params={"created": {"gt": pi.created}}).data == []
    assert [p.id for p in listing(params={"created": pi.created}).data] == [pi.id]
    assert stripe_client.v1.charges.list(params={"created": {"lt": pi.created}}).data == []
    assert stripe_client.v1.events.list(params={"created": {"lte": pi.created - 1}}).data == []
    assert len(stripe_client.v1.events.list(params={"created": {"gte": pi.created}}).data) >= 3
    err = refused(listing, params={"created": {"after": 1}})
    assert (err.code, err.param) == ("parameter_unknown", "created[after]")
