"""The merchant's side end to end, on SQLite and PostgreSQL: prices per cart version, stock, the admin API."""

import base64

import pytest
import requests

from storefront.extensions import db
from storefront.models import OrderHistory, Product, StockReservation
from tests.conftest import wait_for
from tests.reliability.test_concurrency import http_shopper, race
from tests.shopping import browser_confirm, fill, order_status, pushed, start_and_confirm, synced

pytestmark = pytest.mark.timeout(90)

A, B, GRINDER = 1, 2, 4  # seeded: beans $24.00, dripper $32.00, burr grinder $129.00
PASSWORD = "merchant-secret"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'merchant.sqlite3'}"


@pytest.fixture
def shop(make_store, sandbox, database_url):
    return make_store(sandbox=sandbox, database_url=database_url, ADMIN_PASSWORD=PASSWORD)


def basic(user="admin", password=PASSWORD):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Merchant:
    """The admin API through the app's test client."""

    def __init__(self, store):
        self.client = store.app.test_client()

    def patch(self, product_id, **changes):
        answer = self.client.patch(f"/admin/api/products/{product_id}", json=changes, headers=basic())
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def get(self, path):
        answer = self.client.get(f"/admin/api{path}", headers=basic())
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def post(self, path, body=None):
        return self.client.post(f"/admin/api{path}", json=body if body is not None else {}, headers=basic())


def checkout(client):
    answer = client.post("/api/checkout")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def available(client, product_id):
    return next(p["available"] for p in client.get("/api/products").get_json() if p["id"] == product_id)


def reservations(store):
    with store.app.app_context():
        rows = [(r.order_id, r.product_id, r.quantity) for r in db.session.query(StockReservation)]
        db.session.remove()
    return rows


def on_hand(store, product_id):
    with store.app.app_context():
        stock = db.session.get(Product, product_id).stock
        db.session.remove()
    return stock


# --- prices belong to a cart version ---------------------------------------------------------------


def test_a_price_change_moves_every_open_cart_to_a_new_version_and_the_payment_follows(shop, stripe_client):
    merchant, shopper, other = Merchant(shop), shop.client(), shop.client()
    fill(shopper, (GRINDER, 1), (A, 1))
    fill(other, (A, 2))
    started = checkout(shopper)
    tab = shop.tab(shopper)
    tab.get_received()
    before = shopper.get("/api/cart").get_json()
    untouched = other.get("/api/cart").get_json()

    merchant.patch(GRINDER, unit_amount=11900)

    cart = shopper.get("/api/cart").get_json()
    assert cart["version"] == before["version"] + 1 and cart["total"] == 11900 + 2400
    assert {i["product_id"]: i["unit_amount"] for i in cart["items"]} == {GRINDER: 11900, A: 2400}
    assert cart["notices"] == [
        {
            "code": "price_changed",
            "product_id": GRINDER,
            "name": "Burr grinder",
            "old_unit_amount": 12900,
            "new_unit_amount": 11900,
            "message": "The price of the burr grinder changed from $129.00 to $119.00.",
        }
    ]
    assert any(p["version"] == cart["version"] and p["notices"] == cart["notices"] for p in pushed(tab, "cart"))
    assert other.get("/api/cart").get_json() == untouched  # holds no grinder: no new version
    cart = synced(shopper)
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).amount == 14300
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": before["version"]})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "cart_changed"
    answer = shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 200 and answer.get_json()["amount"] == 14300
    story = merchant.get(f"/orders/{answer.get_json()['order_id']}")["history"]
    assert [line["kind"] for line in story] == ["sync", "handshake"], story
    assert fill(other, (A, 1))["notices"] == []  # a shopper's own change carries no notice


def test_a_line_keeps_the_price_of_its_version_whatever_the_product_row_says(shop):
    shopper = shop.client()
    fill(shopper, (A, 1))
    with shop.app.app_context():  # a write behind the service's back must not reprice a cart silently
        db.session.get(Product, A).unit_amount = 1
        db.session.commit()
        db.session.remove()
    cart = shopper.get("/api/cart").get_json()
    assert cart["items"][0]["unit_amount"] == 2400 and cart["total"] == 2400


