"""Faults as the SDK sees them: rate limits, lock timeouts, 500s, hangs, latency; the CLI."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import stripe

from tests.plugins.sandbox import make_client, wait_until

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[2]


def set_faults(sandbox, **faults):
    resp = requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5)
    resp.raise_for_status()
    return resp.json()


def stats(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/faults/stats", timeout=5).json()


def card_pi(client):
    return client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method_types": ["card"]}
    )


def test_rate_limit_is_429_rate_limit_error_not_retried_by_sdk(sandbox, stripe_client):
    set_faults(sandbox, rate_limit={"per_endpoint_rps": 3})
    with pytest.raises(stripe.RateLimitError) as exc:
        for _ in range(10):
            stripe_client.v1.payment_intents.list()
    # The SDK's RateLimitError has no .code: read it from .error, as the storefront must.
    assert exc.value.http_status == 429 and exc.value.error.code == "rate_limit"
    assert stats(sandbox)["rate_limit"] == 1  # the SDK did not retry it
    stripe_client.v1.events.list()  # buckets are per method + route


def test_lock_timeout_on_overlapping_writes(sandbox, stripe_client):
    pi = card_pi(stripe_client)
    set_faults(sandbox, lock_timeout=True, latency={"fixed_ms": 300})
    no_retry = make_client(sandbox, retries=0)
    slow = threading.Thread(target=lambda: no_retry.v1.payment_intents.update(pi.id, params={"metadata": {"a": "1"}}))
    slow.start()
    wait_until(lambda: stats(sandbox).get("latency", 0) >= 1)
    with pytest.raises(stripe.RateLimitError) as exc:
        no_retry.v1.payment_intents.update(pi.id, params={"metadata": {"b": "2"}})
    slow.join()
    assert exc.value.error.code == "lock_timeout" and exc.value.headers["Stripe-Should-Retry"] == "true"
    # With retries (as the storefront configures), the SDK retries the lock_timeout and succeeds.
    slow = threading.Thread(target=lambda: no_retry.v1.payment_intents.update(pi.id, params={"metadata": {"c": "3"}}))
    slow.start()
    wait_until(lambda: stats(sandbox).get("latency", 0) >= 2)
    updated = make_client(sandbox, retries=3).v1.payment_intents.update(pi.id, params={"metadata": {"d": "4"}})
    slow.join()
    assert updated.metadata.to_dict() == {"a": "1", "c": "3", "d": "4"}


def test_error_rate_500_is_retried_by_sdk_with_the_same_key(sandbox):
    set_faults(sandbox, error_rate=0.5, seed=3)
    client = make_client(sandbox, retries=8)
    for i in range(3):
        client.v1.payment_intents.create(params={"amount": 1000 + i, "currency": "usd"})
    assert stats(sandbox)["error"] >= 1
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["payment_intents"] == 3


def test_hang_gives_api_connection_error_but_the_write_happened(sandbox):
    set_faults(sandbox, hang_rate=1.0, hang_seconds=5)
    client = make_client(sandbox, timeout=0.3, retries=0)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "hang-1"}
        )
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)  # also ends the hang
    replay = make_client(sandbox).v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd"}, options={"idempotency_key": "hang-1"}
    )
    assert replay.last_response.headers.get("Idempotent-Replayed") == "true"


def test_latency_distributions(sandbox, stripe_client):
    set_faults(sandbox, latency={"fixed_ms": 100})
    start = time.monotonic()
    stripe_client.v1.payment_intents.list()
    assert time.monotonic() - start >= 0.1
    set_faults(sandbox, latency={"median_ms": 5, "p99_ms": 20})
    stripe_client.v1.payment_intents.list()
    set_faults(sandbox, latency={"min_ms": 1, "max_ms": 5})
    stripe_client.v1.payment_intents.list()
    assert stats(sandbox)["latency"] == 3


def test_faults_merge_clear_reset_and_reject_unknown(sandbox):
    assert set_faults(sandbox, error_rate=0.1)["faults"] == {"error_rate": 0.1}
    assert set_faults(sandbox, hang_rate=0.2)["faults"] == {"error_rate": 0.1, "hang_rate": 0.2}
    assert set_faults(sandbox, hang_rate=None)["faults"] == {"error_rate": 0.1}
    bad = requests.post(f"{sandbox.url}/_sandbox/faults", json={"nonsense": 1}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "nonsense"
    assert requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).json()["faults"] == {}
    set_faults(sandbox, error_rate=1.0)
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5)
    assert requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json()["faults"] == {}


def test_cli_starts_with_flags_and_env(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STRIPE_SANDBOX_SEPA_DELAY": "0.1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_sandbox",
            "--port",
            "0",
            "--quiet",
            "--secret-key",
            "sk_test_cli",
            "--webhook-url",
            "http://127.0.0.1:9/a",
            "--webhook-secret",
            "whsec_cli",
            "--faults",
            '{"latency": {"fixed_ms": 1}}',
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("stripe sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
        assert state["webhook_endpoints"] == 1 and state["settings"]["sepa_delay"] == 0.1
        assert requests.get(f"{url}/v1/events", auth=("sk_test_cli", ""), timeout=5).status_code == 200
        assert requests.get(f"{url}/_sandbox/faults", timeout=5).json()["faults"]["latency"] == {"fixed_ms": 1}
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_shim_is_served_with_its_selectors(sandbox):
    resp = requests.get(f"{sandbox.url}/v3/", timeout=5)
    assert resp.status_code == 200 and "javascript" in resp.headers["Content-Type"]
    for selector in (
        "sandbox-method-card",
        "sandbox-method-sepa",
        "sandbox-card-number",
        "sandbox-iban",
        "sandbox-3ds-complete",
        "sandbox-3ds-fail",
        "confirmPayment",
        "retrievePaymentIntent",
        "fetchUpdates",
    ):
        assert selector in resp.text
    assert requests.get(f"{sandbox.url}/v3", timeout=5).text == resp.text
