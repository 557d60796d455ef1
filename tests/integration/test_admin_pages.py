"""The HTML admin at /admin: forms carry CSRF tokens, saving goes through the merchant service."""

import html
import re
import threading

import pytest
import requests

from tests.conftest import wait_for
from tests.integration.test_merchant import GRINDER, PASSWORD, Merchant, basic, checkout
from tests.shopping import browser_confirm, fill, order_status, start_and_confirm, synced

pytestmark = pytest.mark.timeout(90)

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SHOWN = re.compile(r'name="shown" type="hidden" value="([^"]*)"')
CONFIRM_PRICE = re.compile(r'name="confirm_price" type="hidden" value="([^"]*)"')


@pytest.fixture
def shop(make_store, sandbox):
    return make_store(sandbox=sandbox, ADMIN_PASSWORD=PASSWORD)


def token(page):
    found = TOKEN.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found.group(1)


def edit_form(client, product_id, **fields):
    page = client.get(f"/admin/products/edit/?id={product_id}", headers=basic())
    assert page.status_code == 200
    shown = SHOWN.search(page.get_data(as_text=True))
    assert shown, page.get_data(as_text=True)[:500]
    return {"csrf_token": token(page), "shown": html.unescape(shown.group(1)), **fields}


def test_a_price_typed_as_119_reaching_open_carts_is_saved_once_confirmed(shop):
    admin, shopper = shop.app.test_client(), shop.client()
    cart = fill(shopper, (GRINDER, 1))
    page = admin.get(f"/admin/products/edit/?id={GRINDER}", headers=basic()).get_data(as_text=True)
    assert 'value="129.00"' in page and "Price in USD" in page  # shown in dollars, not cents
    form = edit_form(admin, GRINDER, name="Burr grinder", unit_amount="119", stock="", active="y")
    asked = admin.post(f"/admin/products/edit/?id={GRINDER}", data=form, headers=basic())
    text = html.unescape(asked.get_data(as_text=True))
    assert asked.status_code == 200, text[:500]
    assert "The new price, $119.00, reaches 1 open cart" in text and "its total will change: $129.00 → $119.00" in text
    assert shopper.get("/api/cart").get_json()["version"] == cart["version"]  # nothing saved yet
    confirmed = CONFIRM_PRICE.search(asked.get_data(as_text=True)).group(1)
    assert confirmed == "11900"
    saved = admin.post(
        f"/admin/products/edit/?id={GRINDER}", data={**form, "confirm_price": confirmed}, headers=basic()
    )
    assert saved.status_code == 302
    assert Merchant(shop).get("/products")[GRINDER - 1]["unit_amount"] == 11900  # "119" is $119.00
    after = shopper.get("/api/cart").get_json()
    assert after["version"] == cart["version"] + 1 and after["total"] == 11900
    assert after["notices"][0]["message"] == "The price of the burr grinder changed from $129.00 to $119.00."


def test_a_form_without_its_csrf_token_changes_nothing(shop):
    admin, shopper = shop.app.test_client(), shop.client()
    cart = fill(shopper, (GRINDER, 1))
    refused = admin.post(
        f"/admin/products/edit/?id={GRINDER}",
        headers=basic(),
        data={"name": "Burr grinder", "unit_amount": "100", "active": "y"},
    )
    assert refused.status_code == 200  # the form again, with its error
    assert Merchant(shop).get("/products")[GRINDER - 1]["unit_amount"] == 12900
    assert shopper.get("/api/cart").get_json()["version"] == cart["version"]
    created = admin.post("/admin/products/new/", headers=basic(), data={"name": "Jug", "unit_amount": "100"})
    assert created.status_code == 200 and len(Merchant(shop).get("/products")) == 8


def test_the_merchant_refunds_a_needs_review_order_from_its_page(shop, stripe_client):
    merchant, admin, shopper = Merchant(shop), shop.app.test_client(), shop.client()
    merchant.patch(GRINDER, stock=1)
    fill(shopper, (GRINDER, 1))
    started = checkout(shopper)
    synced(shopper)
    merchant.patch(GRINDER, stock=0)  # gone before the shopper pays, without the handshake
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)[0] == 200
    order = wait_for(lambda: next(iter(merchant.get("/orders?status=needs_review")), None), message="review")

    listing = admin.get("/admin/orders/", headers=basic()).get_data(as_text=True)
    assert "Needs review (1)" in listing and "Needs review: paid $129.00 but the stock was gone" in listing
    page = admin.get(f"/admin/orders/details/?id={order['id']}", headers=basic())
    assert "Checkout" not in page.get_data(as_text=True) and "Payment succeeded" in page.get_data(as_text=True)
    url = f"/admin/orders/refund/{order['id']}"
    form = {"amount": "129.00", "confirm": "yes", "refunded_before": "0"}
    assert admin.post(url, data=form, headers=basic()).status_code == 302
    assert merchant.get("/orders")[0]["amount_refunded"] == 0  # no CSRF token: nothing refunded
    done = admin.post(url, data={**form, "csrf_token": token(page)}, headers=basic(), follow_redirects=True)
    assert "Refunded $129.00 to the shopper&#39;s card (order" in done.get_data(as_text=True)
    refunded = merchant.get("/orders")[0]
    assert refunded["status"] == "refunded" and refunded["amount_refunded"] == 12900
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]})
    assert [r.amount for r in refunds.data] == [12900]
    assert "Merchant refunded $129.00" in admin.get(
        f"/admin/orders/details/?id={order['id']}", headers=basic()
    ).get_data(as_text=True)


