"""A shopper's browser tab on the storefront, in the words of the pages' selectors."""

import base64
import re
from pathlib import Path

from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
ORDER_URL = re.compile(r"/orders/(\d+)$")
UPDATE_WINDOW_MS = 2_000  # I2: a change in one tab reaches the others "within moments"

VISA = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_SECURE_CARD = "4000002500003155"
SEPA_IBAN_PROCESSING = "AT611904300234573201"

# Records every state the checkout panel passes through, so a test can check the Pay button in each one.
RECORD_CHECKOUT_STATES = """() => {
  const q = (id) => document.querySelector(`[data-testid=${id}]`);
  window.__checkoutStates = [];
  const snap = () => {
    const state = {total: q("checkout-total").textContent, amount: q("checkout-amount").textContent,
                   disabled: q("pay-button").disabled, reason: q("pay-status").textContent};
    const last = window.__checkoutStates[window.__checkoutStates.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(state)) window.__checkoutStates.push(state);
  };
  new MutationObserver(snap).observe(document.querySelector("main"),
    {subtree: true, childList: true, characterData: true, attributes: true});
  snap();
}"""


SIGNS = {"usd": "$", "eur": "€"}


def money(cents, currency="usd"):
    """Dollars (or euros) as the pages show them (Intl.NumberFormat, en-US)."""
    return f"{SIGNS[currency]}{cents / 100:,.2f}"


class Tab:
    """One page of a shopper's browser context."""

    def __init__(self, page: Page, currency="usd"):
        self.page = page
        self.currency = currency  # the store's: SEPA Debit needs an eur store, as on Stripe

    def __getitem__(self, testid):
        return self.page.get_by_test_id(testid)

    def open(self, path):
        self.page.goto(path)
        # store.js has read the cart once the badge names the cart version it shows.
        expect(self["cart-badge"]).to_have_attribute("data-cart-version", re.compile(r"^\d+$"))
        return self

    def badge_count(self):
        return int(self["cart-badge"].text_content())

    def add_to_cart(self, product_id):
        """Press a product's add button on the catalog; waits for the answer to reach the badge."""
        if not self.page.url.endswith("/"):
            self.open("/")
        before = self.badge_count()
        self[f"add-to-cart-{product_id}"].click()
        expect(self["cart-badge"]).to_have_text(str(before + 1))

    def set_quantity(self, product_id, quantity):
        """Change a line's quantity on the cart page (the input's change event sends the PUT)."""
        if not self.page.url.endswith("/cart"):
            self.open("/cart")
        field = self[f"qty-{product_id}"]
        field.fill(str(quantity))
        with self.page.expect_response(lambda r: r.request.method == "PUT" and "/api/cart/items/" in r.url) as answer:
            field.press("Tab")
        assert answer.value.ok, answer.value.text()
        return answer.value.json()

    def buy(self, product_id, quantity):
        """Put `quantity` of a product in the cart: add it from the catalog, then set the quantity."""
        self.open("/")
        self.add_to_cart(product_id)
        if quantity != 1:
            self.set_quantity(product_id, quantity)

    def open_checkout(self, expected_total):
        """Open checkout and wait until Pay is ready for `expected_total` (cents)."""
        self.open("/checkout")
        self.expect_ready_to_pay(expected_total)
        return self

    def expect_ready_to_pay(self, total, timeout=10_000):
        expect(self["checkout-total"]).to_have_text(money(total, self.currency), timeout=timeout)
        expect(self["checkout-amount"]).to_have_text(money(total, self.currency), timeout=timeout)
        expect(self["pay-button"]).to_be_enabled(timeout=timeout)

    def fill_card(self, number):
        self["sandbox-method-card"].check()
        self["sandbox-card-number"].fill(number)

    def fill_sepa(self, iban):
        self["sandbox-method-sepa"].check()
        self["sandbox-iban"].fill(iban)

    def pay(self):
        self["pay-button"].click()

    def wait_for_order_page(self):
        """The order id of the order page the checkout went to."""
        expect(self.page).to_have_url(ORDER_URL, timeout=15_000)
        return int(ORDER_URL.search(self.page.url).group(1))

    def order(self, order_id):
        """GET /api/orders/<id> with this tab's cookies."""
        answer = self.page.request.get(f"/api/orders/{order_id}")
        assert answer.ok, answer.text()
        return answer.json()

    def cart(self):
        answer = self.page.request.get("/api/cart")
        assert answer.ok, answer.text()
        return answer.json()

    def record_checkout_states(self):
        self.page.evaluate(RECORD_CHECKOUT_STATES)

    def checkout_states(self):
        return self.page.evaluate("window.__checkoutStates")

    def mark_document(self):
        """Tag this document, so a test can tell later that the page was not reloaded."""
        self.page.evaluate("window.__notReloaded = true")

    def was_not_reloaded(self):
        return self.page.evaluate("window.__notReloaded === true")

    def miss_live_updates(self):
        """Simulate pushes lost on the way (the tab still believes it is connected)."""
        self.page.evaluate("Store.socket().off('cart')")

    def resume_live_updates(self):
        """Pushes arrive again, and the tab catches up on what it missed, as a reconnected tab does (the
        server sends the cart on connect): a push it lost stays lost otherwise, whenever it was sent."""
        self.page.evaluate("() => { Store.socket().on('cart', Store.acceptCart); return Store.refreshCart(); }")

    def disconnect_live_updates(self):
        """Simulate a tab that went offline: its socket stops, with no automatic reconnection."""
        self.page.evaluate("Store.socket().disconnect()")
        self.page.wait_for_function("!Store.socket().connected")

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


SIDE_BY_SIDE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; padding: 24px; background: #d9dde5; font-family: system-ui, sans-serif; }}
.row {{ display: flex; gap: 24px; align-items: flex-start; }}
figure {{ margin: 0; flex: 1; }}
figcaption {{ font-weight: 600; margin: 0 0 8px; color: #1d2433; }}
img {{ width: 100%; border-radius: 8px; box-shadow: 0 2px 12px rgba(0,0,0,.18); display: block; }}
</style></head><body><div class="row">{figures}</div></body></html>"""


def side_by_side(browser, tabs_with_captions, path):
    """Screenshot several tabs and lay them out in one picture (no image library needed)."""
    figures = []
    for tab, caption in tabs_with_captions:
        tab.page.evaluate("document.activeElement && document.activeElement.blur()")
        data = base64.b64encode(tab.page.screenshot()).decode()
        figures.append(f'<figure><figcaption>{caption}</figcaption><img src="data:image/png;base64,{data}"></figure>')
    width = sum(tab.page.viewport_size["width"] for tab, _ in tabs_with_captions) + 24 * (len(figures) + 1)
    canvas = browser.new_page(viewport={"width": width, "height": 600}, device_scale_factor=1)
    try:
        canvas.set_content(SIDE_BY_SIDE.format(figures="".join(figures)))
        canvas.wait_for_function("[...document.images].every((img) => img.complete)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        canvas.screenshot(path=path, full_page=True)
    finally:
        canvas.close()
    return path
