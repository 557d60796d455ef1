"""Issue 4's five scenarios: two tabs of one shopper in Chromium, from catalog to paid order.

Every wait is on page state (Playwright's expect), never on time.
"""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.e2e.tabs import (
    ARTIFACTS,
    DECLINED_CARD,
    ROOT,
    SEPA_IBAN_PROCESSING,
    THREE_D_SECURE_CARD,
    UPDATE_WINDOW_MS,
    VISA,
    Tab,
    money,
    side_by_side,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

README_PICTURE = ROOT / "docs" / "screenshots" / "seed-story.png"
CHECKOUT_URL = re.compile(r"/checkout$")
THANK_YOU = re.compile(r"thank", re.IGNORECASE)


@pytest.fixture
def products(server):
    """Three products of the seeded catalog: A, B, C."""
    catalog = server.products()
    assert len(catalog) >= 3, catalog
    return catalog[:3]


def item_quantities(items):
    return {item["product_id"]: item["quantity"] for item in items}


def assert_paid(tab, order_id, total, quantities):
    """The order page turns to paid without a reload, and the order charged exactly `total` for these lines."""
    expect(tab["order-status"]).to_have_text("Paid", timeout=20_000)
    expect(tab["order-title"]).to_have_text(f"Order #{order_id}")
    order = tab.order(order_id)
    assert order["status"] == "paid" and order["amount_received"] == order["amount"] == total
    assert item_quantities(order["items"]) == quantities


def test_seed_story_second_tab_changes_what_the_first_tab_pays(shopper, server, browser, products):
    a, b, _ = products
    first = Tab(shopper.new_page())
    first.buy(a["id"], 10)
    first_total = 10 * a["unit_amount"]
    first.open_checkout(first_total)
    first.mark_document()
    first.record_checkout_states()

    second = Tab(shopper.new_page())
    second.buy(b["id"], 10)
    new_total = first_total + 10 * b["unit_amount"]
    expect(second["cart-total"]).to_have_text(money(new_total))

    # I2: the first tab shows the new total by push, without reload, within moments.
    expect(first["checkout-total"]).to_have_text(money(new_total), timeout=UPDATE_WINDOW_MS)
    expect(first["checkout-amount"]).to_have_text(money(new_total))
    expect(first["pay-button"]).to_be_enabled()
    assert first.was_not_reloaded()
    states = first.checkout_states()
    behind = [state for state in states if state["amount"] != state["total"]]
    assert behind, f"the page never showed the PaymentIntent catching up with the cart: {states}"
    assert all(state["disabled"] for state in behind), f"Pay was enabled while the amount lagged: {states}"
    said_what_changed = re.compile(
        rf"^Your cart changed in another tab: \d+ × {re.escape(b['name'])} added\. Updating the amount…$"
    )
    assert all(said_what_changed.match(state["reason"]) for state in behind), states
    assert not first.page.get_by_text(THANK_YOU).count()

    picture = side_by_side(
        browser,
        [(first, "Tab 1 — checkout, updated by push"), (second, "Tab 2 — the cart after adding 10 × B")],
        ARTIFACTS / "seed-story.png",
    )
    if os.environ.get("E2E_UPDATE_SCREENSHOTS") == "1":
        README_PICTURE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, README_PICTURE)

    # The webhook is held back a little, so the order page is seen saying "processing" first (I5).
    server.sandbox("POST", "/faults", json={"webhook_delay_ms": 2500})
    first.fill_card(VISA)
    first.pay()
    order_id = first.wait_for_order_page()
    expect(first["order-status"]).to_have_text("Payment processing…")
    assert_paid(first, order_id, new_total, {a["id"]: 10, b["id"]: 10})
    expect(first["order-lines"]).to_contain_text(f"10 × {a['name']}")
    expect(first["order-lines"]).to_contain_text(f"10 × {b['name']}")
    first.screenshot("seed-story-paid")
    expect(first["cart-badge"]).to_have_text("0")
    expect(second["cart-badge"]).to_have_text("0")
    expect(second["cart-empty"]).to_be_visible()


