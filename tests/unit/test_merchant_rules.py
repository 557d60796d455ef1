"""The merchant's pure rules: price versions and notices, reservation, sale, release, product edits, refunds."""

import pytest

from storefront.cart import domain as cart
from storefront.errors import Conflict, InvalidInput, OutOfStock
from storefront.merchant import domain

GRINDER = cart.Line(4, "Burr grinder", 12900, 1)
BEANS = cart.Line(1, "Single-origin coffee beans, 1 kg", 2400, 2)


def test_a_new_price_gives_the_line_the_new_price_and_a_notice_naming_both():
    lines, notices = cart.repriced((GRINDER, BEANS), {4: (11900, True), 1: (2400, True)}, "usd")
    assert lines == (cart.Line(4, "Burr grinder", 11900, 1), BEANS) and cart.total(lines) == 11900 + 4800
    assert notices == [
        {
            "code": "price_changed",
            "product_id": 4,
            "name": "Burr grinder",
            "old_unit_amount": 12900,
            "new_unit_amount": 11900,
            "message": "The price of the burr grinder changed from $129.00 to $119.00.",
        }
    ]


def test_unchanged_prices_make_no_new_version():
    assert cart.repriced((GRINDER, BEANS), {4: (12900, True), 1: (2400, True)}, "usd") == ((GRINDER, BEANS), [])


def test_a_withdrawn_or_deleted_product_leaves_the_cart_with_a_notice():
    lines, notices = cart.repriced((GRINDER, BEANS), {4: (12900, False)}, "usd")
    assert lines == ()
    assert [n["code"] for n in notices] == ["product_unavailable", "product_unavailable"]
    assert notices[0]["message"] == "The burr grinder is no longer available and was removed from your cart."


@pytest.mark.parametrize(
    ("amount", "currency", "shown"), [(12900, "usd", "$129.00"), (123456, "eur", "€1,234.56"), (5, "chf", "0.05 CHF")]
)
def test_money_reads_as_a_shopper_reads_it(amount, currency, shown):
    assert cart.money(amount, currency) == shown


def test_names_keep_their_capitals_when_they_are_acronyms():
    line = cart.Line(9, "USB scale", 100, 1)
    assert cart.price_notice(line, 200, "usd")["message"].startswith("The price of the USB scale changed")


def test_a_line_may_grow_only_to_what_is_available():
    tracked = cart.Line(4, "Burr grinder", 12900, 0, available=2)
    cart.ensure_available(tracked, 2)
    with pytest.raises(OutOfStock) as refused:
        cart.ensure_available(tracked, 3)
    assert refused.value.extra == {"out_of_stock": {"product_id": 4, "name": "Burr grinder", "available": 2}}
    assert str(refused.value) == "Only 2 of the burr grinder are left."
    cart.ensure_available(cart.Line(4, "Burr grinder", 12900, 0, available=None), 99)  # not tracked


def test_reservation_holds_tracked_units_and_refuses_naming_the_short_product():
    wanted = domain.wanted_units([{"product_id": 4, "quantity": 1}, {"product_id": 1, "quantity": 5}])
    assert domain.reservation(wanted, {4: 3, 1: None}, {4: 2}, {}) == {4: 1}
    with pytest.raises(OutOfStock) as refused:
        domain.reservation(wanted, {4: 3, 1: None}, {4: 3}, {4: "Burr grinder"})
    assert refused.value.extra["out_of_stock"]["available"] == 0
    assert str(refused.value) == "The burr grinder is out of stock."


def test_shortfall_is_the_first_short_product_by_id():
    assert domain.shortfall({2: 5, 1: 5}, {1: 4, 2: 4}, {}) == (1, 4)
    assert domain.shortfall({1: 1}, {1: 1}, {1: 2}) == (1, 0)  # never a negative count
    assert domain.shortfall({1: 1}, {1: 5}, {1: 4}) is None


def test_a_paid_order_sells_its_reservation_and_takes_the_rest_only_if_it_is_there():
    wanted = {4: 2, 1: 1}
    assert domain.sale(wanted, {4: 2}, {4: 2, 1: None}, {}) == {4: 2}
    assert domain.sale(wanted, {}, {4: 2, 1: None}, {4: 1}) is None  # another cart holds one of the two
    assert domain.sale(wanted, {}, {4: 3, 1: 1}, {4: 1}) == {4: 2, 1: 1}
    assert domain.sale({4: 1}, {}, {4: 0}, {}) is None


def test_stock_never_drops_below_what_is_reserved():
    domain.check_stock_level(2, 2)
    domain.check_stock_level(None, 5)
    with pytest.raises(Conflict):
        domain.check_stock_level(1, 2)


def test_product_edits_are_parsed_strictly():
    assert domain.parse_product({"name": " Jug ", "unit_amount": 100}, creating=True) == {
        "name": "Jug",
        "unit_amount": 100,
    }
    assert domain.parse_product({"stock": None, "active": False}, creating=False) == {"stock": None, "active": False}
    for body in (
        {"unit_amount": 1},
        {"name": "x", "unit_amount": 0},
        {"name": "x", "unit_amount": 1.5},
        {"name": "x" * 121, "unit_amount": 1},
        {"name": "x", "unit_amount": 1, "currency": "eur"},
    ):
        with pytest.raises(InvalidInput):
            domain.parse_product(body, creating=True)
    for body in ({"stock": -1}, {"stock": True}, {"active": 1}, {"unit_amount": 10**9}, []):
        with pytest.raises(InvalidInput):
            domain.parse_product(body, creating=False)


def test_a_refund_is_by_default_all_that_is_left_and_never_more():
    assert domain.refund_amount(None, 5000, 1000) == 4000
    assert domain.refund_amount(4000, 5000, 1000) == 4000
    for bad in (0, -1, 4001, "10", True, 1.5):
        with pytest.raises(InvalidInput):
            domain.refund_amount(bad, 5000, 1000)
    with pytest.raises(InvalidInput) as nothing:
        domain.refund_amount(None, 5000, 5000)
    assert nothing.value.code == "nothing_to_refund"


def test_a_repeated_refund_click_has_the_same_key_and_a_later_refund_another():
    assert domain.merchant_refund_key(7, 0, 500) == domain.merchant_refund_key(7, 0, 500)
    assert domain.merchant_refund_key(7, 500, 500) != domain.merchant_refund_key(7, 0, 500)