def test_a_price_change_retried_after_failing_part_way_reaches_every_cart(shop, monkeypatch):
    from storefront.cart import repository
    from storefront.merchant import pricing

    merchant, gone, kept = Merchant(shop), shop.client(), shop.client()
    gone_id, kept_cart = fill(gone, (A, 1))["id"], fill(kept, (A, 1))
    listed = pricing.open_carts_holding

    def listed_then_one_removed(conn, product_id):  # the cleanup removes a cart while the merchant saves
        found = listed(conn, product_id)
        repository.delete_carts(conn, [gone_id])  # committed with the listing's unit of work
        return found

    monkeypatch.setattr(pricing, "open_carts_holding", listed_then_one_removed)
    assert merchant.patch(A, unit_amount=2500)["unit_amount"] == 2500  # 200, not a 404 for a cart
    assert kept.get("/api/cart").get_json()["total"] == 2500
    monkeypatch.undo()

    with shop.app.app_context():  # a PATCH that committed the product, then failed before the carts
        db.session.get(Product, A).unit_amount = 2600
        db.session.commit()
        db.session.remove()
    assert kept.get("/api/cart").get_json()["total"] == 2500
    merchant.patch(A, unit_amount=2600)  # the merchant retries: nothing "changes", the carts still follow
    after = kept.get("/api/cart").get_json()
    assert after["total"] == 2600 and after["version"] == kept_cart["version"] + 2
    merchant.patch(A, unit_amount=2600)  # and once more: nothing left to move
    assert kept.get("/api/cart").get_json()["version"] == after["version"]


def test_a_frozen_cart_keeps_its_prices_and_takes_the_new_ones_when_it_opens_again(shop):
    merchant, shopper = Merchant(shop), shop.client()
    cart, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    merchant.patch(GRINDER, unit_amount=9900)
    frozen = shopper.get("/api/cart").get_json()
    assert frozen["status"] == "frozen" and frozen["version"] == cart["version"] and frozen["total"] == 12900

    status, _ = browser_confirm(
        shop.sandbox.url, shop.sandbox.publishable_key, started, payment_method="pm_card_chargeDeclined"
    )
    assert status == 402
    order_status(shopper, order_id, "payment_failed")
    reopened = shopper.get("/api/cart").get_json()
    assert reopened["status"] == "open" and reopened["total"] == 9900
    assert reopened["notices"][0]["code"] == "price_changed"
    assert synced(shopper)["payment"]["amount"] == 9900


def test_a_paid_frozen_cart_is_charged_the_price_it_froze_with(shop):
    merchant, shopper = Merchant(shop), shop.client()
    _, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    merchant.patch(GRINDER, unit_amount=9900)
    status, paid = browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)
    assert status == 200 and paid["amount"] == 12900
    order = order_status(shopper, order_id, "paid")
    assert order["amount"] == order["amount_received"] == 12900


def test_a_withdrawn_product_leaves_open_carts_with_a_notice(shop):
    merchant, shopper = Merchant(shop), shop.client()
    cart = fill(shopper, (A, 1), (B, 2))
    merchant.patch(B, active=False)
    after = shopper.get("/api/cart").get_json()
    assert after["version"] == cart["version"] + 1 and [i["product_id"] for i in after["items"]] == [A]
    assert after["total"] == 2400 and after["notices"][0]["code"] == "product_unavailable"
    assert (
        after["notices"][0]["message"] == "The ceramic pour-over dripper is no longer available and was "
        "removed from your cart."
    )
    assert B not in [p["id"] for p in shopper.get("/api/products").get_json()]
    refused = shopper.post("/api/cart/items", json={"product_id": B, "quantity": 1})
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "product_not_found"