def test_change_during_sepa_payment_is_refused_on_the_page(shoppers, make_server):
    server = make_server(STORE_CURRENCY="eur")  # SEPA Debit takes eur only, as on Stripe
    shopper = shoppers(server)
    a, b, _ = server.products()[:3]
    paying = Tab(shopper.new_page(), currency="eur")
    paying.buy(a["id"], 2)
    total = 2 * a["unit_amount"]
    paying.open_checkout(total)
    other = Tab(shopper.new_page()).open("/")

    paying.fill_sepa(SEPA_IBAN_PROCESSING)
    paying.pay()
    order_id = paying.wait_for_order_page()
    expect(paying["order-status"]).to_have_text("Payment processing…")
    paying.mark_document()

    # The other tab says so before any click: Add to cart is disabled, with a link to the order being paid.
    expect(other[f"add-to-cart-{b['id']}"]).to_be_disabled()
    expect(other["frozen-notice"]).to_be_visible()
    expect(other["frozen-order-link"]).to_have_attribute("href", f"/orders/{order_id}")
    refused = other.page.request.post("/api/cart/items", data={"product_id": b["id"], "quantity": 1})
    assert refused.status == 409 and refused.json()["error"]["code"] == "checkout_in_progress"
    expect(other["cart-badge"]).to_have_text("2")
    other.screenshot("sepa-change-refused")
    cart = other.cart()
    assert cart["status"] == "frozen"
    assert item_quantities(cart["items"]) == {a["id"]: 2}

    payment_intent = paying.order(order_id)["payment_intent_id"]
    server.sandbox("POST", f"/payment_intents/{payment_intent}/settle")
    assert_paid(paying, order_id, total, {a["id"]: 2})
    assert paying.was_not_reloaded()
    paying.screenshot("sepa-paid")


def test_declined_card_reopens_the_cart_in_both_tabs(shopper, products):
    a, _, _ = products
    paying = Tab(shopper.new_page())
    paying.buy(a["id"], 1)
    other = Tab(shopper.new_page()).open("/cart")
    paying.open_checkout(a["unit_amount"])

    paying.fill_card(DECLINED_CARD)
    paying.pay()
    # A usd store: SEPA Debit (eur only) is not offered, so the way out is another card.
    expect(paying["checkout-message"]).to_have_text("Your card was declined. Nothing was charged. Try another card.")
    expect(paying["sandbox-card-number"]).to_have_value("")  # the declined number is not left in the field
    expect(paying.page).to_have_url(CHECKOUT_URL)
    paying.expect_ready_to_pay(a["unit_amount"])  # the webhook unfroze the cart; Pay is back
    assert not paying.page.get_by_text(THANK_YOU).count()
    paying.screenshot("declined")

    expect(other["cart-frozen"]).to_be_hidden()
    expect(other[f"qty-{a['id']}"]).to_be_enabled()
    assert other.set_quantity(a["id"], 2)["status"] == "open"
    paying.expect_ready_to_pay(2 * a["unit_amount"])
    assert paying.set_quantity(a["id"], 3)["total"] == 3 * a["unit_amount"]
    expect(other["cart-total"]).to_have_text(money(3 * a["unit_amount"]))


def test_three_d_secure_failure_keeps_the_cart_and_completion_pays(shopper, products):
    _, b, _ = products
    paying = Tab(shopper.new_page())
    paying.buy(b["id"], 1)
    total = b["unit_amount"]
    paying.open_checkout(total)

    paying.fill_card(THREE_D_SECURE_CARD)
    paying.pay()
    expect(paying["sandbox-3ds-modal"]).to_be_visible()
    expect(paying["pay-button"]).to_be_disabled()
    paying["sandbox-3ds-fail"].click()
    expect(paying["checkout-message"]).to_have_text(re.compile(r"\S"))
    paying.expect_ready_to_pay(total)
    assert paying.cart()["status"] == "open"
    paying.screenshot("3ds-failed")

    paying.pay()
    expect(paying["sandbox-3ds-modal"]).to_be_visible()
    paying.screenshot("3ds-challenge")
    paying["sandbox-3ds-complete"].click()
    order_id = paying.wait_for_order_page()
    assert_paid(paying, order_id, total, {b["id"]: 1})


def test_stale_tab_cannot_pay_the_old_amount(shopper, products):
    a, _, _ = products
    stale = Tab(shopper.new_page())
    stale.buy(a["id"], 1)
    stale.open_checkout(a["unit_amount"])
    stale.fill_card(VISA)
    other = Tab(shopper.new_page()).open("/cart")

    stale.miss_live_updates()
    new_total = 3 * a["unit_amount"]
    assert other.set_quantity(a["id"], 3)["total"] == new_total
    expect(stale["checkout-total"]).to_have_text(money(a["unit_amount"]))  # it missed the push

    stale.pay()
    expect(stale["checkout-message"]).to_have_text(
        f"Your cart changed in another tab — the amount to pay is now {money(new_total)}. "
        "Check it, then press Pay again."
    )
    stale.resume_live_updates()
    expect(stale["checkout-total"]).to_have_text(money(new_total))
    expect(stale.page).to_have_url(CHECKOUT_URL)
    stale.screenshot("stale-tab-refused")
    assert stale.cart()["status"] == "open"

    stale.expect_ready_to_pay(new_total)
    stale.pay()
    order_id = stale.wait_for_order_page()
    assert_paid(stale, order_id, new_total, {a["id"]: 3})
