"""The checkout page when a reservation limit refuses the handshake: the shopper reads why, nothing is frozen,
and Pay works again once the other checkout is gone (issue 23, point 7), in Chromium against `wsgi.py`."""

import pytest
from playwright.sync_api import expect

from tests.e2e.tabs import THREE_D_SECURE_CARD, VISA, Tab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def test_a_second_checkout_from_one_address_over_the_limit_is_explained_and_changes_nothing(make_server, shoppers):
    server = make_server(RESERVE_FREEZES_PER_ADDRESS="1")
    a = server.products()[0]
    first = Tab(shoppers(server).new_page())  # stopped at 3-D Secure: its cart stays frozen
    first.buy(a["id"], 1)
    first.open_checkout(a["unit_amount"])
    first.fill_card(THREE_D_SECURE_CARD)
    first.pay()
    expect(first["sandbox-3ds-modal"]).to_be_visible()

    second = Tab(shoppers(server).new_page())  # another shopper from the same address
    second.buy(a["id"], 2)
    second.open_checkout(2 * a["unit_amount"])
    second.fill_card(VISA)
    second.pay()
    message = second["checkout-message"]
    expect(message).to_contain_text("You already have 1 checkout waiting for payment")
    expect(second["pay-button"]).to_be_enabled()
    assert second.cart()["status"] == "open"

    assert first.page.request.post("/api/checkout/cancel").ok  # the first shopper gives up
    second.pay()
    second.wait_for_order_page()
