"""Money as the merchant types it ("119.00" in the store's currency) turned into minor units, as a pure rule.

The rule: digits, optionally a point and at most as many decimals as the currency has at Stripe (2 for
usd, 0 for jpy, 3 for bhd); the store's own sign or code may lead or follow ("$119", "119 USD"). A comma
is refused rather than guessed at: "1,19" is 1.19 in Paris and 119 in New York. Nothing negative, nothing
empty, nothing huge. The JSON API keeps minor units (its contract); only the pages parse text.
"""

import re

from ..cart.domain import CURRENCY_SIGNS, exponent, money
from ..errors import InvalidInput

NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]*))?")
MAX_DIGITS = 12  # far above Stripe's largest charge; keeps a pasted wall of digits out of int()


def _refuse(message):
    raise InvalidInput(message, code="invalid_amount")


def _strip_currency(text, currency):
    """The amount without the store's sign or code around it."""
    for mark in (CURRENCY_SIGNS.get(currency.lower()), currency.upper(), currency.lower()):
        if mark and text.startswith(mark):
            text = text[len(mark) :]
        if mark and text.endswith(mark):
            text = text[: -len(mark)]
    return text.strip()


def parse_amount(text, currency):
    """Minor units of an amount typed in the currency ("119" and "119.00" in usd: 11900), or InvalidInput."""
    digits = exponent(currency)
    example = money(119 * 10**digits, currency)
    text = _strip_currency((text or "").strip(), currency)
    if not text:
        _refuse(f"Type an amount, such as {example}.")
    if text.startswith("-"):
        _refuse("The amount can't be negative.")
    if "," in text:
        _refuse(f"Use a point for decimals and no thousands separator, such as {example}.")
    found = NUMBER.fullmatch(text)
    if not found or len(found.group(1)) > MAX_DIGITS:
        _refuse(f"Type the amount as a number, such as {example}.")
    whole, fraction = found.group(1), found.group(2) or ""
    if len(fraction) > digits:
        unit = f"{digits} decimal{'s' if digits != 1 else ''}" if digits else "no decimals"
        _refuse(f"{currency.upper()} amounts have {unit}; {text} has {len(fraction)}.")
    return int(whole) * 10**digits + int(fraction.ljust(digits, "0") or 0)


def as_typed(amount, currency):
    """Minor units back in the form a field shows ("119.00"; jpy "1200"): what parse_amount reads."""
    digits = exponent(currency)
    whole, minor = divmod(amount, 10**digits)
    return f"{whole}.{minor:0{digits}d}" if digits else str(whole)