def test_repricing_a_locked_cart_answers_its_new_version_or_none_when_it_is_at_the_catalog(shop):
    """The interface checkout calls under the cart's lock: the new CartState (written), or None (nothing)."""
    from sqlalchemy import update

    from storefront.cart import repository
    from storefront.merchant import pricing
    from storefront.wiring import current_shop

    shopper = shop.client()
    cart = fill(shopper, (A, 1), (B, 1))
    with shop.app.app_context():
        store = current_shop()

        def reprice():
            with store.uow() as uow:
                repository.lock(uow.conn, cart["id"])
                state, _ = repository.read(uow.conn, cart["id"])
                new = pricing.reprice_locked(uow.conn, state)
                uow.commit()
            return state, new

        assert reprice()[1] is None
        with store.uow() as uow:
            products = Product.__table__
            uow.conn.execute(update(products).where(products.c.id == A).values(unit_amount=2000))
            uow.conn.execute(update(products).where(products.c.id == B).values(active=False))
            uow.commit()
        state, new = reprice()
        assert reprice()[1] is None  # written once: the next look finds it at the catalog
        db.session.remove()
    assert new.version == state.version + 1 == cart["version"] + 1
    assert [(line.product_id, line.unit_amount) for line in new.lines] == [(A, 2000)]
    assert sorted(n["code"] for n in new.notices) == ["price_changed", "product_unavailable"]
    assert shopper.get("/api/cart").get_json() == {**new.view(), "last_order": None}


def test_a_merchant_refund_asks_stripe_with_no_transaction_open(shop, monkeypatch):
    shopper = shop.client()
    _, started, order_id = start_and_confirm(shopper, (A, 1))
    browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)
    order_status(shopper, order_id, "paid")
    gateway, open_during_refund = shop.app.extensions["gateway"], []
    real_refund = gateway.refund

    def refund(*args, **kwargs):  # the real refund, noting whether the request's session holds a transaction
        open_during_refund.append(db.session().in_transaction())
        return real_refund(*args, **kwargs)

    monkeypatch.setattr(gateway, "refund", refund)
    answer = Merchant(shop).post(f"/orders/{order_id}/refund", {"amount": 100})
    assert answer.status_code == 200 and answer.get_json()["amount_refunded"] == 100
    assert open_during_refund == [False]
    assert [line["kind"] for line in Merchant(shop).get(f"/orders/{order_id}")["history"]][-1] == "refund"


# --- stock ------------------------------------------------------------------------------------------


def test_stock_is_reserved_by_the_handshake_released_on_failure_and_sold_on_success(shop):
    merchant, shopper = Merchant(shop), shop.client()
    assert available(shopper, GRINDER) is None  # not tracked
    merchant.patch(GRINDER, stock=2)
    assert available(shopper, GRINDER) == 2
    refused = shopper.post("/api/cart/items", json={"product_id": GRINDER, "quantity": 3})
    body = refused.get_json()
    assert refused.status_code == 409 and body["error"]["code"] == "out_of_stock"
    assert body["out_of_stock"] == {"product_id": GRINDER, "name": "Burr grinder", "available": 2}
    assert body["error"]["message"] == "Only 2 of the burr grinder are left." and body["cart"]["items"] == []

    _, started, order_id = start_and_confirm(shopper, (GRINDER, 2))
    assert available(shopper, GRINDER) == 0 and on_hand(shop, GRINDER) == 2
    assert reservations(shop) == [(order_id, GRINDER, 2)]
    status, _ = browser_confirm(
        shop.sandbox.url, shop.sandbox.publishable_key, started, payment_method="pm_card_chargeDeclined"
    )
    assert status == 402
    order_status(shopper, order_id, "payment_failed")
    assert reservations(shop) == [] and available(shopper, GRINDER) == 2

    answer = shopper.post(
        "/api/checkout/confirm", json={"cart_version": shopper.get("/api/cart").get_json()["version"]}
    )
    assert answer.status_code == 200, answer.get_json()
    status, _ = browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)
    assert status == 200
    order_status(shopper, answer.get_json()["order_id"], "paid")
    assert reservations(shop) == [] and on_hand(shop, GRINDER) == 0 and available(shopper, GRINDER) == 0
    assert merchant.get("/products")[GRINDER - 1]["stock"] == 0


