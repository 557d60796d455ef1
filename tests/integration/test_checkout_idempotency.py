"""Idempotency that holds per store and per attempt, and every payment this store created ends somewhere."""

import pytest
import stripe
from sqlalchemy import select, update

from storefront.extensions import db
from storefront.models import Cart, Order, PaymentAttempt, Product, WebhookEvent, utcnow
from storefront.payments.reconcile import reconcile
from storefront.wiring import current_shop
from tests.conftest import wait_for
from tests.shopping import browser_confirm, control, fill, order_status, process_inbox_later, start_and_confirm

pytestmark = pytest.mark.timeout(90)


def reconcile_now(store):
    with store.app.app_context():
        try:
            return reconcile(current_shop(), older_than_seconds=0)
        finally:
            db.session.remove()


def test_a_lost_create_answer_then_a_cart_change_still_checks_out(make_store, sandbox, stripe_client):
    store = make_store(sandbox=sandbox, STRIPE_TIMEOUT=0.5, STRIPE_MAX_RETRIES=1)
    shopper = store.client()
    fill(shopper, (1, 1))
    # Stripe creates the PaymentIntent and saves the answer, but the answer never reaches the store.
    control(sandbox.url, "POST", "/faults", {"hang_rate": 1.0, "hang_seconds": 60})
    lost = shopper.post("/api/checkout")
    assert lost.status_code == 503, lost.get_json()
    control(sandbox.url, "DELETE", "/faults")
    assert len(stripe_client.v1.payment_intents.list().data) == 1

    cart = fill(shopper, (2, 1))  # the cart changes before the shopper tries again
    started = shopper.post("/api/checkout")
    assert started.status_code == 200, started.get_json()
    started = started.get_json()
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 200, answer.get_json()
    assert browser_confirm(sandbox.url, sandbox.publishable_key, started)[0] == 200
    order = order_status(shopper, answer.get_json()["order_id"], "paid")
    assert order["amount_received"] == cart["total"]
    # The lost PaymentIntent was found again, not left behind beside a second one.
    assert [pi.id for pi in stripe_client.v1.payment_intents.list().data] == [started["payment_intent_id"]]


def test_two_stores_on_one_stripe_account_each_get_their_own_payment_intent(
    make_store, sandbox, tmp_path, stripe_client
):
    stores = [make_store(sandbox=sandbox, database_url=f"sqlite:///{tmp_path / name}.sqlite3") for name in "ab"]
    shoppers = [store.client() for store in stores]
    handshakes = [start_and_confirm(shopper, (1, 1)) for shopper in shoppers]  # cart 1 twice, the same amount
    assert [cart["id"] for cart, _, _ in handshakes] == [1, 1]
    pi_ids = [started["payment_intent_id"] for _, started, _ in handshakes]
    assert pi_ids[0] != pi_ids[1]
    for shopper, (_, started, order_id) in zip(shoppers, handshakes, strict=True):
        assert browser_confirm(sandbox.url, sandbox.publishable_key, started)[0] == 200
        assert order_status(shopper, order_id, "paid")["payment_intent_id"] == started["payment_intent_id"]
    owners = [stripe_client.v1.payment_intents.retrieve(pi_id).metadata["store_id"] for pi_id in pi_ids]
    assert owners == [store.app.extensions["gateway"].store_id for store in stores] and owners[0] != owners[1]


@pytest.mark.parametrize("handshake", [True, False])
def test_a_payment_whose_metadata_was_changed_to_another_cart_is_flagged_by_reconcile(store, stripe_client, handshake):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    other = store.client()
    other_cart = fill(other, (3, 1))
    shopper = store.client()
    if handshake:
        cart, started, order_id = start_and_confirm(shopper, (1, 2))
    else:  # the browser paid without the handshake: no order exists until the payment is applied
        cart = fill(shopper, (1, 2))
        started, order_id = shopper.post("/api/checkout").get_json(), None
    pi_id = started["payment_intent_id"]
    stripe_client.v1.payment_intents.update(pi_id, params={"metadata": {"cart_id": str(other_cart["id"])}})
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200

    reconcile_now(store)
    with store.app.app_context():
        orders = db.session.scalars(select(Order).where(Order.payment_intent_id == pi_id)).all()
        found = [(o.id, o.cart_id, o.status, o.amount, o.amount_received) for o in orders]
        db.session.remove()
    assert found == [(order_id or found[0][0], cart["id"], "needs_review", cart["total"], cart["total"])]
    assert other.get("/api/cart").get_json()["items"] == other_cart["items"]  # the other cart is untouched
    assert shopper.get("/api/cart").get_json()["items"] == []  # the paid lines left the shopper's cart
    assert stripe_client.v1.refunds.list(params={"payment_intent": pi_id}).data == []


