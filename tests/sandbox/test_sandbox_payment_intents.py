"""PaymentIntents through the official SDK: fields, status machine, errors."""

import pytest
import requests
import stripe

pytestmark = pytest.mark.timeout(30)

CARD_ONLY = {"payment_method_types": ["card"]}


def create(client, amount=10000, **params):
    return client.v1.payment_intents.create(params={"amount": amount, "currency": "usd", **params})


def test_create_has_stripe_fields(stripe_client):
    pi = create(stripe_client, metadata={"cart_id": "c1", "cart_version": "3"})
    assert pi.id.startswith("pi_") and pi.object == "payment_intent"
    assert pi.client_secret.startswith(pi.id + "_secret_")
    assert (pi.amount, pi.amount_received, pi.amount_capturable) == (10000, 0, 0)
    assert pi.status == "requires_payment_method" and pi.livemode is False
    assert pi.metadata.to_dict() == {"cart_id": "c1", "cart_version": "3"}
    assert pi.automatic_payment_methods.enabled is True
    assert pi.capture_method == "automatic_async"
    assert pi.latest_charge is None and pi.last_payment_error is None
    assert stripe_client.v1.payment_intents.retrieve(pi.id).amount == 10000


def test_server_side_confirm_succeeds_and_creates_charge(stripe_client):
    pi = create(stripe_client, **CARD_ONLY)
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded" and pi.amount_received == 10000
    assert pi.payment_method.startswith("pm_") and pi.payment_method != "pm_card_visa"
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.paid and charge.captured and charge.amount == 10000
    assert charge.payment_intent == pi.id and charge.payment_method_details.card.last4 == "4242"


def test_create_and_confirm_in_one_call(stripe_client):
    pi = create(stripe_client, confirm=True, payment_method="pm_card_visa", return_url="http://shop/ret")
    assert pi.status == "succeeded"


def test_automatic_payment_methods_need_return_url_to_confirm(stripe_client):
    pi = create(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert exc.value.param == "return_url"


def test_amount_update_allowed_before_payment_only(stripe_client):
    pi = create(stripe_client, **CARD_ONLY)
    pi = stripe_client.v1.payment_intents.update(pi.id, params={"amount": 20000})
    assert pi.amount == 20000
    stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.update(pi.id, params={"amount": 30000})
    err = exc.value
    assert err.http_status == 400 and err.code == "payment_intent_unexpected_state"
    assert err.param == "amount" and "status of succeeded" in err.user_message
    assert err.error.type == "invalid_request_error"
    assert err.error.payment_intent.id == pi.id and err.error.payment_intent.amount == 20000


def test_metadata_merges_in_any_status(stripe_client):
    pi = create(stripe_client, metadata={"a": "1", "b": "2"}, **CARD_ONLY)
    stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    pi = stripe_client.v1.payment_intents.update(pi.id, params={"metadata": {"b": "", "c": "3"}})
    assert pi.metadata.to_dict() == {"a": "1", "c": "3"}
    assert pi.status == "succeeded"


def test_confirm_cancel_capture_in_wrong_status(stripe_client):
    pi = create(stripe_client, **CARD_ONLY)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.capture(pi.id)
    assert exc.value.code == "payment_intent_unexpected_state"
    stripe_client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "abandoned"})
    for call in (stripe_client.v1.payment_intents.cancel, stripe_client.v1.payment_intents.confirm):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            call(pi.id)
        assert exc.value.code == "payment_intent_unexpected_state"
        assert exc.value.error.payment_intent.status == "canceled"


def test_cancel_sets_reason_and_time(stripe_client):
    pi = create(stripe_client)
    pi = stripe_client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "duplicate"})
    assert pi.status == "canceled" and pi.cancellation_reason == "duplicate" and pi.canceled_at


def test_manual_capture_partial_and_over_capture(stripe_client):
    pi = create(stripe_client, capture_method="manual", **CARD_ONLY)
    pi = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "requires_capture" and pi.amount_capturable == 10000
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 10001})
    assert exc.value.code == "amount_too_large" and exc.value.param == "amount_to_capture"
    pi = stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 6000})
    assert (pi.status, pi.amount_received, pi.amount_capturable) == ("succeeded", 6000, 0)


def test_list_newest_first_with_pagination(stripe_client):
    ids = [create(stripe_client, amount=1000 + i).id for i in range(3)]
    page = stripe_client.v1.payment_intents.list(params={"limit": 2})
    assert [p.id for p in page.data] == [ids[2], ids[1]] and page.has_more
    rest = stripe_client.v1.payment_intents.list(params={"limit": 2, "starting_after": ids[1]})
    assert [p.id for p in rest.data] == [ids[0]] and not rest.has_more


@pytest.mark.parametrize(
    "params, code, param",
    [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": "ten", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 1000}, "parameter_missing", "currency"),
        ({"amount": 10, "currency": "usd"}, "amount_too_small", "amount"),
        ({"amount": 1000, "currency": "usd", "bogus": "1"}, "parameter_unknown", "bogus"),
    ],
)
def test_bad_params_are_400_naming_the_param(stripe_client, params, code, param):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.create(params=params)
    assert (exc.value.http_status, exc.value.code, exc.value.param) == (400, code, param)


def test_unknown_id_is_404_resource_missing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.payment_intents.retrieve("pi_nope")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
    assert "No such payment_intent: 'pi_nope'" in exc.value.user_message


def test_every_answer_has_a_request_id_and_no_traceback(sandbox):
    auth = {"Authorization": f"Bearer {sandbox.secret_key}"}
    resp = requests.post(
        f"{sandbox.url}/v1/payment_intents",
        data="amount[x]=1&currency=usd",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert resp.status_code == 400 and resp.headers["Request-Id"].startswith("req_")
    assert resp.json()["error"]["param"] == "amount"
    resp = requests.get(f"{sandbox.url}/v1/unknown", headers=auth, timeout=5)
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "invalid_request_error"
