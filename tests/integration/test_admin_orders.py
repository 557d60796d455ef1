"""The admin's order pages for a shop owner: refunds typed in dollars and confirmed, statuses in words, accept
and fulfil a reviewed order once restocked. Against the Stripe sandbox over HTTP."""

import html
import re
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import wait_for
from tests.integration.test_admin_pages import edit_form, token
from tests.integration.test_merchant import GRINDER, PASSWORD, Merchant, basic, checkout, on_hand
from tests.shopping import browser_confirm, fill, order_status, start_and_confirm, synced

pytestmark = pytest.mark.timeout(90)

TYPED = re.compile(r'name="amount" value="([^"]*)"')
BEFORE = re.compile(r'name="refunded_before" value="([^"]*)"')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request, make_store, sandbox):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(sandbox=sandbox, database_url=url, ADMIN_PASSWORD=PASSWORD, TIMEZONE=ZoneInfo("Europe/Paris"))


def test_a_price_reaching_two_open_carts_says_both_totals(shop):
    admin, first, second = shop.app.test_client(), shop.client(), shop.client()
    fill(first, (GRINDER, 1))
    fill(second, (GRINDER, 2), (1, 1))
    second_total = second.get("/api/cart").get_json()["total"]
    form = edit_form(admin, GRINDER, name="Burr grinder", unit_amount="119.00", stock="", active="y")
    asked = page_text(admin.post(f"/admin/products/edit/?id={GRINDER}", data=form, headers=basic()))
    new_second = second_total - 2000
    assert (
        "The new price, $119.00, reaches 2 open carts (shoppers see the change at once, checkouts too); their totals"
        f" will change: $129.00 → $119.00, ${second_total / 100:,.2f} → ${new_second / 100:,.2f}." in asked
    )


def paid_order(shop):
    shopper = shop.client()
    _, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")
    return shopper, started, order_id


def stock_gone_order(shop):
    """Paid without the handshake after the last unit went elsewhere: needs_review, nothing sold."""
    merchant, shopper = Merchant(shop), shop.client()
    merchant.patch(GRINDER, stock=1)
    fill(shopper, (GRINDER, 1))
    started = checkout(shopper)
    synced(shopper)
    merchant.patch(GRINDER, stock=0)
    assert browser_confirm(shop.sandbox.url, shop.sandbox.publishable_key, started)[0] == 200
    order = wait_for(lambda: next(iter(merchant.get("/orders?status=needs_review")), None), message="review")
    return shopper, order["id"]


def page_text(answer):
    return html.unescape(answer.get_data(as_text=True))


def test_a_refund_typed_as_5_00_is_confirmed_then_refunds_500_cents(shop, stripe_client):
    admin = shop.app.test_client()
    shopper, started, order_id = paid_order(shop)
    details = f"/admin/orders/details/?id={order_id}"
    page = admin.get(details, headers=basic())
    assert "Paid" in page_text(page) and "Amount to refund, in USD (at most $129.00)" in page_text(page)
    url, csrf = f"/admin/orders/refund/{order_id}", token(page)

    asked = admin.post(url, data={"csrf_token": csrf, "amount": "5.00"}, headers=basic())
    assert asked.status_code == 200
    assert "Refund $5.00 of $129.00 to the shopper's card?" in page_text(asked)
    assert "Yes, refund $5.00" in page_text(asked)
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]})
    assert refunds.data == [] and Merchant(shop).get(f"/orders/{order_id}")["amount_refunded"] == 0

    shown = asked.get_data(as_text=True)
    confirm = {"csrf_token": token(asked), "amount": TYPED.search(shown).group(1), "confirm": "yes"}
    assert confirm["amount"] == "5.00" and BEFORE.search(shown).group(1) == "0"
    tampered = admin.post(url, data=confirm, headers=basic(), follow_redirects=True)  # not from the page
    assert "This order changed since you confirmed" in page_text(tampered)
    confirm["refunded_before"] = "0"
    done = admin.post(url, data=confirm, headers=basic(), follow_redirects=True)
    assert f"Refunded $5.00 to the shopper's card (order {order_id})." in page_text(done)
    twice = admin.post(url, data=confirm, headers=basic(), follow_redirects=True)  # Yes clicked again
    assert "This order changed since you confirmed: $5.00 is now refunded. Nothing more" in page_text(twice)
    assert "Paid; refunded $5.00 of $129.00" in page_text(done)
    refunds = stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]})
    assert [r.amount for r in refunds.data] == [500]
    shown = shopper.get(f"/api/orders/{order_id}").get_json()  # what the shopper's order page reads
    assert (shown["status"], shown["amount_refunded"]) == ("paid", 500)
    # the next refund's question says what went before
    again = admin.post(url, data={"csrf_token": csrf, "amount": "4"}, headers=basic())
    assert "Refund $4.00 of $129.00 to the shopper's card ($5.00 was refunded before)?" in page_text(again)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Type the amount to refund, such as 5.00."),
        ("  ", "Type the amount to refund, such as 5.00."),
        ("1,19", "Use a point for decimals"),
        ("-5", "can't be negative"),
        ("5.001", "USD amounts have 2 decimals"),
        ("0", "Type an amount above zero"),
        ("129.01", "You can refund at most $129.00"),
    ],
)
def test_a_refund_without_a_sound_amount_is_refused_in_words_and_refunds_nothing(shop, stripe_client, typed, says):
    admin = shop.app.test_client()
    _, started, order_id = paid_order(shop)
    page = admin.get(f"/admin/orders/details/?id={order_id}", headers=basic())
    form = {"csrf_token": token(page), "amount": typed, "confirm": "yes"}  # even "confirmed"
    refused = admin.post(f"/admin/orders/refund/{order_id}", data=form, headers=basic(), follow_redirects=True)
    assert refused.status_code == 200 and says in page_text(refused)
    assert stripe_client.v1.refunds.list(params={"payment_intent": started["payment_intent_id"]}).data == []
    assert Merchant(shop).get(f"/orders/{order_id}")["amount_refunded"] == 0


