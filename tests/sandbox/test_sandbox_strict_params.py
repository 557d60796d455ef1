"""The sandbox refuses the parameters Stripe refuses, and those it does not model (issue 23, point 9).

Each behaviour is checked against Stripe's published API reference / OpenAPI spec or an answer of Stripe's
quoted in a public thread (named in each test); where the sandbox does not model a parameter Stripe takes, it
refuses it rather than accept and ignore it. All through the official SDK (or plain HTTP) against the sandbox.
"""

import pytest
import requests
import stripe

pytestmark = pytest.mark.timeout(30)

CARD_ONLY = {"payment_method_types": ["card"]}


def create(client, amount=5000, currency="usd", **params):
    return client.v1.payment_intents.create(params={"amount": amount, "currency": currency, **params})


def refused(call, *args, **kwargs) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        call(*args, **kwargs)
    assert exc.value.http_status == 400 and exc.value.error.type == "invalid_request_error"
    return exc.value


def count(client) -> int:
    return len(client.v1.payment_intents.list(params={"limit": 100}).data)


def paid(client):
    pi = create(client, **CARD_ONLY)
    return client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})


# --- the Events API's `types` ------------------------------------------------------------------


def test_events_take_at_most_20_types_and_never_type_with_types(stripe_client):
    """Stripe's spec (GET /v1/events): `types` is "An array of up to 20 strings ... You may pass either type or
    types, but not both." A 21st type is a 400 (FriendlyCaptcha/friendly-stripe-sync#20 hit it)."""
    paid(stripe_client)
    twenty = ["payment_intent.succeeded"] + [f"charge.kind{i}" for i in range(19)]
    assert [e.type for e in stripe_client.v1.events.list(params={"types": twenty}).data] == ["payment_intent.succeeded"]
    err = refused(stripe_client.v1.events.list, params={"types": [*twenty, "charge.succeeded"]})
    assert err.param == "types"
    err = refused(stripe_client.v1.events.list, params={"type": "charge.*", "types": ["payment_intent.created"]})
    assert err.user_message == "You may only specify one of these parameters: type, types."


# --- unknown parameters, in the query and nested ---------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/payment_intents", "/v1/events", "/v1/charges", "/v1/refunds", "/v1/payment_intents/{pi}"]
)
def test_an_unknown_query_parameter_is_refused(sandbox, stripe_client, path):
    """Stripe answers `parameter_unknown` ("Received unknown parameter: x") for a parameter an endpoint does
    not take, in a GET's query string as in a POST's body."""
    pi = create(stripe_client)
    url = sandbox.url + path.format(pi=pi.id)
    answer = requests.get(url, params={"colour": "blue"}, headers={"Authorization": f"Bearer {sandbox.secret_key}"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_unknown", "colour")
    assert error["message"].startswith("Received unknown parameter: colour")


def test_unknown_nested_keys_are_refused(stripe_client):
    """Nested hashes are checked key by key: Stripe names the full bracketed path (`created[after]`, as in
    its answers for any hash parameter)."""
    before = count(stripe_client)
    err = refused(create, stripe_client, automatic_payment_methods={"enabled": True, "colour": "blue"})
    assert (err.code, err.param) == ("parameter_unknown", "automatic_payment_methods[colour]")
    pi = create(stripe_client, **CARD_ONLY)
    data = {"type": "card", "card": {"number": "4242424242424242", "colour": "blue"}}
    err = refused(stripe_client.v1.payment_intents.confirm, pi.id, params={"payment_method_data": data})
    assert (err.code, err.param) == ("parameter_unknown", "payment_method_data[card][colour]")
    data = {"type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573201", "bic": "X"}}
    err = refused(stripe_client.v1.payment_intents.confirm, pi.id, params={"payment_method_data": data})
    assert err.param == "payment_method_data[sepa_debit][bic]"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
    assert count(stripe_client) == before + 1


def test_automatic_payment_methods_needs_enabled(stripe_client):
    """Stripe's spec: `automatic_payment_methods.enabled` is required ("Whether this feature is enabled");
    without it Stripe answers parameter_missing, "Missing required param: automatic_payment_methods[enabled]."."""
    before = count(stripe_client)
    err = refused(create, stripe_client, automatic_payment_methods={"allow_redirects": "never"})
    assert (err.code, err.param) == ("parameter_missing", "automatic_payment_methods[enabled]")
    assert err.user_message == "Missing required param: automatic_payment_methods[enabled]."
    assert count(stripe_client) == before
    assert create(stripe_client, automatic_payment_methods={"enabled": True}).automatic_payment_methods.enabled


# --- metadata ----------------------------------------------------------------------------------


def test_metadata_values_keys_and_refund_metadata_are_checked(stripe_client):
    """docs.stripe.com/api/metadata: up to 50 keys, key names up to 40 characters, values up to 500. Stripe's
    answers, quoted by a Stripe engineer in stripe/stripe-php#246 (and houndci/hound#817): "Invalid key: ...
    must be a string under 40 characters", "Invalid val: ... must be a string under 500 characters", param
    `metadata`. Refunds take metadata under the same rules."""
    before = count(stripe_client)
    assert create(stripe_client, metadata={"k": "v" * 500}).metadata["k"] == "v" * 500
    err = refused(create, stripe_client, metadata={"k": "v" * 501})
    assert err.param == "metadata" and err.user_message.startswith("Invalid val: vvv")
    assert err.user_message.endswith("must be a string under 500 characters")
    err = refused(create, stripe_client, metadata={"k" * 41: "v"})
    assert err.user_message == f"Invalid key: {'k' * 41} must be a string under 40 characters"
    assert count(stripe_client) == before + 1
    pi = paid(stripe_client)
    err = refused(stripe_client.v1.refunds.create, params={"payment_intent": pi.id, "metadata": {"k": "v" * 501}})
    assert err.param == "metadata"
    many = {f"k{i}": "v" for i in range(51)}
    assert refused(stripe_client.v1.refunds.create, params={"payment_intent": pi.id, "metadata": many})
    assert stripe_client.v1.refunds.list(params={"payment_intent": pi.id}).data == []
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "metadata": {"why": "test"}})
    assert refund.metadata.to_dict() == {"why": "test"}


# --- what the sandbox does not model ------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"confirmation_method": "manual"},
        {"shipping": {"name": "A", "address": {"line1": "1 Road"}}},
        {"setup_future_usage": "off_session"},
        {"statement_descriptor": "SHOP"},
        {"payment_method_options": {"card": {"request_three_d_secure": "any"}}},
        {"payment_method_data": {"type": "card", "card": {"number": "4242424242424242", "cvc": "123"}}},
    ],
    ids=["confirmation_method", "shipping", "setup_future_usage", "statement_descriptor", "pm_options", "cvc"],
)
def test_a_parameter_the_sandbox_does_not_model_is_refused_not_ignored(stripe_client, params):
    """These are parameters of Stripe's spec (POST /v1/payment_intents) that change what Stripe does (manual
    confirmation, shipping on the charge, saving the card, ...). The sandbox does not model them: it refuses
    them, saying so, rather than accept them and behave as if they had not been sent."""
    before = count(stripe_client)
    err = refused(create, stripe_client, **CARD_ONLY, **params)
    assert err.code == "parameter_unknown" and "does not model" in err.user_message
    assert count(stripe_client) == before
    assert create(stripe_client, confirmation_method="automatic").confirmation_method == "automatic"
