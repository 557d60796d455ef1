"""The sandbox's objects and error bodies, as sent on the wire, match Stripe's OpenAPI schemas.

The schemas are a trimmed copy of Stripe's published spec (tests/sandbox/openapi/README.md).
On top of the spec the check is strict about fields: an object may carry only the properties
the spec documents for it, so the sandbox cannot invent fields a real integration would miss.
"""

import json
from pathlib import Path

import pytest
import requests
import stripe
from jsonschema import Draft202012Validator

from tests.plugins.sandbox import wait_until

pytestmark = pytest.mark.timeout(60)

SPEC = json.loads((Path(__file__).parent / "openapi" / "stripe-components.json").read_text())
CARD_ONLY = {"payment_method_types": ["card"]}


def _to_json_schema(node):
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes a null alternative; documented fields only."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


COMPONENTS = {name: _to_json_schema(schema) for name, schema in SPEC["components"]["schemas"].items()}


def problems(body: dict, component: str) -> list[str]:
    """Every way `body` breaks Stripe's schema for `component` (empty when it conforms)."""
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": {"schemas": COMPONENTS}}
    )
    return [
        f"{'/'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}" for err in validator.iter_errors(body)
    ]


def assert_conforms(body: dict, component: str) -> None:
    found = problems(body, component)
    assert not found, f"{component} breaks Stripe's schema:\n" + "\n".join(found[:20])


def wire(obj) -> dict:
    """The JSON the sandbox sent for an SDK object."""
    return json.loads(obj.last_response.body)


def error_body(exc: stripe.StripeError) -> dict:
    return exc.json_body


def test_the_check_catches_what_stripe_would_not_send():
    good = {"error": {"type": "invalid_request_error", "message": "m", "param": "amount"}}
    assert not problems(good, "error")
    assert problems({"error": {"type": "invalid_request_error", "request_log_url": None}}, "error")
    assert problems({"error": {"type": "bad_type"}}, "error")
    assert problems(
        {
            "id": "pi_1",
            "object": "payment_intent",
            "created": 1,
            "livemode": False,
            "status": "succeeded",
            "invented": 1,
        },
        "payment_intent",
    )


def test_payment_intents_through_their_lifecycle(stripe_client, sandbox):
    client = stripe_client.v1.payment_intents
    created = client.create(params={"amount": 5000, "currency": "usd", "metadata": {"k": "v"}})
    assert_conforms(wire(created), "payment_intent")
    paid = client.confirm(created.id, params={"payment_method": "pm_card_visa", "return_url": "http://shop/return"})
    assert_conforms(wire(paid), "payment_intent")
    manual = client.create(
        params={
            "amount": 5000,
            "currency": "eur",
            "capture_method": "manual",
            "confirm": True,
            "payment_method": "pm_card_visa",
            **CARD_ONLY,
        }
    )
    assert manual.status == "requires_capture"
    assert_conforms(wire(manual), "payment_intent")
    assert_conforms(wire(client.capture(manual.id, params={"amount_to_capture": 3000})), "payment_intent")
    canceled = client.cancel(
        client.create(params={"amount": 900, "currency": "gbp"}).id, params={"cancellation_reason": "abandoned"}
    )
    assert_conforms(wire(canceled), "payment_intent")
    listed = client.list(params={"limit": 100})
    for item in wire(listed)["data"]:
        assert_conforms(item, "payment_intent")


@pytest.mark.parametrize("return_url", [None, "http://shop/return"])
def test_a_payment_waiting_for_3d_secure(stripe_client, return_url):
    params = {"payment_method": "pm_card_authenticationRequired"}
    if return_url:
        params["return_url"] = return_url
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", **CARD_ONLY})
    waiting = stripe_client.v1.payment_intents.confirm(pi.id, params=params)
    assert waiting.status == "requires_action"
    assert_conforms(wire(waiting), "payment_intent")


def test_a_processing_sepa_payment(stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "eur"})
    processing = stripe_client.v1.payment_intents.confirm(
        pi.id,
        params={
            "return_url": "http://shop/return",
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573201"}},
        },
    )
    assert processing.status == "processing"
    assert_conforms(wire(processing), "payment_intent")
    assert_conforms(wire(stripe_client.v1.charges.retrieve(processing.latest_charge)), "charge")