def test_a_payment_of_ours_that_no_cart_can_take_is_refunded_by_reconcile(store, stripe_client):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    started = shopper.post("/api/checkout").get_json()
    pi_id = started["payment_intent_id"]
    # The store's record of the attempt is gone (a database restored from an older backup) and the
    # metadata names a cart that does not exist: only `store_id` says it is ours.
    with store.app.app_context():
        db.session.execute(PaymentAttempt.__table__.delete())
        db.session.commit()
        db.session.remove()
    stripe_client.v1.payment_intents.update(pi_id, params={"metadata": {"cart_id": "6100"}})
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200

    reconcile_now(store)
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": pi_id}).data
    assert [r.amount for r in refunds] == [cart["total"]]
    reconcile_now(store)  # a second pass refunds nothing more
    assert len(stripe_client.v1.refunds.list(params={"payment_intent": pi_id}).data) == 1


def test_a_create_is_recorded_before_stripe_is_asked(store):
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    control(store.sandbox.url, "POST", "/faults", {"error_rate": 1.0})
    assert shopper.post("/api/checkout").status_code == 503
    with store.app.app_context():
        attempt = db.session.scalars(select(PaymentAttempt)).one()
        assert (attempt.cart_id, attempt.cart_version, attempt.status) == (cart["id"], cart["version"], "pending")
        db.session.remove()


