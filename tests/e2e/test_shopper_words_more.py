"""Issue 22, the rest for the shopper, in Chromium at 1280×800 and 390×844: the amount shown once (on Pay)
with the totals only while they differ, a tab opened after the payment linking to the order, and the line
under Pay while the shopper's own 3-D Secure challenge is open.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.pages import assert_page_is_sound
from tests.e2e.tabs import THREE_D_SECURE_CARD, VISA, Tab, money

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])

# Every state of the summary's totals: shown or not, and what they say.
RECORD_TOTALS = """() => {
  const q = (id) => document.querySelector(`[data-testid=${id}]`);
  window.__totals = [];
  const snap = () => {
    const totals = q("checkout-totals");
    const state = {shown: !totals.hidden && totals.offsetParent !== null, labels: totals.innerText,
                   total: q("checkout-total").textContent, amount: q("checkout-amount").textContent,
                   disabled: q("pay-button").disabled};
    const last = window.__totals[window.__totals.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(state)) window.__totals.push(state);
  };
  new MutationObserver(snap).observe(document.querySelector("main"),
    {subtree: true, childList: true, characterData: true, attributes: true});
  snap();
}"""


def times_shown(tab, text):
    """How often `text` is on screen in the page's main part (hidden elements have no innerText)."""
    return tab.page.locator("main").inner_text().count(text)


@SIZES
def test_the_amount_is_shown_once_on_pay_and_the_totals_only_while_they_differ(server, shoppers, viewport):
    a, b, c = server.products()[:3]
    shopper = shoppers(server, viewport)
    checkout = Tab(shopper.new_page())
    checkout.buy(a["id"], 1)
    checkout.add_to_cart(b["id"])
    total = a["unit_amount"] + b["unit_amount"]
    checkout.open_checkout(total)

    expect(checkout["pay-button"]).to_have_text(f"Pay {money(total)}")
    assert times_shown(checkout, money(total)) == 1, checkout.page.locator("main").inner_text()
    expect(checkout["checkout-totals"]).to_be_hidden()
    expect(checkout["pay-status"]).to_have_text("Ready to pay.")
    assert_page_is_sound(checkout.page, "checkout, the amount once")

    # Another tab adds a product: while Stripe catches up the summary shows both, labelled, and Pay waits.
    checkout.page.evaluate(RECORD_TOTALS)
    other = Tab(shopper.new_page())
    other.open("/")
    other.add_to_cart(c["id"])
    new_total = total + c["unit_amount"]
    checkout.expect_ready_to_pay(new_total)
    states = checkout.page.evaluate("window.__totals")
    behind = [s for s in states if s["amount"] == "Updating…"]
    assert behind, f"the page never showed the PaymentIntent catching up: {states}"
    for state in behind:
        assert state["shown"] and state["disabled"], states
        assert "New cart total" in state["labels"] and "Amount to be charged" in state["labels"], states
    assert not [s for s in states if s["shown"] and s["amount"] == s["total"]], f"the same amount twice: {states}"
    expect(checkout["checkout-totals"]).to_be_hidden()
    checkout["changes-ok"].click()  # the change note names the old and new totals, as news, until seen
    assert times_shown(checkout, money(new_total)) == 1, checkout.page.locator("main").inner_text()


@SIZES
def test_a_tab_opened_after_the_payment_links_to_the_order(server, shoppers, viewport):
    a = server.products()[0]
    shopper = shoppers(server, viewport)
    tab = Tab(shopper.new_page())
    tab.buy(a["id"], 1)
    tab.open_checkout(a["unit_amount"])
    tab.fill_card(VISA)
    tab.pay()
    order_id = tab.wait_for_order_page()
    expect(tab["order-status"]).to_have_text("Paid", timeout=20_000)

    later = Tab(shopper.new_page()).open("/cart")  # opened after the payment, same session
    expect(later["cart-paid"]).to_be_visible()
    expect(later["cart-paid"]).to_have_text(f"Your last order: #{order_id}, paid — see it.")
    expect(later["cart-paid-link"]).to_have_attribute("href", f"/orders/{order_id}")
    expect(later["cart-empty"]).to_be_visible()
    assert_page_is_sound(later.page, "cart opened after the payment")

    later.open("/checkout")
    expect(later["checkout-paid"]).to_be_visible()
    expect(later["checkout-paid"]).to_have_text(f"Your last order: #{order_id}, paid — see it.")
    expect(later["checkout-paid-link"]).to_have_attribute("href", f"/orders/{order_id}")
    assert_page_is_sound(later.page, "checkout opened after the payment")
    later["checkout-paid-link"].click()
    expect(later.page).to_have_url(re.compile(rf"/orders/{order_id}$"))


@SIZES
def test_while_the_shoppers_own_3ds_challenge_is_open_pay_says_the_bank_waits(server, shoppers, viewport):
    a = server.products()[0]
    tab = Tab(shoppers(server, viewport).new_page())
    tab.buy(a["id"], 1)
    tab.open_checkout(a["unit_amount"])
    tab.fill_card(THREE_D_SECURE_CARD)
    tab.pay()
    expect(tab["sandbox-3ds-modal"]).to_be_visible()
    expect(tab["pay-status"]).to_have_text("Waiting for your bank's confirmation")
    expect(tab["pay-button"]).to_be_disabled()
    tab["sandbox-3ds-complete"].click()
    tab.wait_for_order_page()
    expect(tab["order-status"]).to_have_text("Paid", timeout=20_000)
