"""Payment paths end to end: the storefront, the sandbox over HTTP, and webhooks signed as Stripe signs."""

import pytest

from tests.conftest import wait_for
from tests.shopping import browser_confirm, control, fill, order_status, pushed, sign, start_and_confirm, synced

pytestmark = pytest.mark.timeout(60)

A, B, C = 1, 2, 3


def checkout(client):
    answer = client.post("/api/checkout")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def confirm(client, version):
    return client.post("/api/checkout/confirm", json={"cart_version": version})


def test_seed_story_second_tab_adds_items_and_the_payment_charges_the_new_total(store, stripe_client):
    shopper = store.client()
    cart = fill(shopper, (A, 10))
    started = checkout(shopper)
    assert started["amount"] == cart["total"] and started["cart_version"] == cart["version"]
    assert started["publishable_key"] == store.sandbox.publishable_key
    tab1, tab2 = store.tab(shopper), store.tab(shopper)
    tab1.get_received()

    cart = fill(shopper, (B, 10))  # "tab 2" adds items
    first = pushed(tab1, "cart")
    assert first and first[0]["version"] == cart["version"] and first[0]["total"] == cart["total"]
    cart = synced(shopper)
    pi = stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"])
    assert pi.amount == cart["total"] and pi.metadata["cart_version"] == str(cart["version"])
    assert any(p["payment"]["amount"] == cart["total"] for p in pushed(tab1, "cart") + first if p["payment"])

    answer = confirm(shopper, cart["version"])
    assert answer.status_code == 200, answer.get_json()
    order_id = answer.get_json()["order_id"]
    assert answer.get_json()["amount"] == cart["total"]
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"

    status, paid = browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)
    assert status == 200, paid
    assert paid["status"] == "succeeded" and paid["amount"] == cart["total"]
    order = order_status(shopper, order_id, "paid")
    assert order["amount_received"] == cart["total"] == order["amount"]
    assert {(i["product_id"], i["quantity"]) for i in order["items"]} == {(A, 10), (B, 10)}
    after = shopper.get("/api/cart").get_json()
    assert after["items"] == [] and after["status"] == "open" and after["payment"] is None
    wait_for(lambda: any(o["status"] == "paid" for o in pushed(tab2, "order")), message="order push")


def test_a_stale_handshake_is_answered_with_the_fresh_cart(store):
    shopper = store.client()
    fill(shopper, (A, 1))
    started = checkout(shopper)
    cart = fill(shopper, (B, 1))
    answer = confirm(shopper, started["cart_version"])
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"]["code"] == "cart_changed" and body["cart"]["version"] == cart["version"]
    assert shopper.get("/api/cart").get_json()["status"] == "open"


def test_the_handshake_freezes_the_cart_and_every_tab_is_told(store):
    shopper = store.client()
    cart = fill(shopper, (A, 2))
    checkout(shopper)
    tab = store.tab(shopper)
    tab.get_received()
    assert confirm(shopper, cart["version"]).status_code == 200
    assert any(p["status"] == "frozen" for p in pushed(tab, "cart"))
    refused = shopper.post("/api/cart/items", json={"product_id": B, "quantity": 1})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "checkout_in_progress"
    again = confirm(shopper, cart["version"])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "checkout_in_progress"


def test_a_declined_card_unfreezes_the_cart_and_fails_the_order(store):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    status, body = browser_confirm(
        store.sandbox.url, store.sandbox.publishable_key, started, payment_method="pm_card_chargeDeclined"
    )
    assert status == 402 and body["error"]["code"] == "card_declined"
    order_status(shopper, order_id, "payment_failed")
    wait_for(lambda: shopper.get("/api/cart").get_json()["status"] == "open", message="cart to reopen")
    assert shopper.post("/api/cart/items", json={"product_id": B, "quantity": 1}).status_code == 200


def decline(store, shopper, started, order_id):
    """Pay with a declined card and wait until the order failed and the cart is open again."""
    browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, payment_method="pm_card_chargeDeclined")
    order_status(shopper, order_id, "payment_failed")
    wait_for(lambda: shopper.get("/api/cart").get_json()["status"] == "open", message="cart to reopen")


def test_paying_again_after_a_decline_pays_the_same_order(store):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    decline(store, shopper, started, order_id)
    retry = confirm(shopper, cart["version"])
    assert retry.status_code == 200 and retry.get_json()["order_id"] == order_id
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    assert order_status(shopper, order_id, "paid")["amount_received"] == cart["total"]