def test_a_handshake_that_finds_the_stock_gone_is_refused_and_the_cart_stays_open(shop):
    merchant, first, second = Merchant(shop), shop.client(), shop.client()
    merchant.patch(GRINDER, stock=1)
    fill(second, (GRINDER, 1))
    checkout(second)
    start_and_confirm(first, (GRINDER, 1))
    cart = second.get("/api/cart").get_json()
    answer = second.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    body = answer.get_json()
    assert answer.status_code == 409 and body["error"]["code"] == "out_of_stock"
    assert body["out_of_stock"]["available"] == 0 and body["cart"]["version"] == cart["version"]
    assert body["error"]["message"] == "The burr grinder is out of stock."
    assert second.get("/api/cart").get_json()["status"] == "open"


def test_a_payment_without_handshake_for_stock_that_is_gone_needs_review(shop):
    merchant, late, first = Merchant(shop), shop.client(), shop.client()
    merchant.patch(GRINDER, stock=1)
    fill(late, (GRINDER, 1))
    late_checkout = checkout(late)
    _, started, order_id = start_and_confirm(first, (GRINDER, 1))
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)[0] == 200
    order_status(first, order_id, "paid")
    status, _ = browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, late_checkout)  # no handshake
    assert status == 200
    orders = wait_for(lambda: (lambda o: o if len(o) == 2 else None)(merchant.get("/orders")), message="2 orders")
    assert orders[0]["status"] == "needs_review" and orders[0]["cart_id"] != orders[1]["cart_id"]
    assert on_hand(shop, GRINDER) == 0 and reservations(shop) == []


def test_stock_cannot_drop_below_what_payments_in_flight_hold(shop):
    merchant, shopper = Merchant(shop), shop.client()
    merchant.patch(GRINDER, stock=3)
    start_and_confirm(shopper, (GRINDER, 2))
    answer = merchant.client.patch(f"/admin/api/products/{GRINDER}", json={"stock": 1}, headers=basic())
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "stock_reserved"
    assert merchant.patch(GRINDER, stock=2)["available"] == 0