def test_a_stock_gone_order_says_why_and_is_accepted_and_fulfilled_once_restocked(shop):
    merchant, admin, other = Merchant(shop), shop.app.test_client(), shop.client()
    shopper, order_id = stock_gone_order(shop)
    details = f"/admin/orders/details/?id={order_id}"
    page = admin.get(details, headers=basic())
    text = page_text(page)
    assert "Needs review: paid $129.00 but the stock was gone" in text and "Accept and fulfil" in text
    assert "needs_review" not in re.sub(r'(href|value|data-[a-z-]+)="[^"]*"', "", text)
    assert "Needs review: paid $129.00 but the stock was gone" in page_text(
        admin.get("/admin/orders/", headers=basic())
    )
    accept = f"/admin/orders/accept/{order_id}"

    assert admin.post(accept, headers=basic()).status_code == 302  # no CSRF token: nothing moves
    refused = admin.post(accept, data={"csrf_token": token(page)}, headers=basic(), follow_redirects=True)
    assert "The stock still doesn't cover this order (Burr grinder: 0 available, 1 needed)" in page_text(refused)
    merchant.patch(GRINDER, stock=1)
    start_and_confirm(other, (GRINDER, 1))  # another shopper's checkout holds the one unit restocked
    refused = admin.post(accept, data={"csrf_token": token(page)}, headers=basic(), follow_redirects=True)
    assert "Burr grinder: 0 available, 1 needed" in page_text(refused)
    assert merchant.get(f"/orders/{order_id}")["status"] == "needs_review" and on_hand(shop, GRINDER) == 1

    merchant.patch(GRINDER, stock=3)
    done = admin.post(accept, data={"csrf_token": token(page)}, headers=basic(), follow_redirects=True)
    assert f"Order {order_id} accepted" in page_text(done)
    order = merchant.get(f"/orders/{order_id}")
    assert order["status"] == "paid" and on_hand(shop, GRINDER) == 2  # its unit sold, the other's still held
    assert order["history"][-1]["kind"] == "review" and "accepted" in order["history"][-1]["message"]
    assert order_status(shopper, order_id, "paid")["amount_refunded"] == 0
    assert "Accept and fulfil</button>" not in page_text(done)
    again = admin.post(accept, data={"csrf_token": token(page)}, headers=basic(), follow_redirects=True)
    assert "Only an order paid in full whose stock was gone can be accepted." in page_text(again)
    assert on_hand(shop, GRINDER) == 2


def test_times_are_the_merchants_without_microseconds(shop):
    admin = shop.app.test_client()
    _, order_id = stock_gone_order(shop)
    text = page_text(admin.get(f"/admin/orders/details/?id={order_id}", headers=basic()))
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", text), text[-2000:]
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", text) and " UTC" not in text
    for raw in ("Cart Version", "Payment Intent Id", "Amount Received", "Refund Due"):
        assert raw not in text


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("1,19", "Use a point for decimals"),
        ("119.999", "USD amounts have 2 decimals"),
        ("-1", "can't be negative"),
        ("0", "The price must be from $0.01"),
        ("", "Type a price, such as 119.00."),
    ],
)
def test_a_price_that_is_not_an_amount_is_refused_in_words_and_nothing_is_saved(shop, typed, says):
    admin = shop.app.test_client()
    form = edit_form(admin, GRINDER, name="Burr grinder", unit_amount=typed, stock="", active="y")
    refused = admin.post(f"/admin/products/edit/?id={GRINDER}", data=form, headers=basic())
    assert refused.status_code == 200 and says in page_text(refused)
    assert Merchant(shop).get("/products")[GRINDER - 1]["unit_amount"] == 12900
    created = admin.post("/admin/products/new/", data={**form, "name": "Jug"}, headers=basic())
    assert created.status_code == 200 and len(Merchant(shop).get("/products")) == 8


def test_a_new_product_priced_119_costs_119_dollars(shop):
    admin = shop.app.test_client()
    page = admin.get("/admin/products/new/", headers=basic())
    form = {"csrf_token": token(page), "name": "Jug", "unit_amount": "119", "stock": "", "active": "y"}
    assert admin.post("/admin/products/new/", data=form, headers=basic()).status_code == 302
    assert Merchant(shop).get("/products")[-1]["unit_amount"] == 11900
