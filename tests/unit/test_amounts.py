"""The rule turning an amount the merchant types into minor units."""

import pytest

from storefront.errors import InvalidInput
from storefront.merchant.amounts import as_typed, parse_amount


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("119", "usd", 11900),
        ("119.0", "usd", 11900),
        ("119.00", "usd", 11900),
        ("119.", "usd", 11900),
        (" 5.00 ", "usd", 500),
        ("0.05", "usd", 5),
        ("$119.00", "usd", 11900),
        ("119.00 USD", "usd", 11900),
        ("€12.50", "eur", 1250),
        ("1200", "jpy", 1200),
        ("1200 JPY", "jpy", 1200),
        ("12.345", "bhd", 12345),
        ("0", "usd", 0),  # the caller's bounds say whether nothing is allowed
    ],
)
def test_accepted(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "says"),
    [
        ("", "usd", "Type an amount, such as $119.00"),
        ("   ", "usd", "Type an amount"),
        (None, "usd", "Type an amount"),
        ("1,19", "usd", "Use a point for decimals"),
        ("1,190.00", "usd", "no thousands separator"),
        ("119.001", "usd", "USD amounts have 2 decimals; 119.001 has 3"),
        ("1200.5", "jpy", "JPY amounts have no decimals"),
        ("12.3456", "bhd", "3 decimals"),
        ("-5", "usd", "can't be negative"),
        ("-5.00", "usd", "can't be negative"),
        ("five", "usd", "as a number"),
        ("1e3", "usd", "as a number"),
        (".50", "usd", "as a number"),
        ("5 .00", "usd", "as a number"),
        ("1" * 13, "usd", "as a number"),
        ("€5", "usd", "as a number"),  # another currency's sign is not this store's
        ("١٢", "usd", "as a number"),  # digits of other scripts are not read as amounts
    ],
)
def test_refused_with_a_reason(text, currency, says):
    with pytest.raises(InvalidInput) as refused:
        parse_amount(text, currency)
    assert says in refused.value.message and refused.value.code == "invalid_amount"


@pytest.mark.parametrize(("minor", "currency"), [(11900, "usd"), (5, "usd"), (1200, "jpy"), (12345, "bhd")])
def test_shown_as_typed_and_read_back(minor, currency):
    assert parse_amount(as_typed(minor, currency), currency) == minor


def test_as_typed():
    assert (as_typed(11900, "usd"), as_typed(1200, "jpy"), as_typed(5, "eur")) == ("119.00", "1200", "0.05")
