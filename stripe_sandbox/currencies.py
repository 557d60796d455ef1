"""Stripe's currencies: which ones it takes, their minor units, minimum and maximum amounts.

Sources: Stripe's "Supported currencies" page (docs.stripe.com/currencies: the minimum charge
table, the maximum digits, the ISK/UGX special cases and its zero-decimal list); the presentment
list as WooPayments (built on Stripe) documents it, checked against the list Stripe prints in its
own "Invalid currency" error.
"""

from __future__ import annotations

from . import errors

# Lowercase ISO codes Stripe accepts as a presentment currency.
SUPPORTED = frozenset(
    """
usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn bzd
cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq
gyd hkd hnl htg huf idr ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak lbp lkr lrd lsl mad
mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln
pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs top try ttd twd tzs
uah ugx uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw
""".split()
)
# Charged in whole units: an amount of 500 is 500 JPY.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
# Zero-decimal in fact but written with two decimals that must be 00 (500 is 5 ISK).
WHOLE_UNITS_ONLY = frozenset({"isk", "ugx"})
# Stripe's minimum charge per settlement currency, in minor units, with the way Stripe writes it.
MINIMUMS = {
    "usd": (50, "$0.50"),
    "aed": (200, "2.00 د.إ"),
    "aud": (50, "$0.50"),
    "bgn": (100, "лв1.00"),
    "brl": (50, "R$0.50"),
    "cad": (50, "$0.50"),
    "chf": (50, "0.50 Fr"),
    "czk": (1500, "15.00Kč"),
    "dkk": (250, "2.50-kr."),
    "eur": (50, "€0.50"),
    "gbp": (30, "£0.30"),
    "hkd": (400, "$4.00"),
    "huf": (17500, "175.00 Ft"),
    "inr": (50, "₹0.50"),
    "jpy": (50, "¥50"),
    "mxn": (1000, "$10"),
    "myr": (200, "RM 2"),
    "nok": (300, "3.00-kr."),
    "nzd": (50, "$0.50"),
    "pln": (200, "2.00 zł"),
    "ron": (200, "lei2.00"),
    "sek": (300, "3.00-kr."),
    "sgd": (50, "$0.50"),
    "thb": (1000, "฿10"),
}
# "The amount value supports up to 8 digits" (12 for IDR, 9 for INR).
MAXIMUMS = {"idr": 999_999_999_999, "inr": 999_999_999}
DEFAULT_MAXIMUM = 99_999_999


def exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's API amounts."""
    return 0 if currency in ZERO_DECIMAL else 2


def display(amount: int, currency: str) -> str:
    """An amount in minor units written in major units, e.g. 99999999 usd -> 999,999.99."""
    digits = exponent(currency)
    return f"{amount / 10**digits:,.{digits}f}"


def parse(value: str | None, param: str = "currency") -> str | None:
    """The lowercase currency code, or Stripe's refusal of one it does not support."""
    if value is None:
        return None
    code = value.lower()
    if code not in SUPPORTED:
        raise errors.invalid(
            f"Invalid currency: {code}. Stripe currently supports these currencies: "
            + ", ".join(["usd"] + sorted(SUPPORTED - {"usd"}))
            + ".",
            param,
        )
    return code


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    """Refuse an amount below Stripe's minimum or above its maximum for the currency."""
    minimum, written = MINIMUMS.get(currency, (1, None))
    if amount < minimum:
        raise errors.invalid(f"Amount must be at least {written} {currency}", param, "amount_too_small")
    maximum = MAXIMUMS.get(currency, DEFAULT_MAXIMUM)
    if amount > maximum:
        raise errors.invalid(
            f"Amount must be no more than {display(maximum, currency)} {currency}", param, "amount_too_large"
        )
    if currency in WHOLE_UNITS_ONLY and amount % 100:
        raise errors.invalid(
            f"Invalid amount: {currency} has no fractional units, so the amount must be a multiple of 100.", param
        )
