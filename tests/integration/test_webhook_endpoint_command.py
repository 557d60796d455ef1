"""`flask --app storefront stripe-webhook-endpoint --url …` creates the store's endpoint at the pinned API
version for exactly the events the store handles, and the events then reach the store signed with its secret."""

import pytest
import stripe

from storefront.payments.gateway import API_VERSION
from storefront.webhooks.inbox import HANDLERS
from tests.integration.test_disputes import flagged, paid_order
from tests.integration.test_merchant import PASSWORD, Merchant

pytestmark = pytest.mark.timeout(90)


def create_endpoint(store, *args):
    return store.app.test_cli_runner().invoke(args=["stripe-webhook-endpoint", *args])


def test_the_pinned_version_is_the_sdks():
    assert API_VERSION == stripe.api_version


def test_the_command_creates_the_endpoint_at_the_pinned_version_with_the_handled_events(
    make_store, sandbox, stripe_client
):
    # A store whose endpoint the command makes: nothing is registered for it beforehand.
    store = make_store(sandbox=None, **_sandbox_settings(sandbox), ADMIN_PASSWORD=PASSWORD)
    store.sandbox = sandbox  # for the shopper's browser; its endpoint is the one made below
    url = f"{store.url}/webhooks/stripe"
    result = create_endpoint(store, "--url", url)
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("whsec_") and len(result.stdout.splitlines()) == 1  # the secret alone on stdout
    assert API_VERSION in result.stderr and "STRIPE_WEBHOOK_SECRET" in result.stderr

    endpoints = [e for e in stripe_client.v1.webhook_endpoints.list().data if e.url == url]
    assert len(endpoints) == 1
    endpoint = endpoints[0]
    try:
        assert endpoint.api_version == stripe.api_version
        assert sorted(endpoint.enabled_events) == sorted(HANDLERS)
        # A second run would make a second endpoint at the same URL: refused, nothing created.
        again = create_endpoint(store, "--url", url)
        assert again.exit_code == 1 and "already" in again.output
        assert len([e for e in stripe_client.v1.webhook_endpoints.list().data if e.url == url]) == 1

        # The store takes the secret as its STRIPE_WEBHOOK_SECRET: a dispute's event then reaches it.
        store.app.config["STRIPE_WEBHOOK_SECRET"] = secret
        order_id, _ = paid_order(store, "pm_card_createDispute")
        flagged(Merchant(store), order_id, "disputed")
    finally:
        stripe_client.v1.webhook_endpoints.delete(endpoint.id)


def test_the_command_says_what_stripe_refused(make_store, sandbox):
    store = make_store(sandbox=None, **_sandbox_settings(sandbox))
    result = create_endpoint(store, "--url", "ftp://shop.example/webhooks/stripe")
    assert result.exit_code == 1 and "Invalid URL" in result.output
    assert create_endpoint(store).exit_code == 2  # --url is required


def _sandbox_settings(sandbox):
    return {
        "STRIPE_SECRET_KEY": sandbox.secret_key,
        "STRIPE_PUBLISHABLE_KEY": sandbox.publishable_key,
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_JS_URL": f"{sandbox.url}/v3/",
    }