@pytest.mark.parametrize(
    "outcome,final,cart_status", [("complete", "paid", "open"), ("fail", "payment_failed", "open")]
)
def test_three_d_secure(store, outcome, final, cart_status):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    status, pi = browser_confirm(
        store.sandbox.url, store.sandbox.publishable_key, started, payment_method="pm_card_authenticationRequired"
    )
    assert status == 200 and pi["status"] == "requires_action"
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"
    control(
        store.sandbox.url,
        "POST",
        f"/payment_intents/{started['payment_intent_id']}/authenticate",
        {"outcome": outcome, "client_secret": started["client_secret"]},
    )
    order_status(shopper, order_id, final)
    wait_for(lambda: shopper.get("/api/cart").get_json()["status"] == cart_status, message="cart status")


@pytest.mark.parametrize("iban,final", [("AT611904300234573201", "paid"), ("AT861904300235473202", "payment_failed")])
def test_sepa_stays_processing_until_it_settles(make_store, sandbox, iban, final):
    store = make_store(sandbox=sandbox, CURRENCY="eur")  # SEPA Debit takes eur only, as on Stripe
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    status, pi = browser_confirm(
        store.sandbox.url,
        store.sandbox.publishable_key,
        started,
        **{"payment_method_data[type]": "sepa_debit", "payment_method_data[sepa_debit][iban]": iban},
    )
    assert status == 200 and pi["status"] == "processing"
    wait_for(
        lambda: shopper.get("/api/cart").get_json()["payment"]["status"] == "processing",
        message="processing to be seen",
    )
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"
    refused = shopper.post("/api/cart/items", json={"product_id": B, "quantity": 1})
    assert refused.status_code == 409
    control(store.sandbox.url, "POST", f"/payment_intents/{started['payment_intent_id']}/settle")
    order_status(shopper, order_id, final)
    wait_for(lambda: shopper.get("/api/cart").get_json()["status"] == "open", message="cart to reopen")


def test_payment_without_handshake_becomes_the_snapshot_it_paid(store):
    shopper = store.client()
    fill(shopper, (A, 2))
    started = checkout(shopper)
    cart = fill(shopper, (B, 1))
    cart = synced(shopper)
    status, pi = browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)  # hostile JS: no handshake
    assert status == 200 and pi["status"] == "succeeded" and pi["amount"] == cart["total"]
    late = shopper.post("/api/cart/items", json={"product_id": C, "quantity": 3})
    assert late.status_code == 200

    def paid_order():
        after = shopper.get("/api/cart").get_json()
        return after if after["payment"] is None and after["items"] else None

    after = wait_for(paid_order, message="the paid snapshot to leave the cart")
    assert [(i["product_id"], i["quantity"]) for i in after["items"]] == [(C, 3)]
    order = _orders_of(store, pi["id"])[0]
    assert order.status == "paid" and order.amount == cart["total"] == order.amount_received
    assert {(i["product_id"], i["quantity"]) for i in order.items} == {(A, 2), (B, 1)}


def _orders_of(store, pi_id):
    from storefront.extensions import db
    from storefront.models import Order

    with store.app.app_context():
        orders = db.session.query(Order).filter_by(payment_intent_id=pi_id).all()
        db.session.expunge_all()
        return orders


def test_duplicated_and_reordered_webhooks_make_exactly_one_order(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_duplicate_rate": 1.0, "webhook_reorder": True})
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 3))
    decline(store, shopper, started, order_id)
    assert confirm(shopper, cart["version"]).status_code == 200
    browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)
    order_status(shopper, order_id, "paid")

    def all_delivered():
        deliveries = control(store.sandbox.url, "GET", "/deliveries")["data"]
        return deliveries if len({d["event_id"] for d in deliveries}) >= 3 else None

    wait_for(all_delivered, message="deliveries")
    orders = _orders_of(store, started["payment_intent_id"])
    assert [o.status for o in orders] == ["paid"]
    assert shopper.get("/api/cart").get_json()["items"] == []


def test_a_lost_webhook_is_found_by_reconcile(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"
    result = store.app.test_cli_runner().invoke(args=["reconcile", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"
    assert shopper.get("/api/cart").get_json()["items"] == []


def test_a_lost_webhook_for_a_payment_without_handshake_is_found_by_reconcile(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    fill(shopper, (A, 1))
    started = checkout(shopper)
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    assert store.app.test_cli_runner().invoke(args=["reconcile", "--older-than", "0"]).exit_code == 0
    assert [o.status for o in _orders_of(store, started["payment_intent_id"])] == ["paid"]


def test_an_amount_that_is_not_the_order_total_is_reviewed_and_the_excess_refunded(store, stripe_client):
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    # Someone outside the storefront raises the amount after the handshake.
    stripe_client.v1.payment_intents.update(started["payment_intent_id"], params={"amount": cart["total"] + 500})
    browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)
    order = order_status(shopper, order_id, "needs_review")
    assert order["amount_received"] == cart["total"] + 500
    refunds = wait_for(
        lambda: stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]}).data,
        message="the excess refund",
    )
    assert [r.amount for r in refunds] == [500]
    wait_for(
        lambda: shopper.get(f"/api/orders/{order_id}").get_json()["amount_refunded"] == 500,
        message="the refund to be recorded",
    )


