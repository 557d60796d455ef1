"""A way out of every freeze: the shopper's cancel, a handshake the database broke, and reconciliation."""

import pytest
from sqlalchemy import create_engine, text

from storefront.checkout.cancel import release_unpaid_freeze
from storefront.checkout.service import release_expired_freeze
from storefront.extensions import db
from storefront.payments.gateway import AmountLocked
from storefront.payments.reconcile import reconcile
from storefront.wiring import current_shop
from tests.shopping import browser_confirm, control, fill, order_status, start_and_confirm

pytestmark = pytest.mark.timeout(90)

SEPA = {"payment_method_data[type]": "sepa_debit", "payment_method_data[sepa_debit][iban]": "AT611904300234573201"}


@pytest.fixture
def eur_store(make_store, sandbox):
    """A store selling in eur: SEPA Debit takes eur only, as on Stripe."""
    return make_store(sandbox=sandbox, CURRENCY="eur")


def cancel(client, **kwargs):
    return client.post("/api/checkout/cancel", **kwargs)


@pytest.mark.parametrize("paid_with", [None, "pm_card_authenticationRequired", "pm_card_chargeDeclined"])
def test_cancel_releases_a_freeze_no_money_moves_on(store, stripe_client, paid_with):
    cancel_releases_the_freeze(store, stripe_client, paid_with)


@pytest.mark.postgres
def test_cancel_releases_a_freeze_on_postgresql(make_store, sandbox, postgres_url, stripe_client):
    # SAWarnings are errors in the tests: a model read after a commit would open a transaction the
    # autocommit reads that follow warn about.
    store = make_store(sandbox=sandbox, database_url=postgres_url)
    cancel_releases_the_freeze(store, stripe_client, "pm_card_chargeDeclined")


def cancel_releases_the_freeze(store, stripe_client, paid_with):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 2))
    if paid_with:  # the shopper reloaded in the middle of 3-D Secure, or after a decline
        browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, payment_method=paid_with)
    tab = store.tab(shopper)
    tab.get_received()

    answer = cancel(shopper, json={})
    assert answer.status_code == 200, answer.get_json()
    reopened = answer.get_json()
    assert reopened["status"] == "open" and reopened["payment"] is None and reopened["items"] == cart["items"]
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "canceled"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "payment_failed"
    received = tab.get_received()
    assert any(e["args"][0]["status"] == "open" for e in received if e["name"] == "cart")
    assert {"id": order_id, "status": "payment_failed", "amount": cart["total"]} in [
        e["args"][0] for e in received if e["name"] == "order"
    ]

    again = shopper.post("/api/checkout").get_json()
    assert again["payment_intent_id"] != started["payment_intent_id"] and again["amount"] == cart["total"]


def test_cancel_is_refused_while_the_payment_is_processing(eur_store, stripe_client):
    store = eur_store
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, **SEPA)[0] == 200
    answer = cancel(shopper)
    assert answer.status_code == 409, answer.get_json()
    body = answer.get_json()
    assert body["error"]["code"] == "payment_in_flight" and body["cart"]["status"] == "frozen"
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "processing"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"


