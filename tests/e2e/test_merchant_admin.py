"""The merchant's side in Chromium: a price change reaching an open checkout tab, a refund from /admin."""

import os
import re
import shutil

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.tabs import ARTIFACTS, ROOT, VISA, Tab, money
from tests.shopping import browser_confirm

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ADMIN_LINE = re.compile(r"Admin: \S+ \(user admin, password (\S+)\)")
ADMIN_PICTURE = ROOT / "docs" / "screenshots" / "admin-order.png"


def admin_password(server):
    """The password wsgi.py generated and printed at start (ADMIN_PASSWORD unset)."""
    found = ADMIN_LINE.search(server.log_tail(200))
    assert found, server.log_tail()
    return found.group(1)


def grinder(server):
    return next(p for p in server.products() if p["name"] == "Burr grinder")


def patch(server, product_id, **changes):
    answer = requests.patch(
        f"{server.url}/admin/api/products/{product_id}",
        json=changes,
        auth=("admin", admin_password(server)),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_price_change_reaches_an_open_checkout_tab_and_the_payment_charges_it(shopper, server):
    product = grinder(server)
    tab = Tab(shopper.new_page())
    tab.buy(product["id"], 1)
    tab.open_checkout(12900)
    tab.mark_document()

    patch(server, product["id"], unit_amount=11900)

    expect(tab["changes-text"]).to_contain_text("The price of the burr grinder changed from $129.00 to $119.00.")
    tab.expect_ready_to_pay(11900)
    assert tab.was_not_reloaded()
    tab.fill_card(VISA)
    tab.pay()
    order_id = tab.wait_for_order_page()
    expect(tab["order-status"]).to_have_text("Paid", timeout=20_000)
    order = tab.order(order_id)
    assert order["amount"] == order["amount_received"] == 11900


def test_the_merchant_refunds_a_needs_review_order_from_admin(shopper, server, browser):
    product = grinder(server)
    patch(server, product["id"], stock=1)
    tab = Tab(shopper.new_page())
    tab.buy(product["id"], 1)
    tab.open_checkout(12900)
    patch(server, product["id"], stock=0)  # the last unit went elsewhere before this shopper paid
    checkout = tab.page.request.post("/api/checkout").json()
    status, paid = browser_confirm(server.sandbox_url, "pk_test_sandbox", checkout)  # no handshake
    assert status == 200 and paid["status"] == "succeeded", paid

    context = browser.new_context(
        base_url=server.url,
        viewport={"width": 1100, "height": 820},
        http_credentials={"username": "admin", "password": admin_password(server)},
    )
    try:
        page = context.new_page()
        page.goto("/admin/orders/")
        expect(page.get_by_role("link", name="needs_review (1)")).to_be_visible(timeout=15_000)
        first_row = page.locator("table.model-list tbody tr").first
        expect(first_row).to_contain_text("needs_review")
        first_row.locator("a[href*='details']").click()
        expect(page.get_by_test_id("order-history")).to_contain_text("order is needs_review")
        page.get_by_test_id("refund-button").click()
        expect(
            page.get_by_text(re.compile(r"Refunded: order \d+ now has \$129\.00 refunded \(refunded\)"))
        ).to_be_visible()
        expect(page.get_by_test_id("order-history")).to_contain_text(f"merchant refunded {money(12900)}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "admin-order.png", full_page=True)
        if os.environ.get("E2E_UPDATE_SCREENSHOTS") == "1":  # a test run leaves the committed picture alone
            shutil.copyfile(ARTIFACTS / "admin-order.png", ADMIN_PICTURE)
    finally:
        context.close()
    orders = requests.get(f"{server.url}/admin/api/orders", auth=("admin", admin_password(server)), timeout=10).json()
    assert orders[0]["status"] == "refunded" and orders[0]["amount_refunded"] == 12900