def failing_once(store, name):
    """The store's gateway call `name`, whose first call meets a Stripe answering 500s (the calls are recorded)."""
    gateway, url = store.app.extensions["gateway"], store.sandbox.url
    real, calls = getattr(gateway, name), []

    def call(*args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            return real(*args, **kwargs)
        control(url, "POST", "/faults", {"error_rate": 1.0})
        try:
            return real(*args, **kwargs)
        finally:
            control(url, "POST", "/faults", {"error_rate": None})

    setattr(gateway, name, call)
    return calls


def unmatched_payment(store, stripe_client):
    """A payment of ours whose metadata and records name a cart that does not exist; (cart, PaymentIntent id)."""
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    started = shopper.post("/api/checkout").get_json()
    pi_id = started["payment_intent_id"]
    with store.app.app_context():
        db.session.execute(PaymentAttempt.__table__.update().values(cart_id=6100))
        db.session.commit()
        db.session.remove()
    stripe_client.v1.payment_intents.update(pi_id, params={"metadata": {"cart_id": "6100"}})
    return shopper, cart, started


def refunded(stripe_client, pi_id):
    return [r.amount for r in stripe_client.v1.refunds.list(params={"payment_intent": pi_id}).data]


def attempt_status(store, pi_id):
    with store.app.app_context():
        try:
            query = select(PaymentAttempt.status).where(PaymentAttempt.payment_intent_id == pi_id)
            return db.session.scalars(query).one()
        finally:
            db.session.remove()


def test_a_refund_of_an_unmatched_payment_that_stripe_fails_is_retried_from_the_inbox(store, stripe_client):
    _, cart, started = unmatched_payment(store, stripe_client)
    calls = failing_once(store, "refund")
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200

    # The first try's refund fails: the event was acknowledged all the same, and the inbox tries it again.
    def done():
        try:
            return refunded(stripe_client, started["payment_intent_id"]) == [cart["total"]]
        except stripe.APIError:  # asked while the store's refund met the injected failure
            return False

    wait_for(lambda: calls and process_inbox_later(store, 3600) >= 0 and done(), message="the retry to refund it")
    assert len(calls) == 2
    deliveries = control(store.sandbox.url, "GET", "/deliveries")["data"]
    assert {d["status_code"] for d in deliveries} == {200}


def test_a_refund_of_an_unmatched_payment_that_stripe_fails_is_retried_by_the_next_pass(store, stripe_client):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    _, cart, started = unmatched_payment(store, stripe_client)
    pi_id = started["payment_intent_id"]
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    failing_once(store, "refund")
    first = reconcile_now(store)
    # The event's refund failed (counted) and the pass went on: its sweep of this store's PaymentIntents
    # (a cart still holds this one) asked again and refunded, once.
    assert first["errors"] >= 1 and refunded(stripe_client, pi_id) == [cart["total"]]
    assert attempt_status(store, pi_id) == "refunded"
    second = reconcile_now(store)  # the event left unprocessed is processed later: nothing refunded twice
    assert second["errors"] == 0 and refunded(stripe_client, pi_id) == [cart["total"]]
    assert attempt_status(store, pi_id) == "refunded"


def test_a_payment_already_refunded_at_stripe_counts_as_refunded(store, stripe_client):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    _, cart, started = unmatched_payment(store, stripe_client)
    pi_id = started["payment_intent_id"]
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    stripe_client.v1.refunds.create(params={"payment_intent": pi_id})  # the merchant refunded it by hand
    assert reconcile_now(store)["errors"] == 0
    assert attempt_status(store, pi_id) == "refunded"
    assert reconcile_now(store)["payments_swept"] == 0  # nothing left to ask Stripe about
    assert refunded(stripe_client, pi_id) == [cart["total"]]


def acknowledge_every_event(store, stripe_client):
    """As if another deployment had acknowledged every event so far and done nothing with them."""
    with store.app.app_context():
        for event in stripe_client.v1.events.list(params={"limit": 100}).data:
            db.session.merge(WebhookEvent(id=event.id, type=event.type, processed_at=utcnow()))
        db.session.commit()
        db.session.remove()


def forget_payment_intent(store, cart_id):
    with store.app.app_context():
        db.session.execute(
            update(Cart)
            .where(Cart.id == cart_id)
            .values(payment_intent_id=None, pi_status=None, pi_amount=None, pi_version=None)
        )
        db.session.commit()
        db.session.remove()


def test_a_payment_whose_event_did_nothing_still_ends_in_an_order(store, stripe_client):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    cart = fill(shopper, (1, 2))
    started = shopper.post("/api/checkout").get_json()
    forget_payment_intent(store, cart["id"])  # no cart holds it any more; a stale tab still can pay it
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    acknowledge_every_event(store, stripe_client)

    summary = reconcile_now(store)
    assert (summary["payments_swept"], summary["errors"]) == (1, 0)
    with store.app.app_context():
        orders = db.session.scalars(select(Order).where(Order.payment_intent_id == started["payment_intent_id"])).all()
        found = [(o.cart_id, o.status, o.amount_received) for o in orders]
        db.session.remove()
    assert found == [(cart["id"], "paid", cart["total"])]
    assert reconcile_now(store)["payments_swept"] == 0


def test_the_sweep_cancels_payment_intents_no_cart_holds_oldest_first_a_few_a_pass(store, stripe_client):
    shoppers = [store.client() for _ in range(2)]
    carts = [fill(shopper, (1, 1)) for shopper in shoppers]
    started = [shopper.post("/api/checkout").get_json() for shopper in shoppers]
    for cart in carts:
        forget_payment_intent(store, cart["id"])  # e.g. abandoned carts cleaned up
    statuses = lambda: [stripe_client.v1.payment_intents.retrieve(s["payment_intent_id"]).status for s in started]  # noqa: E731

    with store.app.app_context():
        first = reconcile(current_shop(), older_than_seconds=0, sweep_limit=1)
        db.session.remove()
    assert first["payments_swept"] == 1 and statuses() == ["canceled", "requires_payment_method"]
    assert reconcile_now(store)["payments_swept"] == 1 and statuses() == ["canceled", "canceled"]
    assert reconcile_now(store)["payments_swept"] == 0
    assert [attempt_status(store, s["payment_intent_id"]) for s in started] == ["canceled", "canceled"]


def test_a_cart_stripe_refuses_gets_a_clear_error_and_checks_out_once_it_changes(store):
    with store.app.app_context():
        db.session.execute(update(Product).where(Product.id == 1).values(unit_amount=10))  # below Stripe's $0.50
        db.session.commit()
        db.session.remove()
    shopper = store.client()
    fill(shopper, (1, 1))
    refused = shopper.post("/api/checkout")
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["error"]["code"] == "payment_refused"
    assert "at least" in refused.get_json()["error"]["message"]
    cart = fill(shopper, (1, 9))
    started = shopper.post("/api/checkout")
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["amount"] == cart["total"] == 100
