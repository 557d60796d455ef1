"""Cart rules without Flask, a database or Stripe."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storefront.cart import domain
from storefront.errors import CheckoutInProgress, InvalidInput


@pytest.mark.parametrize("value", [1, 50, 99])
def test_quantities_from_1_to_99_are_accepted(value):
    assert domain.parse_quantity(value) == value


@pytest.mark.parametrize("value", [0, -1, 100, 1.5, "2", None, True, [], {}])
def test_other_quantities_are_refused(value):
    with pytest.raises(InvalidInput) as err:
        domain.parse_quantity(value)
    assert err.value.code == "invalid_quantity"


def test_zero_is_allowed_when_setting_a_quantity():
    assert domain.parse_quantity(0, allow_zero=True) == 0


@pytest.mark.parametrize("value", [0, -3, "abc", "1.5", 2**31, True, None, 1.0])
def test_product_ids_must_be_positive_integers(value):
    with pytest.raises(InvalidInput):
        domain.parse_product_id(value)


def test_product_ids_from_urls_are_digits():
    assert domain.parse_product_id("17") == 17


def test_adding_accumulates_on_the_line():
    assert domain.added({1: 2}, 1, 3) == {1: 5}
    assert domain.added({1: 2}, 2, 1) == {1: 2, 2: 1}


def test_a_line_never_exceeds_99():
    with pytest.raises(InvalidInput):
        domain.added({1: 98}, 1, 2)


def test_setting_zero_removes_the_line():
    assert domain.with_quantity({1: 2, 2: 3}, 1, 0) == {2: 3}
    assert domain.with_quantity({1: 2}, 1, 7) == {1: 7}


def test_only_an_open_cart_is_editable():
    domain.ensure_editable("open")
    with pytest.raises(CheckoutInProgress):
        domain.ensure_editable("frozen")


def test_total_is_the_sum_of_line_totals():
    lines = [domain.Line(1, "a", 250, 2), domain.Line(2, "b", 1000, 3)]
    assert domain.total(lines) == 3500
    assert lines[0].as_dict()["line_total"] == 500


def test_lines_added_after_the_paid_snapshot_stay_in_the_cart():
    paid = [{"product_id": 1, "quantity": 10}]
    assert domain.without_snapshot({1: 10, 2: 10}, paid) == {2: 10}
    assert domain.without_snapshot({1: 12}, paid) == {1: 2}
    assert domain.without_snapshot({1: 4}, paid) == {}


@given(
    st.dictionaries(st.integers(1, 20), st.integers(1, 99)),
    st.dictionaries(st.integers(1, 20), st.integers(1, 99)),
)
def test_removing_a_snapshot_never_leaves_negative_or_empty_lines(cart, snapshot):
    items = [{"product_id": pid, "quantity": q} for pid, q in snapshot.items()]
    remaining = domain.without_snapshot(cart, items)
    assert all(q > 0 for q in remaining.values())
    for pid, q in remaining.items():
        assert q == cart[pid] - snapshot.get(pid, 0)


@pytest.mark.parametrize(
    "amount, currency, shown",
    [
        (12900, "usd", "$129.00"),
        (123456789, "usd", "$1,234,567.89"),
        (12900, "jpy", "12,900 JPY"),
        (12900, "JPY", "12,900 JPY"),
        (12900, "isk", "129.00 ISK"),  # two-decimal at Stripe, zero in ISO 4217
        (12900, "huf", "129.00 HUF"),
        (12345, "bhd", "12.345 BHD"),
        (5, "bhd", "0.005 BHD"),
        (-250, "usd", "-$2.50"),
    ],
)
def test_money_uses_stripes_decimals_for_the_currency(amount, currency, shown):
    assert domain.money(amount, currency) == shown


def test_a_price_notice_in_a_zero_decimal_store_reads_in_whole_yen():
    line = domain.Line(1, "Burr grinder", 12900, 1)
    _, notices = domain.repriced((line,), {1: (11900, True)}, "jpy")
    assert notices[0]["message"] == "The price of the burr grinder changed from 12,900 JPY to 11,900 JPY."