def test_two_shoppers_handshaking_for_the_last_unit_at_once_exactly_one_wins(shop):
    Merchant(shop).patch(GRINDER, stock=1)
    shoppers = [http_shopper(shop) for _ in range(2)]
    versions = []
    for http in shoppers:
        http.post(f"{shop.url}/api/cart/items", json={"product_id": GRINDER, "quantity": 1}, timeout=10)
        versions.append(http.post(f"{shop.url}/api/checkout", timeout=10).json()["cart_version"])
    answers = race(
        *[
            (lambda h=http, v=version: h.post(f"{shop.url}/api/checkout/confirm", json={"cart_version": v}, timeout=30))
            for http, version in zip(shoppers, versions, strict=True)
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["error"]["code"] == "out_of_stock"
    assert len(reservations(shop)) == 1 and on_hand(shop, GRINDER) == 1


# --- the merchant API -------------------------------------------------------------------------------


def test_admin_is_absent_without_a_password(make_store):
    store = make_store(STRIPE_SECRET_KEY="sk_test_unused")
    client = store.client()
    for path in ("/admin", "/admin/", "/admin/api/products", "/admin/product/", "/admin/api/orders"):
        assert client.get(path, headers=basic()).status_code == 404, path
    assert client.post("/admin/api/products", json={"name": "x", "unit_amount": 1}).status_code == 404


def test_admin_asks_for_the_password(shop):
    client = shop.client()
    for headers in ({}, basic(password="wrong"), basic(user="root"), {"Authorization": "Bearer x"}):
        answer = client.get("/admin/api/products", headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
        assert answer.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/admin/", headers=basic(password="wrong")).status_code == 401
    assert client.get("/admin/api/products", headers=basic()).status_code == 200


def test_products_are_created_and_edited_and_bad_input_is_refused(shop):
    merchant = Merchant(shop)
    created = merchant.post("/products", {"name": "Milk jug", "unit_amount": 1800, "stock": 5})
    assert created.status_code == 201
    product = created.get_json()
    assert product == {
        "id": product["id"],
        "name": "Milk jug",
        "unit_amount": 1800,
        "currency": "usd",
        "stock": 5,
        "reserved": 0,
        "available": 5,
        "active": True,
    }
    assert merchant.patch(product["id"], stock=None)["available"] is None
    assert any(p["id"] == product["id"] for p in shop.client().get("/api/products").get_json())
    for body in (
        {"name": "x"},
        {"name": "", "unit_amount": 1},
        {"name": "x", "unit_amount": 0},
        {"name": "x", "unit_amount": "12"},
        {"name": "x", "unit_amount": True},
        {"name": "x", "unit_amount": 1, "stock": -1},
        {"name": "x", "unit_amount": 1, "price": 3},
    ):
        answer = merchant.post("/products", body)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"], body
    assert merchant.client.patch("/admin/api/products/999", json={"stock": 1}, headers=basic()).status_code == 404
    bad = merchant.client.patch(f"/admin/api/products/{A}", json={"active": "no"}, headers=basic())
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_active"
    cross_site = merchant.client.post(
        "/admin/api/products", json={"name": "x", "unit_amount": 1}, headers={**basic(), "Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403


def test_orders_list_puts_the_review_queue_first_and_refunds_go_through_stripe(shop, stripe_client):
    merchant, shopper, reviewer = Merchant(shop), shop.client(), shop.client()
    _, started, paid_id = start_and_confirm(shopper, (A, 1))
    browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)
    order_status(shopper, paid_id, "paid")
    merchant.patch(GRINDER, stock=0)
    fill(reviewer, (A, 1))
    with shop.app.app_context():  # the reviewer's cart gains a grinder behind the stock check's back
        from storefront.models import CartLine

        db.session.add(
            CartLine(
                cart_id=reviewer.get("/api/cart").get_json()["id"],
                product_id=GRINDER,
                quantity=1,
                unit_amount=12900,
                position=9,
            )
        )
        db.session.commit()
        db.session.remove()
    Merchant(shop).patch(A, unit_amount=2500)  # a new version for the reviewer's cart, with both lines
    late = checkout(reviewer)
    synced(reviewer)
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, late)[0] == 200
    queue = wait_for(lambda: (lambda o: o if len(o) == 2 else None)(merchant.get("/orders")), message="2 orders")
    assert [o["status"] for o in queue] == ["needs_review", "paid"]
    review = queue[0]
    assert review["amount_received"] == 2500 + 12900 and "created_at" in review and "cart_id" in review
    assert [o["id"] for o in merchant.get("/orders?status=paid")] == [paid_id]
    assert merchant.client.get("/admin/api/orders?status=bogus", headers=basic()).status_code == 400

    for amount in (0, -5, "10", True, review["amount_received"] + 1):
        answer = merchant.post(f"/orders/{review['id']}/refund", {"amount": amount})
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_amount", amount
    assert merchant.post("/orders/999/refund").status_code == 404
    partial = merchant.post(f"/orders/{review['id']}/refund", {"amount": 500})
    assert partial.status_code == 200 and partial.get_json()["amount_refunded"] == 500
    rest = merchant.post(f"/orders/{review['id']}/refund")
    assert rest.status_code == 200, rest.get_json()
    assert rest.get_json()["amount_refunded"] == review["amount_received"] and rest.get_json()["status"] == "refunded"
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": late["payment_intent_id"]})
    assert sorted(r.amount for r in refunds.data) == [500, review["amount_received"] - 500]
    again = merchant.post(f"/orders/{review['id']}/refund")
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "nothing_to_refund"
    kinds = [line["kind"] for line in merchant.get(f"/orders/{review['id']}")["history"]]
    assert kinds == ["stock", "stripe", "refund", "refund"]
    with shop.app.app_context():
        assert db.session.query(OrderHistory).filter_by(kind="handshake").count() == 1
        db.session.remove()
    assert requests.get(f"{shop.url}/admin/api/orders", timeout=5).status_code == 401


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_refund_without_a_json_body_refunds_nothing(shop, stripe_client, content_type):
    shopper = shop.client()
    _, started, order_id = start_and_confirm(shopper, (A, 1))
    browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)
    order_status(shopper, order_id, "paid")
    headers = basic() if content_type is None else {**basic(), "Content-Type": content_type}
    answer = Merchant(shop).client.post(f"/admin/api/orders/{order_id}/refund", headers=headers)
    assert answer.status_code in (400, 415) and answer.get_json()["error"]["code"] == "invalid_json"
    assert stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]}).data == []
    assert shopper.get(f"/api/orders/{order_id}").get_json()["amount_refunded"] == 0