def test_the_pages_ask_for_the_password(shop):
    assert requests.get(f"{shop.url}/admin/", timeout=5).status_code == 401
    assert requests.get(f"{shop.url}/admin/", auth=("admin", PASSWORD), timeout=5).status_code == 200


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_shop(request, make_store, sandbox):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(sandbox=sandbox, database_url=url, ADMIN_PASSWORD=PASSWORD)


@pytest.mark.parametrize("name", ["Burr\x00grinder", "Burr grinder\x1b[2J", "Burr\ngrinder"])
def test_a_name_with_a_control_character_is_refused_by_the_api_and_the_form(any_shop, name):
    admin = any_shop.app.test_client()
    answer = admin.patch(f"/admin/api/products/{GRINDER}", json={"name": name}, headers=basic())
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_name"
    created = admin.post("/admin/api/products", json={"name": name, "unit_amount": 100}, headers=basic())
    assert created.status_code == 400 and created.get_json()["error"]["code"] == "invalid_name"
    form = edit_form(admin, GRINDER, name=name, unit_amount="129.00", stock="", active="y")
    page = admin.post(f"/admin/products/edit/?id={GRINDER}", data=form, headers=basic())
    assert page.status_code == 200 and "may not hold control characters" in page.get_data(as_text=True)
    products = Merchant(any_shop).get("/products")
    assert products[GRINDER - 1]["name"] == "Burr grinder" and len(products) == 8


def test_a_price_saved_on_a_page_opened_before_a_sale_does_not_sell_the_unit_again(any_shop):
    merchant, admin, shopper = Merchant(any_shop), any_shop.app.test_client(), any_shop.client()
    merchant.patch(GRINDER, stock=10)
    form = edit_form(admin, GRINDER, name="Burr grinder", unit_amount="119.00", stock="10", active="y")
    _, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    browser_confirm(any_shop.sandbox.url, any_shop.sandbox.publishable_key, started)
    order_status(shopper, order_id, "paid")
    assert merchant.get("/products")[GRINDER - 1]["stock"] == 9

    saved = admin.post(f"/admin/products/edit/?id={GRINDER}", data=form, headers=basic())
    assert saved.status_code == 302
    product = merchant.get("/products")[GRINDER - 1]
    assert product["unit_amount"] == 11900 and product["stock"] == 9  # the sold unit stays sold

    restock = edit_form(admin, GRINDER, name="Burr grinder", unit_amount="119.00", stock="9", active="y")
    merchant.patch(GRINDER, stock=8)  # another sale, or another admin, meanwhile
    refused = admin.post(f"/admin/products/edit/?id={GRINDER}", data={**restock, "stock": "20"}, headers=basic())
    assert refused.status_code == 200 and "Stock changed meanwhile" in refused.get_data(as_text=True)
    assert merchant.get("/products")[GRINDER - 1]["stock"] == 8
    repriced = {**restock, "unit_amount": "109.00", "stock": "9"}  # price only: the stock the page showed
    assert admin.post(f"/admin/products/edit/?id={GRINDER}", data=repriced, headers=basic()).status_code == 302
    assert merchant.get("/products")[GRINDER - 1]["stock"] == 8
    without = admin.post(f"/admin/products/edit/?id={GRINDER}", data={**repriced, "shown": ""}, headers=basic())
    assert without.status_code == 200 and "out of date" in without.get_data(as_text=True)


def test_the_product_list_shows_what_shoppers_can_still_add_in_the_same_statements_for_any_number(shop):
    from sqlalchemy import event

    from storefront.extensions import db

    merchant, admin, shopper = Merchant(shop), shop.app.test_client(), shop.client()
    merchant.patch(GRINDER, stock=5)
    start_and_confirm(shopper, (GRINDER, 2))  # 2 held by the handshake

    def statements():
        seen = []
        with shop.app.app_context():
            engine = db.engine
        here = threading.get_ident()  # the request's own statements, not the embedded worker's polls

        def listener(*args):
            if threading.get_ident() == here:
                seen.append(args[2])  # the statement text

        event.listen(engine, "before_cursor_execute", listener)
        try:
            page = admin.get("/admin/products/", headers=basic())
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        assert page.status_code == 200
        return page.get_data(as_text=True), len(seen)

    statements()  # the first page of the app compiles and caches what it needs
    listing, before = statements()
    assert merchant.get("/products")[GRINDER - 1]["available"] == 3
    row = re.search(r"Burr grinder.*?</tr>", listing, re.S).group(0)
    assert re.search(r">\s*3\s*<", row), row
    for n in range(6):
        assert (
            admin.post(
                "/admin/api/products", json={"name": f"Jug {n}", "unit_amount": 100, "stock": 4}, headers=basic()
            ).status_code
            == 201
        )
    assert statements()[1] == before


def test_the_orders_status_filter_offers_statuses_in_words(shop):
    admin = shop.app.test_client()
    shopper = shop.client()
    _, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")
    listing = html.unescape(admin.get("/admin/orders/", headers=basic()).get_data(as_text=True))
    groups = re.search(r'id="filter-groups-data"[^>]*>(.*?)</', listing, re.S)
    assert groups, listing[:2000]
    offered = groups.group(1)
    for code, words in (("needs_review", "Needs review"), ("awaiting_payment", "Awaiting payment"), ("paid", "Paid")):
        assert f'["{code}", "{words}"]' in offered, offered
    assert '"needs_review"]' not in offered and "Needs_review" not in offered, offered
    # Choosing "Paid" lists the paid order; "Needs review" lists none.
    paid = admin.get("/admin/orders/?flt0_0=paid", headers=basic()).get_data(as_text=True)
    assert f"?id={order_id}" in paid
    review = admin.get("/admin/orders/?flt0_0=needs_review", headers=basic()).get_data(as_text=True)
    assert f"?id={order_id}" not in review