def test_pushes_do_not_wait_for_stripe(store):
    shopper = store.client()
    fill(shopper, (A, 1))
    checkout(shopper)
    tab = store.tab(shopper)
    tab.get_received()
    control(store.sandbox.url, "POST", "/faults", {"latency": {"fixed_ms": 800}})
    cart = fill(shopper, (B, 1))
    first = pushed(tab, "cart")
    assert first[0]["version"] == cart["version"] and first[0]["payment"]["amount"] != cart["total"]
    synced(shopper)
    assert any(p["payment"]["amount"] == cart["total"] for p in pushed(tab, "cart"))


def test_a_burst_of_changes_is_coalesced_into_few_updates(store):
    gateway = store.app.extensions["gateway"]
    calls = []
    real = gateway.set_amount

    def counting(*args, **kwargs):
        calls.append(kwargs["version"])
        return real(*args, **kwargs)

    gateway.set_amount = counting
    control(store.sandbox.url, "POST", "/faults", {"latency": {"fixed_ms": 200}})
    shopper = store.client()
    fill(shopper, (A, 1))
    checkout(shopper)
    for _ in range(20):
        fill(shopper, (B, 1))
    cart = synced(shopper)
    assert calls[-1] == cart["version"]
    assert len(calls) <= 5, calls
    assert calls == sorted(calls)


def test_a_payment_intent_that_merely_names_our_cart_is_ignored(store, stripe_client):
    shopper = store.client()
    cart = fill(shopper, (A, 1))
    foreign = stripe_client.v1.payment_intents.create(
        params={
            "amount": cart["total"] + 100,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "payment_method_types": ["card"],
            "metadata": {"cart_id": str(cart["id"]), "cart_version": str(cart["version"])},
        }
    )
    assert foreign.status == "succeeded"

    def delivered():
        return [d for d in control(store.sandbox.url, "GET", "/deliveries")["data"] if d.get("status_code") == 200]

    wait_for(lambda: len(delivered()) >= 2, message="the webhooks to be delivered")
    assert store.app.test_cli_runner().invoke(args=["reconcile", "--older-than", "0"]).exit_code == 0
    assert _orders_of(store, foreign.id) == []
    assert stripe_client.v1.refunds.list(params={"payment_intent": foreign.id}).data == []
    assert shopper.get("/api/cart").get_json() == {**cart, "last_order": None}  # no order for the foreign payment


def test_webhooks_without_a_valid_signature_are_refused(store):
    client = store.client()
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_x"}}}'
    unsigned = client.post("/webhooks/stripe", data=body, content_type="application/json")
    assert unsigned.status_code == 400
    forged = client.post(
        "/webhooks/stripe", data=body, content_type="application/json", headers={"Stripe-Signature": "t=1,v1=deadbeef"}
    )
    assert forged.status_code == 400


def test_with_no_webhook_secret_the_webhook_refuses_everything(make_store, sandbox):
    store = make_store(sandbox=sandbox, STRIPE_WEBHOOK_SECRET="")
    answer = store.client().post(
        "/webhooks/stripe", data=b"{}", content_type="application/json", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert answer.status_code == 400


def test_a_large_stripe_event_is_accepted(store):
    payload = '{"id": "evt_big", "type": "customer.updated", "data": {"object": {"note": "' + "x" * 60000 + '"}}}'
    header = sign(payload, store.app.config["STRIPE_WEBHOOK_SECRET"])
    answer = store.client().post(
        "/webhooks/stripe", data=payload, content_type="application/json", headers={"Stripe-Signature": header}
    )
    assert answer.status_code == 200, answer.get_json()


def test_no_transaction_is_open_while_the_excess_is_refunded(store, stripe_client):
    from storefront.extensions import db

    gateway = store.app.extensions["gateway"]
    real, open_during_refund = gateway.refund, []

    def refund(*args, **kwargs):
        open_during_refund.append(db.session().in_transaction())  # on SQLite, the write lock held across Stripe
        return real(*args, **kwargs)

    gateway.refund = refund
    shopper = store.client()
    cart, started, order_id = start_and_confirm(shopper, (A, 1))
    stripe_client.v1.payment_intents.update(started["payment_intent_id"], params={"amount": cart["total"] + 500})
    browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)
    wait_for(
        lambda: shopper.get(f"/api/orders/{order_id}").get_json()["amount_refunded"] == 500,
        message="the excess refund to be recorded",
    )
    assert open_during_refund == [False]
