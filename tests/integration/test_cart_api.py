"""The cart's JSON routes and pushes, with two tabs of one shopper (no Stripe call is needed)."""

from datetime import datetime

import pytest

from storefront.extensions import db
from storefront.models import Cart, CartSnapshot


def events(tab, name):
    return [e["args"][0] for e in tab.get_received() if e["name"] == name]


@pytest.fixture
def shopper(offline_store):
    client = offline_store.client()
    assert client.get("/api/cart").status_code == 200
    return client


def test_products_list_the_seeded_catalog(offline_store):
    products = offline_store.client().get("/api/products").get_json()
    assert len(products) >= 6
    assert {"id", "name", "unit_amount", "currency"} <= set(products[0])
    assert all(isinstance(p["unit_amount"], int) and p["unit_amount"] > 0 for p in products)


def test_a_new_shopper_gets_an_empty_open_cart(offline_store):
    cart = offline_store.client().get("/api/cart").get_json()
    assert cart["items"] == [] and cart["total"] == 0 and cart["status"] == "open"
    assert cart["version"] == 1 and cart["payment"] is None


def test_add_change_remove_bump_the_version_and_total(shopper):
    cart = shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 2}).get_json()
    unit = cart["items"][0]["unit_amount"]
    assert cart["version"] == 2 and cart["total"] == 2 * unit
    cart = shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 3}).get_json()
    assert cart["items"][0]["quantity"] == 5 and cart["version"] == 3
    cart = shopper.put("/api/cart/items/1", json={"quantity": 1}).get_json()
    assert cart["total"] == unit and cart["version"] == 4
    cart = shopper.delete("/api/cart/items/1").get_json()
    assert cart["items"] == [] and cart["version"] == 5


def test_every_version_has_its_snapshot(offline_store, shopper):
    shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 2})
    shopper.post("/api/cart/items", json={"product_id": 2, "quantity": 1})
    cart = shopper.get("/api/cart").get_json()
    with offline_store.app.app_context():
        snapshots = {s.version: s for s in db.session.query(CartSnapshot).filter_by(cart_id=cart["id"])}
    assert sorted(snapshots) == [1, 2, 3]
    assert snapshots[3].total == cart["total"]
    assert [i["product_id"] for i in snapshots[2].items] == [1]


def test_a_change_in_one_tab_is_pushed_to_every_tab(offline_store, shopper):
    tab1, tab2 = offline_store.tab(shopper), offline_store.tab(shopper)
    assert tab1.is_connected() and tab2.is_connected()
    tab1.get_received(), tab2.get_received()
    cart = shopper.post("/api/cart/items", json={"product_id": 3, "quantity": 4}).get_json()
    for tab in (tab1, tab2):
        pushed = events(tab, "cart")
        assert pushed and pushed[-1]["version"] == cart["version"] and pushed[-1]["total"] == cart["total"]


def test_a_tab_receives_the_cart_when_it_connects(offline_store, shopper):
    shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1})
    tab = offline_store.tab(shopper)
    assert events(tab, "cart")[-1]["version"] == 2


def test_get_cart_event_acknowledges_with_the_cart(offline_store, shopper):
    tab = offline_store.tab(shopper)
    cart = tab.emit("get_cart", callback=True)
    assert cart["version"] == 1


def test_another_shopper_never_receives_this_carts_pushes(offline_store, shopper):
    stranger = offline_store.client()
    stranger.get("/api/cart")
    spy = offline_store.tab(stranger)
    spy.get_received()
    shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1})
    assert events(spy, "cart") == []


def test_a_socket_without_a_session_cart_is_refused(offline_store):
    tab = offline_store.tab(offline_store.client())
    assert not tab.is_connected()


@pytest.mark.parametrize(
    "method,path,body,status,code",
    [
        ("post", "/api/cart/items", {"product_id": 999, "quantity": 1}, 404, "product_not_found"),
        ("post", "/api/cart/items", {"product_id": 1, "quantity": 0}, 400, "invalid_quantity"),
        ("post", "/api/cart/items", {"product_id": 1, "quantity": 100}, 400, "invalid_quantity"),
        ("post", "/api/cart/items", {"product_id": 1, "quantity": "2"}, 400, "invalid_quantity"),
        ("post", "/api/cart/items", {"product_id": "x", "quantity": 1}, 400, "invalid_product_id"),
        ("post", "/api/cart/items", ["not", "an", "object"], 400, "invalid_json"),
        ("put", "/api/cart/items/1", {"quantity": -1}, 400, "invalid_quantity"),
        ("put", "/api/cart/items/999", {"quantity": 1}, 404, "product_not_found"),
        ("put", "/api/cart/items/abc", {"quantity": 1}, 400, "invalid_product_id"),
        ("delete", "/api/cart/items/999", None, 404, "product_not_found"),
    ],
)
def test_bad_input_is_refused_with_a_json_error_and_changes_nothing(shopper, method, path, body, status, code):
    before = shopper.get("/api/cart").get_json()
    answer = getattr(shopper, method)(path, json=body) if body is not None else getattr(shopper, method)(path)
    assert answer.status_code == status
    assert answer.get_json()["error"]["code"] == code
    assert shopper.get("/api/cart").get_json() == before