def test_a_price_change_racing_shoppers_adding_the_product_leaves_no_cart_at_the_old_price(shop):
    shoppers = [http_shopper(shop) for _ in range(6)]
    auth = ("admin", PASSWORD)
    price = 12900
    for round_ in range(3):
        price -= 1000

        def add(http=None):
            return http.post(f"{shop.url}/api/cart/items", json={"product_id": GRINDER, "quantity": 1}, timeout=30)

        def change(new=price):
            return requests.patch(
                f"{shop.url}/admin/api/products/{GRINDER}", json={"unit_amount": new}, auth=auth, timeout=30
            )

        answers = race(change, *[lambda h=http: add(h) for http in shoppers])
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        for http in shoppers:
            cart = http.get(f"{shop.url}/api/cart", timeout=10).json()
            line = next(i for i in cart["items"] if i["product_id"] == GRINDER)
            assert line["unit_amount"] == price and line["quantity"] == round_ + 1, cart
            assert cart["total"] == sum(i["line_total"] for i in cart["items"])


def test_an_expired_freeze_released_gives_its_stock_back(make_store, sandbox):
    store = make_store(sandbox=sandbox, ADMIN_PASSWORD=PASSWORD, FREEZE_SECONDS=0.2)
    merchant, shopper = Merchant(store), store.client()
    merchant.patch(GRINDER, stock=1)
    _, _, order_id = start_and_confirm(shopper, (GRINDER, 1))  # and never pays
    assert available(shopper, GRINDER) == 0 and len(reservations(store)) == 1
    store.app.extensions["worker"].start()  # its sweep releases freezes past FREEZE_SECONDS
    add = {"product_id": A, "quantity": 1}
    wait_for(lambda: shopper.post("/api/cart/items", json=add).status_code == 200, message="the freeze to expire")
    assert reservations(store) == [] and available(shopper, GRINDER) == 1
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "payment_failed"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/admin/api/products", "not json"),
        ("post", "/admin/api/products", [1, 2]),
        ("patch", f"/admin/api/products/{A}", {"unit_amount": 10**12}),
        ("patch", f"/admin/api/products/{A}", {"name": {"nested": [1]}}),
        ("post", "/admin/api/orders/1/refund", {"amount": [5]}),
        ("patch", f"/admin/api/products/{A}", {"name": "Beans\x00"}),
        ("patch", f"/admin/api/products/{A}", {"name": "Beans\x1b[2J"}),
    ],
)
def test_bad_merchant_input_is_a_clear_400(make_store, method, path, body):
    store = make_store(STRIPE_SECRET_KEY="sk_test_unused", ADMIN_PASSWORD=PASSWORD)
    client = store.client()
    kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, str) else {"json": body}
    answer = getattr(client, method)(path, headers=basic(), **kwargs)
    assert answer.status_code in (400, 404), answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] and answer.get_json()["error"]["message"]
    assert Merchant(store).get("/products")[A - 1]["unit_amount"] == 2400


