"""The PaymentIntent's client secret is never stored: the checkout answer reads it from Stripe, and pays."""

import pytest
from sqlalchemy import inspect, select

from storefront.extensions import db
from tests.integration.test_merchant import DATABASES
from tests.shopping import browser_confirm, fill, order_status

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=DATABASES)
def shop(request, make_store, sandbox):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(sandbox=sandbox, database_url=url)


def stored_anywhere(store, secret):
    """Every (table, column) whose value contains `secret`, scanning every column of every table."""
    found = []
    with store.app.app_context():
        tables = db.metadata.sorted_tables
        for table in tables:
            for row in db.session.execute(select(table)).mappings():
                found += [(table.name, key) for key, value in row.items() if value is not None and secret in str(value)]
        db.session.remove()
    return found


def count_calls(store, name):
    """Count the gateway's calls of one method (the real one still runs)."""
    gateway, calls = store.app.extensions["gateway"], []
    method = getattr(gateway, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return method(*args, **kwargs)

    setattr(gateway, name, counted)
    return calls


def test_no_client_secret_is_kept_yet_every_checkout_answer_has_one_that_pays(shop):
    with shop.app.app_context():
        assert all("client_secret" not in {c["name"] for c in inspect(db.engine).get_columns(t)} for t in ["carts"])
        db.session.remove()
    created, retrieved = count_calls(shop, "create_payment_intent"), count_calls(shop, "retrieve")
    shopper = shop.client()
    cart = fill(shopper, (1, 2))
    first = shopper.post("/api/checkout").get_json()
    assert first["client_secret"].startswith(first["payment_intent_id"] + "_secret_")
    assert (len(created), len(retrieved)) == (1, 0)  # a new PaymentIntent's secret comes with Stripe's answer

    # The page opened again (a reload, another tab): Stripe is asked once for the same PaymentIntent's secret.
    again = shopper.post("/api/checkout").get_json()
    assert again == first
    assert (len(created), len(retrieved)) == (1, 1)
    assert stored_anywhere(shop, first["client_secret"]) == []
    assert stored_anywhere(shop, first["client_secret"].split("_secret_")[1]) == []

    handshake = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert handshake.status_code == 200, handshake.get_json()
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, again)[0] == 200
    order_status(shopper, handshake.get_json()["order_id"], "paid")
    assert stored_anywhere(shop, first["client_secret"].split("_secret_")[1]) == []


def test_a_checkout_page_opened_while_stripe_is_down_says_so_and_changes_nothing(shop):
    shopper = shop.client()
    fill(shopper, (1, 1))
    first = shopper.post("/api/checkout").get_json()
    gateway = shop.app.extensions["gateway"]
    real = gateway.retrieve

    def down(pi_id):
        from storefront.payments.gateway import GatewayUnavailable

        raise GatewayUnavailable("connection refused")

    gateway.retrieve = down
    answer = shopper.post("/api/checkout")
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "payment_unavailable"
    gateway.retrieve = real
    assert shopper.post("/api/checkout").get_json() == first