def test_malformed_json_is_a_400(shopper):
    answer = shopper.post("/api/cart/items", data="{not json", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"


def test_a_body_that_is_not_json_is_a_400(shopper):
    answer = shopper.post("/api/cart/items", data="product_id=1&quantity=1")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"


def test_oversized_bodies_are_refused(shopper):
    answer = shopper.post("/api/cart/items", data='{"a": "' + "x" * 40000 + '"}', content_type="application/json")
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "payload_too_large"


def test_a_frozen_cart_refuses_changes_and_every_tab_is_told(offline_store, shopper):
    shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1})
    cart_id = shopper.get("/api/cart").get_json()["id"]
    with offline_store.app.app_context():
        cart = db.session.get(Cart, cart_id)
        cart.status = "frozen"
        db.session.commit()
    answer = shopper.post("/api/cart/items", json={"product_id": 2, "quantity": 1})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "checkout_in_progress"
    assert shopper.get("/api/cart").get_json()["items"][0]["product_id"] == 1


@pytest.mark.parametrize("header", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_cross_site_writes_are_refused(shopper, header):
    answer = shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1}, headers=header)
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "cross_site_request"
    assert shopper.get("/api/cart").get_json()["version"] == 1


def test_same_origin_writes_are_accepted(shopper):
    headers = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1}, headers=headers).status_code == 200


def test_unknown_api_routes_answer_json(shopper):
    answer = shopper.get("/api/nothing-here")
    assert answer.status_code == 404 and "error" in answer.get_json()


def test_another_shoppers_order_is_not_found(offline_store, shopper):
    answer = shopper.get("/api/orders/12345")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "order_not_found"


def test_handlers_survive_a_second_app(make_store):
    first = make_store(STRIPE_SECRET_KEY="sk_test_unused")
    second = make_store(STRIPE_SECRET_KEY="sk_test_unused")
    for store in (first, second):
        client = store.client()
        client.get("/api/cart")
        tab = store.tab(client)
        assert tab.is_connected() and events(tab, "cart")


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_change_to_a_cart_whose_freeze_expired_is_refused_with_the_cart(make_store, database, request):
    """Releasing an expired freeze asks Stripe, which is the worker's job: the change itself never does."""
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    store = make_store(database_url=url, STRIPE_SECRET_KEY="sk_test_unused", FREEZE_SECONDS=0)
    shopper = store.client()
    shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1})
    cart_id = shopper.get("/api/cart").get_json()["id"]
    with store.app.app_context():
        db.session.execute(
            Cart.__table__.update()
            .where(Cart.id == cart_id)
            .values(status="frozen", frozen_at=datetime(2000, 1, 1), payment_intent_id="pi_gone")
        )
        db.session.commit()
    for method, path, body in [
        ("POST", "/api/cart/items", {"product_id": 2, "quantity": 1}),
        ("PUT", "/api/cart/items/1", {"quantity": 1}),  # a change to what it already is is refused too
        ("DELETE", "/api/cart/items/1", None),
    ]:
        answer = shopper.open(path, method=method, json=body)
        assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "checkout_in_progress"
        cart = answer.get_json()["cart"]
        assert (cart["id"], cart["status"], cart["version"]) == (cart_id, "frozen", 2)
        assert [item["product_id"] for item in cart["items"]] == [1]
    assert shopper.get("/api/cart").get_json()["status"] == "frozen"


def test_only_an_answer_that_changed_the_session_sets_the_cookie(offline_store):
    """The signed cookie is written when the session gets a cart id (or learns its row was written), not
    re-signed on every answer."""
    shopper = offline_store.client()
    assert "Set-Cookie" in shopper.get("/api/cart").headers  # a first visit: a cart id
    assert "Set-Cookie" not in shopper.get("/api/cart").headers
    assert "Set-Cookie" in shopper.post("/api/cart/items", json={"product_id": 1, "quantity": 1}).headers
    for change in (
        lambda: shopper.put("/api/cart/items/1", json={"quantity": 3}),
        lambda: shopper.post("/api/cart/items", json={"product_id": 2, "quantity": 1}),
        lambda: shopper.delete("/api/cart/items/2"),
        lambda: shopper.get("/api/cart"),
    ):
        answer = change()
        assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert shopper.get("/api/cart").get_json()["items"][0]["quantity"] == 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def paying_store(request, make_store, sandbox):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(sandbox=sandbox, database_url=url)


def test_the_cart_names_its_latest_order_so_a_tab_opened_after_the_payment_links_to_it(paying_store):
    from tests.shopping import browser_confirm, order_status, start_and_confirm

    shopper = paying_store.client()
    assert shopper.get("/api/cart").get_json()["last_order"] is None  # no row yet
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    assert shopper.get("/api/cart").get_json()["last_order"] == {"id": order_id, "status": "awaiting_payment"}
    assert browser_confirm(paying_store.sandbox.url, paying_store.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")
    cart = shopper.get("/api/cart").get_json()  # what a tab opened now reads: empty, and the order it became
    assert cart["items"] == [] and cart["status"] == "open"
    assert cart["last_order"] == {"id": order_id, "status": "paid"}
    assert paying_store.client().get("/api/cart").get_json()["last_order"] is None  # another shopper's cart