def test_charges_refunds_and_expanded_objects(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 7000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa", **CARD_ONLY}
    )
    assert_conforms(wire(stripe_client.v1.charges.retrieve(pi.latest_charge)), "charge")
    refund = stripe_client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 2500, "reason": "requested_by_customer"}
    )
    assert_conforms(wire(refund), "refund")
    assert_conforms(wire(stripe_client.v1.refunds.retrieve(refund.id)), "refund")
    for item in wire(stripe_client.v1.refunds.list())["data"]:
        assert_conforms(item, "refund")
    for item in wire(stripe_client.v1.charges.list())["data"]:
        assert_conforms(item, "charge")
    expanded = stripe_client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert isinstance(wire(expanded)["latest_charge"], dict)
    assert_conforms(wire(expanded), "payment_intent")
    refund = stripe_client.v1.refunds.retrieve(refund.id, params={"expand": ["charge"]})
    assert_conforms(wire(refund), "refund")


def test_every_event_and_the_object_it_carries(stripe_client, sandbox):
    test_charges_refunds_and_expanded_objects(stripe_client)
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", **CARD_ONLY})
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    events = wire(stripe_client.v1.events.list(params={"limit": 100}))["data"]
    kinds = {event["data"]["object"]["object"] for event in events}
    assert {"payment_intent", "charge", "refund"} <= kinds
    for event in events:
        assert_conforms(event, "event")
        assert_conforms(event["data"]["object"], event["data"]["object"]["object"])


def test_a_decline_error_and_the_failed_payment_it_leaves(stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", **CARD_ONLY})
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert_conforms(error_body(exc.value), "error")
    failed = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert failed.last_payment_error.decline_code == "generic_decline"
    assert_conforms(wire(failed), "payment_intent")
    assert_conforms(wire(stripe_client.v1.charges.retrieve(failed.latest_charge)), "charge")


def test_sepa_failure_leaves_a_conforming_payment(stripe_client, sandbox):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "eur"})
    stripe_client.v1.payment_intents.confirm(
        pi.id,
        params={
            "return_url": "http://shop/return",
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": "AT861904300235473202"}},
        },
    )
    requests.post(f"{sandbox.url}/_sandbox/payment_intents/{pi.id}/settle", timeout=5).raise_for_status()
    failed = wait_until(
        lambda: (p := stripe_client.v1.payment_intents.retrieve(pi.id)).status == "requires_payment_method" and p
    )
    assert_conforms(wire(failed), "payment_intent")


def raw(sandbox, method, path, data=None, **headers):
    auth = headers.pop("auth", f"Bearer {sandbox.secret_key}")
    return requests.request(
        method, f"{sandbox.url}{path}", data=data, timeout=5, headers={"Authorization": auth, **headers}
    )


def test_error_bodies(sandbox, stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    stripe_client.v1.payment_intents.cancel(pi.id)
    answers = [
        raw(sandbox, "POST", "/v1/payment_intents", {"currency": "usd"}),  # parameter_missing
        raw(sandbox, "POST", "/v1/payment_intents", {"amount": "5000", "currency": "xyz"}),
        raw(sandbox, "POST", "/v1/payment_intents", {"amount": "10", "currency": "usd"}),
        raw(sandbox, "POST", "/v1/payment_intents", {"amount": "5000", "currency": "usd", "x": "1"}),
        raw(sandbox, "GET", "/v1/payment_intents/pi_missing"),
        raw(sandbox, "GET", "/v1/payment_intents", auth="Bearer sk_test_wrong"),
        raw(sandbox, "GET", "/v1/payment_intents", **{"Stripe-Version": "2099-01-01.zinnia"}),
        raw(sandbox, "GET", f"/v1/payment_intents/{pi.id}?expand[]=amount"),
        raw(sandbox, "POST", f"/v1/payment_intents/{pi.id}", {"amount": "6000"}),  # unexpected_state
        raw(sandbox, "GET", "/v1/nothing_here"),
    ]
    with_key = [
        raw(
            sandbox,
            "POST",
            "/v1/payment_intents",
            {"amount": amount, "currency": "usd"},
            **{"Idempotency-Key": "same-key"},
        )
        for amount in ("1000", "2000")
    ]
    answers.append(with_key[1])  # idempotency_error
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 404, 401, 400, 400, 400, 404, 400]
    for answer in answers:
        assert_conforms(answer.json(), "error")
    assert answers[-1].json()["error"]["type"] == "idempotency_error"
    assert answers[8].json()["error"]["payment_intent"]["id"] == pi.id