def test_cancel_of_a_paid_cart_is_refused_and_the_order_stays_paid(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    answer = cancel(shopper)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "payment_in_flight"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"


def test_cancel_on_an_open_cart_changes_nothing(store, stripe_client):
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    started = shopper.post("/api/checkout").get_json()
    answer = cancel(shopper)
    assert answer.status_code == 200 and answer.get_json()["version"] == cart["version"]
    assert answer.get_json()["payment"]["payment_intent_id"] == started["payment_intent_id"]
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "requires_payment_method"


def test_cancel_follows_the_json_and_cross_site_rules(store):
    shopper = store.client()
    start_and_confirm(shopper, (1, 1))
    assert cancel(shopper, data="x", content_type="text/plain").status_code == 400
    assert cancel(shopper, data="[1]", content_type="application/json").get_json()["error"]["code"] == "invalid_json"
    refused = cancel(shopper, json={}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert shopper.get("/api/cart").get_json()["status"] == "frozen"


def sql(url, *statements):
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


FAILING = (
    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
)


def lagging_handshake(store):
    """A cart whose PaymentIntent lags one version behind (Stripe refuses updates): the handshake must sync."""
    shopper = store.client()
    fill(shopper, (1, 1))
    assert shopper.post("/api/checkout").status_code == 200
    control(store.sandbox.url, "POST", "/faults", {"error_rate": 1.0})
    return shopper, fill(shopper, (2, 1))


@pytest.mark.postgres
def test_a_database_failure_half_way_through_the_handshake_leaves_no_freeze(make_store, sandbox, postgres_url):
    store = make_store(sandbox=sandbox, database_url=postgres_url)
    shopper, cart = lagging_handshake(store)
    # The database refuses the handshake's sync (a claim on the frozen cart), after the freeze committed.
    sql(
        postgres_url,
        FAILING,
        "CREATE TRIGGER refuse_sync BEFORE UPDATE ON carts FOR EACH ROW "
        "WHEN (OLD.status = 'frozen' AND NEW.sync_owner IS NOT NULL) EXECUTE FUNCTION refuse()",
    )
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    control(sandbox.url, "DELETE", "/faults")
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "store_unavailable"
    assert shopper.get("/api/cart").get_json()["status"] == "open"
    with store.app.app_context():
        statuses = db.session.execute(text("SELECT status FROM orders")).scalars().all()
        db.session.remove()
    assert statuses == ["payment_failed"]


@pytest.mark.postgres
def test_reconcile_releases_a_freeze_the_database_would_not_let_the_handshake_undo(make_store, sandbox, postgres_url):
    store = make_store(sandbox=sandbox, database_url=postgres_url)
    shopper, cart = lagging_handshake(store)
    # Every change of a frozen cart fails: the sync and the handshake's own undo.
    sql(
        postgres_url,
        FAILING,
        "CREATE TRIGGER refuse_frozen BEFORE UPDATE ON carts FOR EACH ROW "
        "WHEN (OLD.status = 'frozen') EXECUTE FUNCTION refuse()",
    )
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 503, answer.get_json()
    assert shopper.get("/api/cart").get_json()["status"] == "frozen"
    sql(postgres_url, "DROP TRIGGER refuse_frozen ON carts")
    control(sandbox.url, "DELETE", "/faults")

    with store.app.app_context():
        summary = reconcile(current_shop(), older_than_seconds=0)
        db.session.remove()
    assert summary["freezes_released"] == 1
    reopened = shopper.get("/api/cart").get_json()
    assert reopened["status"] == "open" and reopened["version"] == cart["version"]
    with store.app.app_context():
        assert db.session.execute(text("SELECT status FROM orders")).scalars().all() == ["payment_failed"]
        db.session.remove()
    assert shopper.post("/api/checkout").status_code == 200


def test_reconcile_keeps_a_freeze_whose_shopper_is_still_authenticating(make_store, sandbox):
    store = make_store(sandbox=sandbox)
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    browser_confirm(sandbox.url, sandbox.publishable_key, started, payment_method="pm_card_authenticationRequired")
    with store.app.app_context():
        reconcile(current_shop(), older_than_seconds=0)
        db.session.remove()
    assert shopper.get("/api/cart").get_json()["status"] == "frozen"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"


def test_a_cancel_that_loses_the_race_to_a_payment_is_refused_by_stripe(eur_store):
    store = eur_store
    shopper = store.client()
    _, started, _ = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, **SEPA)[0] == 200
    # What the cancel route meets when the payment starts between its look and its cancel.
    with pytest.raises(AmountLocked) as refused:
        store.app.extensions["gateway"].cancel(started["payment_intent_id"])
    assert refused.value.payment_intent.status == "processing"


def confirming_after_the_look(store, started, **payment):
    """The shopper's wallet sheet confirms the payment right after the store's look at the PaymentIntent."""
    gateway, confirmed = store.app.extensions["gateway"], []
    real = gateway.retrieve

    def retrieve(pi_id):
        pi = real(pi_id)
        if pi_id == started["payment_intent_id"] and not confirmed:
            confirmed.append(browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, **payment)[0])
        return pi

    gateway.retrieve = retrieve
    return confirmed


def test_reconcile_does_not_release_a_freeze_the_shopper_pays_meanwhile(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 1))
    confirmed = confirming_after_the_look(store, started)
    with store.app.app_context():
        shop = current_shop()
        released = release_unpaid_freeze(shop, cart["id"], shop.now())
        db.session.remove()
    assert confirmed == [200] and released is False
    order = shopper.get(f"/api/orders/{order_id}").get_json()
    assert (order["status"], order["amount_received"]) == ("paid", cart["total"])


def test_an_expired_freeze_the_shopper_pays_meanwhile_stays_frozen(make_store, sandbox):
    control(sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    store = make_store(sandbox=sandbox, FREEZE_SECONDS=0)
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 1))
    confirmed = confirming_after_the_look(store, started)
    with store.app.app_context():  # the background sweep's release of a freeze past its time limit
        released = release_expired_freeze(current_shop(), cart["id"])
        db.session.remove()
    assert confirmed == [200] and released is False
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"
    assert shopper.get("/api/cart").get_json()["items"] == []  # the paid lines left


def test_a_payment_intent_stripe_forgot_frees_its_cart(store, stripe_client):
    shoppers = [store.client() for _ in range(2)]
    handshakes = [start_and_confirm(shopper, (1, 1)) for shopper in shoppers]
    control(store.sandbox.url, "POST", "/reset")  # the demo's in-memory sandbox restarted; the database stayed

    answer = cancel(shoppers[0])  # the shopper's way out
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "open" and answer.get_json()["payment"] is None
    with store.app.app_context():  # and reconciliation's, for the shopper who left
        summary = reconcile(current_shop(), older_than_seconds=0)
        db.session.remove()
    assert summary["freezes_released"] == 1
    for shopper, (cart, started, order_id) in zip(shoppers, handshakes, strict=True):
        assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "payment_failed"
        again = shopper.post("/api/checkout")
        assert again.status_code == 200, again.get_json()
        assert again.get_json()["payment_intent_id"] != started["payment_intent_id"]
        assert stripe_client.v1.payment_intents.retrieve(again.get_json()["payment_intent_id"]).amount == cart["total"]


def test_a_cancel_refused_while_processing_does_not_refuse_the_next_freezes_cancel(eur_store, stripe_client):
    store = eur_store
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (1, 1))
    failing_debit = {**SEPA, "payment_method_data[sepa_debit][iban]": "AT861904300235473202"}
    confirmed = confirming_after_the_look(store, started, **failing_debit)
    assert cancel(shopper).status_code == 409  # the debit started after our look: Stripe refuses the cancel
    assert confirmed == [200]
    order_status(shopper, order_id, "payment_failed")  # the debit failed: the cart is open again

    again = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert again.status_code == 200, again.get_json()
    answer = cancel(shopper)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "open"
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "canceled"
