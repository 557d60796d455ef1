"""The shopper's pages at desktop and phone sizes: they fit, read clearly, pass axe-core and the CSP.

Every wait is on page state (Playwright's expect), never on time.
"""

import os
import re
import shutil

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.pages import assert_page_is_sound
from tests.e2e.tabs import ROOT, SEPA_IBAN_PROCESSING, VISA, Tab, money

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
SCREENSHOTS = ROOT / "docs" / "screenshots"


def screenshot_for_readme(tab, name):
    """Always kept under test-artifacts; copied into docs/ when E2E_UPDATE_SCREENSHOTS=1."""
    picture = tab.screenshot(name)
    if os.environ.get("E2E_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, SCREENSHOTS / f"{name}.png")


@SIZES
def test_every_page_fits_and_passes_axe(server, shoppers, viewport):
    products = server.products()
    a, b = products[0], products[1]
    tab = Tab(shoppers(server, viewport).new_page())

    tab.open("/checkout")
    expect(tab["checkout-empty"]).to_be_visible()
    expect(tab["checkout-empty"]).to_contain_text("Your cart is empty")
    expect(tab["checkout-panels"]).to_be_hidden()
    assert_page_is_sound(tab.page, "empty checkout")

    tab.open("/")
    expect(tab[f"add-to-cart-{a['id']}"]).to_be_visible()
    assert_page_is_sound(tab.page, "catalog")
    tab.add_to_cart(a["id"])
    tab.add_to_cart(b["id"])

    tab.open("/cart")
    expect(tab[f"qty-{a['id']}"]).to_have_value("1")
    assert_page_is_sound(tab.page, "cart")

    total = a["unit_amount"] + b["unit_amount"]
    tab.open_checkout(total)
    expect(tab.page.get_by_text(re.compile("Cart version"))).to_have_count(0)
    tab.fill_card(VISA)
    assert_page_is_sound(tab.page, "checkout")
    tab.page.evaluate("document.activeElement && document.activeElement.blur()")
    screenshot_for_readme(tab, "checkout-" + ("phone" if viewport is PHONE else "desktop"))
    if viewport is PHONE:  # the narrowest phone the store supports
        tab.page.set_viewport_size({"width": 360, "height": 740})
        assert_page_is_sound(tab.page, "checkout at 360 px")
        tab.page.set_viewport_size(viewport)

    tab.pay()
    order_id = tab.wait_for_order_page()
    expect(tab["order-status"]).to_have_text("Paid", timeout=20_000)
    expect(tab["order-title"]).to_have_text(f"Order #{order_id}")
    assert tab.page.get_by_text(f"#{order_id}").count() == 1, "the order number is said once"
    assert_page_is_sound(tab.page, "order")

    tab.page.goto("/no-such-page")
    expect(tab["error-page"]).to_be_visible()
    assert_page_is_sound(tab.page, "404")

    tab.page.goto("/orders/999999")
    expect(tab["order-title"]).to_have_text("Order not found")
    expect(tab["order-status"]).to_contain_text("couldn't find this order")
    assert tab.page.get_by_text("#999999").count() == 0
    assert_page_is_sound(tab.page, "unknown order")


def test_html_errors_favicon_and_content_security_policy(server, shoppers):
    missing = requests.get(f"{server.url}/no-such-page", timeout=5)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert "We can't find that page" in missing.text and "Harbour Coffee Co." in missing.text
    api_missing = requests.get(f"{server.url}/api/no-such-thing", timeout=5)
    assert api_missing.status_code == 404 and api_missing.json()["error"]["code"] == "not_found"

    icon = requests.get(f"{server.url}/favicon.ico", timeout=5)
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file

    policy = requests.get(f"{server.url}/checkout", timeout=5).headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    for name in ("script-src", "frame-src", "connect-src"):
        assert server.sandbox_url in directives[name].split(), (name, policy)
    assert "https://js.stripe.com" in directives["script-src"].split()
    assert "https://hooks.stripe.com" in directives["frame-src"].split()
    assert "https://api.stripe.com" in directives["connect-src"].split()
    assert "'unsafe-inline'" not in policy and "*" not in directives["script-src"].replace("*.js.stripe.com", "")
    assert "Content-Security-Policy" not in requests.get(f"{server.url}/api/cart", timeout=5).headers

    tab = Tab(shoppers(server).new_page())
    tab.open("/")
    expect(tab.page.locator("link[rel=icon]")).to_have_attribute("href", "/favicon.ico")


@pytest.fixture
def eur_server(make_server):
    """A store selling in eur: SEPA Debit takes eur only, as on Stripe."""
    return make_server(STORE_CURRENCY="eur")


@SIZES
def test_frozen_cart_is_visible_on_every_page_before_a_click(eur_server, shoppers, viewport):
    server = eur_server
    a, b = server.products()[:2]
    shopper = shoppers(server, viewport)
    paying = Tab(shopper.new_page(), currency="eur")
    paying.buy(a["id"], 1)
    paying.open_checkout(a["unit_amount"])
    catalog = Tab(shopper.new_page()).open("/")
    cart = Tab(shopper.new_page()).open("/cart")
    expect(catalog[f"add-to-cart-{b['id']}"]).to_be_enabled()
    expect(cart["go-to-checkout"]).to_have_attribute("aria-disabled", "false")

    paying.fill_sepa(SEPA_IBAN_PROCESSING)
    paying.pay()
    order_id = paying.wait_for_order_page()
    expect(paying["order-status"]).to_have_text("Payment processing…")

    for tab in (catalog, cart):
        expect(tab["frozen-notice"]).to_be_visible()
        expect(tab["frozen-order-link"]).to_have_attribute("href", f"/orders/{order_id}")
    expect(catalog[f"add-to-cart-{b['id']}"]).to_be_disabled()
    expect(catalog["catalog-frozen"]).to_be_visible()
    expect(cart["go-to-checkout"]).to_have_attribute("aria-disabled", "true")
    expect(cart["cart-frozen"]).to_be_visible()
    expect(cart[f"qty-{a['id']}"]).to_be_disabled()
    assert_page_is_sound(catalog.page, "frozen catalog")
    assert_page_is_sound(cart.page, "frozen cart")

    # A checkout opened now explains the payment in flight; money is moving, so it offers no cancel.
    checkout = Tab(shopper.new_page()).open("/checkout")
    expect(checkout["payment-in-flight"]).to_be_visible()
    expect(checkout["in-flight-order-link"]).to_have_attribute("href", f"/orders/{order_id}")
    expect(checkout["in-flight-text"]).to_contain_text("processing")
    expect(checkout["cancel-payment"]).to_be_hidden()
    expect(checkout["pay-button"]).to_be_disabled()
    assert_page_is_sound(checkout.page, "frozen checkout")

    # The order page itself does not point to itself.
    expect(paying["frozen-notice"]).to_be_hidden()
    catalog["frozen-order-link"].click()
    expect(catalog.page).to_have_url(re.compile(rf"/orders/{order_id}$"))

    payment_intent = paying.order(order_id)["payment_intent_id"]
    server.sandbox("POST", f"/payment_intents/{payment_intent}/settle")
    expect(paying["order-status"]).to_have_text("Paid", timeout=20_000)
    expect(cart["frozen-notice"]).to_be_hidden()
    expect(cart["go-to-checkout"]).to_have_attribute("aria-disabled", "true")  # the paid items left the cart
    expect(cart["cart-empty"]).to_be_visible()


def test_money_uses_stripes_currency_exponents(browser):
    page = browser.new_page()
    try:
        page.add_script_tag(path=str(ROOT / "static" / "js" / "money.js"))
        shown = page.evaluate("""() => ({
            usd: Money.format(12345, "usd", "en-US"),
            jpy: Money.format(500, "jpy", "en-US"),
            isk: Money.format(10000, "isk", "en-US"),
            huf: Money.format(12345, "huf", "en-US"),
            bhd: Money.format(12345, "bhd", "en-US"),
            krw: Money.format(1000, "krw", "en-US"),
            exponents: ["usd", "jpy", "isk", "huf", "bhd", "kwd", "vnd"].map(Money.exponent),
        })""")
    finally:
        page.close()
    assert shown["usd"] == "$123.45"
    assert shown["jpy"] == "¥500"
    shown = {key: value.replace("\xa0", " ") if isinstance(value, str) else value for key, value in shown.items()}
    assert shown["isk"] == "ISK 100"  # two-decimal at Stripe: 10000 is 100 krónur, not 10,000
    assert shown["huf"] == "HUF 123.45"
    assert shown["bhd"] == "BHD 12.345"
    assert shown["krw"] == "₩1,000"
    assert shown["exponents"] == [2, 0, 2, 2, 3, 3, 0]
    assert money(12345) == shown["usd"]


SEPA_IBAN_FAILS = "AT861904300235473202"


@SIZES
def test_order_page_says_what_was_bought_when_how_and_what_happens_next(eur_server, shoppers, viewport):
    server = eur_server  # SEPA Debit needs an eur store
    a, b = server.products()[:2]
    shopper = shoppers(server, viewport)
    card = Tab(shopper.new_page(), currency="eur")
    card.buy(a["id"], 2)
    card.open_checkout(2 * a["unit_amount"])
    card.fill_card(VISA)
    card.pay()
    paid_id = card.wait_for_order_page()
    expect(card["order-status"]).to_have_text("Paid", timeout=20_000)
    expect(card["order-payment-method"]).to_have_text("Visa ending in 4242")
    expect(card["order-date"]).to_have_text(re.compile(r"\b20\d\d\b"))
    expect(card["order-next"]).to_contain_text("Your payment was received")
    expect(card[f"order-line-{a['id']}"]).to_contain_text(f"2 × {a['name']}")
    expect(card["order-amount"]).to_have_text(money(2 * a["unit_amount"], "eur"))
    assert_page_is_sound(card.page, "paid order")

    # Refunded at Stripe: the order page follows and says when the money comes back.
    payment_intent = card.order(paid_id)["payment_intent_id"]
    refund = requests.post(
        f"{server.sandbox_url}/v1/refunds",
        data={"payment_intent": payment_intent},
        headers={"Authorization": "Bearer sk_test_sandbox"},
        timeout=10,
    )
    assert refund.ok, refund.text
    expect(card["order-status"]).to_have_text("Refunded", timeout=20_000)
    expect(card["order-next"]).to_contain_text(f"We refunded {money(2 * a['unit_amount'], 'eur')}")

    # A SEPA debit that is still processing says a bank debit takes days; when it fails, why, and the way back.
    debit = Tab(shopper.new_page(), currency="eur")
    debit.buy(b["id"], 1)
    debit.open_checkout(b["unit_amount"])
    debit.fill_sepa(SEPA_IBAN_FAILS)
    debit.pay()
    failing_id = debit.wait_for_order_page()
    expect(debit["order-status"]).to_have_text("Payment processing…")
    expect(debit["order-payment-method"]).to_have_text(
        "SEPA Direct Debit from the account ending in 3202", timeout=20_000
    )
    expect(debit["order-next"]).to_contain_text("A bank debit can take several business days")
    assert_page_is_sound(debit.page, "processing order")
    server.sandbox("POST", f"/payment_intents/{debit.order(failing_id)['payment_intent_id']}/settle")
    expect(debit["order-status"]).to_have_text("Payment failed — your cart is back", timeout=20_000)
    expect(debit["order-next"]).to_contain_text("your bank said there was not enough money on the account")
    expect(debit["back-to-cart"]).to_have_class(re.compile("button--primary"))
    expect(debit["pay-again"]).to_be_visible()
    assert_page_is_sound(debit.page, "failed order")
    debit["back-to-cart"].click()
    expect(debit[f"qty-{b['id']}"]).to_have_value("1")


@pytest.mark.parametrize(
    "status, says",
    [
        ("needs_review", "a person is checking it"),
        ("awaiting_payment", "waiting for the payment provider"),
    ],
)
def test_order_page_wording_for_states_a_scenario_rarely_reaches(server, shoppers, status, says):
    """Statuses that need a mismatched amount (needs_review) or a card still pending, read from a stubbed answer."""
    tab = Tab(shoppers(server).new_page())
    order = {
        "id": 7,
        "status": status,
        "amount": 2400,
        "amount_received": 2600 if status == "needs_review" else 0,
        "amount_refunded": 0,
        "currency": "usd",
        "items": [{"product_id": 1, "name": "Beans", "unit_amount": 2400, "quantity": 1, "line_total": 2400}],
        "payment_intent_id": "pi_x",
        "cart_version": 2,
        "created_at": "2026-12-01T10:00:00Z",
        "payment_method": {"type": "card", "brand": "mastercard", "last4": "4444"},
        "failure_reason": None,
    }
    tab.page.route("**/api/orders/7", lambda route: route.fulfill(json=order))
    tab.page.goto("/orders/7")
    expect(tab["order-next"]).to_contain_text(says)
    expect(tab["order-payment-method"]).to_have_text("Mastercard ending in 4444")
    expect(tab["order-date"]).to_contain_text("December 1, 2026")
    expect(tab["order-title"]).to_have_text("Order #7")
    assert_page_is_sound(tab.page, f"{status} order")