def test_a_handshake_racing_a_tab_adding_the_same_tracked_product_and_a_price_change_never_fails(shop):
    """Cart row, then product rows: the handshake, a change adding a line and a price change lock in one order."""
    Merchant(shop).patch(GRINDER, stock=50)
    auth = ("admin", PASSWORD)
    for round_ in range(6):
        http = http_shopper(shop)
        other_tab = requests.Session()
        other_tab.cookies.update(http.cookies)
        http.post(f"{shop.url}/api/cart/items", json={"product_id": A, "quantity": 1}, timeout=10)
        http.post(f"{shop.url}/api/checkout", timeout=10)
        version = http.get(f"{shop.url}/api/cart", timeout=10).json()["version"]
        handshake, change, price = race(
            lambda h=http, v=version: h.post(f"{shop.url}/api/checkout/confirm", json={"cart_version": v}, timeout=30),
            lambda t=other_tab: t.post(
                f"{shop.url}/api/cart/items", json={"product_id": GRINDER, "quantity": 1}, timeout=30
            ),
            lambda r=round_: requests.patch(
                f"{shop.url}/admin/api/products/{GRINDER}", json={"unit_amount": 12000 + r}, auth=auth, timeout=30
            ),
        )
        assert price.status_code == 200 and handshake.status_code in (200, 409) and change.status_code in (200, 409), (
            handshake.text,
            change.text,
            price.text,
        )
        cart = http.get(f"{shop.url}/api/cart", timeout=10).json()
        held = {
            (p, q)
            for o, p, q in reservations(shop)
            if handshake.status_code == 200 and o == handshake.json()["order_id"]
        }
        if handshake.status_code == 200:
            assert cart["status"] == "frozen"
            assert held == ({(GRINDER, 1)} if GRINDER in {i["product_id"] for i in cart["items"]} else set())
        else:
            line = next(i for i in cart["items"] if i["product_id"] == GRINDER)
            assert cart["status"] == "open" and line["unit_amount"] == 12000 + round_


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["unit_amount = 11900", "active = false"])
def test_a_handshake_that_waited_for_a_price_change_or_withdrawal_is_refused_with_the_new_cart(
    make_store, sandbox, postgres_url, change
):
    """The handshake waits on the product's lock while the merchant's change holds it, then must not freeze
    the cart at the old price (or with the withdrawn product): 409 cart_changed, the cart repriced."""
    import threading

    from sqlalchemy import create_engine, text

    store = make_store(sandbox=sandbox, database_url=postgres_url, ADMIN_PASSWORD=PASSWORD)
    shopper = store.client()
    fill(shopper, (A, 1), (GRINDER, 1))
    checkout(shopper)
    cart = synced(shopper)
    merchant_db = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    answers = []
    with merchant_db.connect() as conn:
        conn.execute(text(f"UPDATE products SET {change} WHERE id = {GRINDER}"))  # held until commit
        handshake = threading.Thread(
            target=lambda: answers.append(shopper.post("/api/checkout/confirm", json={"cart_version": cart["version"]}))
        )
        handshake.start()
        wait_for(
            lambda: conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar(),
            message="the handshake to wait for the product's lock",
        )
        conn.commit()
    handshake.join(30)
    merchant_db.dispose()
    answer = answers[0]
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "cart_changed", answer.get_json()
    shown = answer.get_json()["cart"]
    assert shown["status"] == "open" and shown["version"] == cart["version"] + 1
    read = shopper.get("/api/cart").get_json()
    assert read.pop("last_order") is None  # only a read names the cart's latest order
    assert shown == read | {"payment": shown["payment"]}
    grinder = [i for i in shown["items"] if i["product_id"] == GRINDER]
    assert grinder == [] if change.startswith("active") else grinder[0]["unit_amount"] == 11900
    assert reservations(store) == [] and shown["notices"]
    again = synced(shopper)
    confirmed = shopper.post("/api/checkout/confirm", json={"cart_version": again["version"]})
    assert confirmed.status_code == 200 and confirmed.get_json()["amount"] == shown["total"]
