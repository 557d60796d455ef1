"""The PaymentIntent's client secret is never stored: the checkout answer reads it from Stripe, and pays."""

import flask_migrate
import pytest
from sqlalchemy import select

from storefront import MIGRATIONS
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


def test_the_release_that_stops_storing_secrets_erases_the_stored_ones_and_keeps_the_column(make_store):
    """Revision a7d3c5e9f1b4 empties carts.client_secret; the column stays one release longer, so processes of
    the previous release (which read it) keep working while the release's migration runs."""
    store = make_store(sandbox=None, STRIPE_API_BASE="http://127.0.0.1:9")
    cart = fill(store.client(), (1, 1))
    carts = db.metadata.tables["carts"]
    with store.app.app_context():
        flask_migrate.downgrade(directory=str(MIGRATIONS), revision="f3a9c2d71e08")
        db.session.execute(carts.update().where(carts.c.id == cart["id"]).values(client_secret="pi_1_secret_2"))
        db.session.commit()
        flask_migrate.upgrade(directory=str(MIGRATIONS))
        kept = db.session.execute(select(carts.c.client_secret).where(carts.c.id == cart["id"])).scalar_one()
        db.session.remove()
    assert kept is None
