"""API keys, publishable-key limits, CORS, and Idempotency-Key semantics."""

import threading

import pytest
import requests
import stripe

from tests.plugins.sandbox import make_client, wait_until

pytestmark = pytest.mark.timeout(30)


def new_pi(client):
    return client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "payment_method_types": ["card"], "metadata": {"k": "v"}}
    )


def test_wrong_or_missing_key_is_401(sandbox):
    with pytest.raises(stripe.AuthenticationError):
        make_client(sandbox, key="sk_test_wrong").v1.payment_intents.list()
    resp = requests.get(f"{sandbox.url}/v1/payment_intents", timeout=5)
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "invalid_request_error"


def test_basic_auth_with_secret_key(sandbox):
    resp = requests.get(f"{sandbox.url}/v1/payment_intents", auth=(sandbox.secret_key, ""), timeout=5)
    assert resp.status_code == 200 and resp.json()["object"] == "list"


def test_publishable_key_can_only_retrieve_and_confirm_with_client_secret(sandbox, stripe_client):
    pi = new_pi(stripe_client)
    public = make_client(sandbox, key=sandbox.publishable_key)
    with pytest.raises(stripe.AuthenticationError):
        public.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    with pytest.raises(stripe.AuthenticationError):
        public.v1.payment_intents.retrieve(pi.id)
    with pytest.raises(stripe.AuthenticationError):
        public.v1.payment_intents.update(pi.id, params={"amount": 1})
    with pytest.raises(stripe.AuthenticationError):
        public.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.id + "_secret_wrong"})
    seen = public.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.client_secret})
    assert seen.amount == 2000 and seen.status == "requires_payment_method"
    assert "metadata" not in seen and "amount_received" not in seen and "latest_charge" not in seen
    confirmed = public.v1.payment_intents.confirm(
        pi.id, params={"client_secret": pi.client_secret, "payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded" and "metadata" not in confirmed
    with pytest.raises(stripe.AuthenticationError):
        public.v1.payment_intents.cancel(pi.id)


def test_cors_preflight_and_headers(sandbox):
    origin = "http://127.0.0.1:5000"
    resp = requests.options(
        f"{sandbox.url}/v1/payment_intents/pi_x/confirm",
        timeout=5,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    resp = requests.get(f"{sandbox.url}/v1/payment_intents/pi_x", headers={"Origin": origin}, timeout=5)
    assert resp.status_code == 401 and resp.headers["Access-Control-Allow-Origin"] == origin


def raw_post(sandbox, path, data, key, api_key=None):
    return requests.post(
        f"{sandbox.url}{path}",
        data=data,
        timeout=5,
        headers={"Authorization": f"Bearer {api_key or sandbox.secret_key}", "Idempotency-Key": key},
    )


def test_same_key_same_params_replays(sandbox, stripe_client):
    params = {"amount": "1500", "currency": "usd"}
    first = raw_post(sandbox, "/v1/payment_intents", params, "k1")
    again = raw_post(sandbox, "/v1/payment_intents", params, "k1")
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(stripe_client.v1.payment_intents.list().data) == 1


def test_same_key_other_params_is_idempotency_error(stripe_client):
    stripe_client.v1.payment_intents.create(
        params={"amount": 1500, "currency": "usd"}, options={"idempotency_key": "k2"}
    )
    with pytest.raises(stripe.IdempotencyError) as exc:
        stripe_client.v1.payment_intents.create(
            params={"amount": 1600, "currency": "usd"}, options={"idempotency_key": "k2"}
        )
    assert exc.value.http_status == 400 and exc.value.error.type == "idempotency_error"


def test_card_error_is_replayed_but_validation_error_is_not(sandbox, stripe_client):
    pi = new_pi(stripe_client)
    path = f"/v1/payment_intents/{pi.id}/confirm"
    declined = raw_post(sandbox, path, {"payment_method": "pm_card_chargeDeclined"}, "k3")
    replay = raw_post(sandbox, path, {"payment_method": "pm_card_chargeDeclined"}, "k3")
    assert declined.status_code == replay.status_code == 402
    assert replay.headers.get("Idempotent-Replayed") == "true"
    bad = raw_post(sandbox, "/v1/payment_intents", {"amount": "x", "currency": "usd"}, "k4")
    fixed = raw_post(sandbox, "/v1/payment_intents", {"amount": "x", "currency": "usd"}, "k4")
    assert bad.status_code == fixed.status_code == 400 and "Idempotent-Replayed" not in fixed.headers


def test_keys_are_scoped_per_api_key_and_ignored_on_get(sandbox, stripe_client):
    pi = new_pi(stripe_client)
    data = {"client_secret": pi.client_secret, "payment_method": "pm_card_visa"}
    resp = raw_post(sandbox, f"/v1/payment_intents/{pi.id}/confirm", data, "shared", sandbox.publishable_key)
    assert resp.status_code == 200
    other = raw_post(sandbox, "/v1/payment_intents", {"amount": "900", "currency": "usd"}, "shared")
    assert other.status_code == 200 and other.json()["amount"] == 900
    for _ in range(2):
        got = requests.get(
            f"{sandbox.url}/v1/payment_intents/{pi.id}",
            timeout=5,
            headers={"Authorization": f"Bearer {sandbox.secret_key}", "Idempotency-Key": "shared"},
        )
        assert got.status_code == 200 and "Idempotent-Replayed" not in got.headers


def test_concurrent_same_key_gets_409_while_first_runs(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"latency": {"fixed_ms": 400}}, timeout=5)
    params = {"amount": "1500", "currency": "usd"}
    results = []
    first = threading.Thread(target=lambda: results.append(raw_post(sandbox, "/v1/payment_intents", params, "k5")))
    first.start()
    wait_until(
        lambda: requests.get(f"{sandbox.url}/_sandbox/faults/stats", timeout=5).json().get("latency"),
        message="first request executing",
    )
    conflict = raw_post(sandbox, "/v1/payment_intents", params, "k5")
    first.join()
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert results[0].status_code == 200
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    replay = raw_post(sandbox, "/v1/payment_intents", params, "k5")
    assert replay.json()["id"] == results[0].json()["id"]


def test_sdk_retry_reuses_the_key_after_a_500(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=5)
    client = make_client(sandbox, retries=0)
    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.create(params={"amount": 1500, "currency": "usd"})
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["payment_intents"] == 0
