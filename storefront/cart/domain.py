"""Cart rules as plain functions over plain data: no Flask, database or Stripe."""

from dataclasses import dataclass, field, replace

from ..errors import CheckoutInProgress, InvalidInput, OutOfStock

MAX_QUANTITY = 99


@dataclass(frozen=True)
class Line:
    product_id: int
    name: str
    unit_amount: int
    quantity: int
    # The product as the catalog has it now (read with a change that names it); not part of the line.
    available: int | None = field(default=None, compare=False)
    active: bool = field(default=True, compare=False)

    @property
    def line_total(self):
        return self.unit_amount * self.quantity

    def as_dict(self):
        return {
            "product_id": self.product_id,
            "name": self.name,
            "unit_amount": self.unit_amount,
            "quantity": self.quantity,
            "line_total": self.line_total,
        }


def total(lines):
    """The cart total in minor units."""
    return sum(line.line_total for line in lines)


def parse_quantity(value, *, allow_zero=False):
    """A quantity is an integer from 1 to 99 (0 allowed when setting, meaning remove)."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be an integer from {low} to {MAX_QUANTITY}", code="invalid_quantity")
    return value


def parse_product_id(value):
    """Product ids are positive integers (JSON numbers, or digits in a URL)."""
    if isinstance(value, str):
        # ASCII digits only, and short: int() refuses "²" and strings past 4300 digits.
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise InvalidInput("product_id must be a positive integer", code="invalid_product_id")
    return value


def ensure_editable(status):
    """Only an open cart may change; a frozen one has a payment in flight."""
    if status != "open":
        raise CheckoutInProgress("A payment for this cart is in progress; the cart can't change until it completes.")


def added(quantities, product_id, quantity):
    """Quantities after adding `quantity` of a product; a line never exceeds the maximum."""
    new_quantity = quantities.get(product_id, 0) + quantity
    if new_quantity > MAX_QUANTITY:
        raise InvalidInput(f"a line can hold at most {MAX_QUANTITY} items", code="invalid_quantity")
    return {**quantities, product_id: new_quantity}


def with_quantity(quantities, product_id, quantity):
    """Quantities after setting one line; 0 removes it."""
    rest = {pid: q for pid, q in quantities.items() if pid != product_id}
    return {**rest, product_id: quantity} if quantity else rest


def without_snapshot(quantities, snapshot_items):
    """What stays in the cart once a paid snapshot leaves it: later additions survive."""
    paid = {item["product_id"]: item["quantity"] for item in snapshot_items}
    remaining = {pid: q - paid.get(pid, 0) for pid, q in quantities.items()}
    return {pid: q for pid, q in remaining.items() if q > 0}


CURRENCY_SIGNS = {"usd": "$", "eur": "€", "gbp": "£"}


# Decimals as Stripe counts them (docs.stripe.com/currencies), the same table as static/js/money.js:
# ISK and HUF are two-decimal at Stripe, whatever ISO 4217 says.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def exponent(currency):
    """How many decimals the currency's minor unit has at Stripe: 0 for JPY, 3 for BHD, else 2."""
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def money(amount, currency):
    """An amount in minor units as a shopper reads it: $129.00, 12,900 JPY, 12.345 BHD (code without a sign)."""
    digits = exponent(currency)
    whole, minor = divmod(abs(amount), 10**digits)
    value = f"{whole:,}" + (f".{minor:0{digits}d}" if digits else "")
    minus, sign = "-" if amount < 0 else "", CURRENCY_SIGNS.get(currency.lower())
    return f"{minus}{sign}{value}" if sign else f"{minus}{value} {currency.upper()}"


def _the(name):
    """'Burr grinder' as it reads mid-sentence: 'the burr grinder' (names like 'USB hub' keep their case)."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        name = name[0].lower() + name[1:]
    return f"the {name}"


def price_notice(line, new_unit_amount, currency):
    """What a tab shows when the merchant changed the price of a line in the cart."""
    old, new = money(line.unit_amount, currency), money(new_unit_amount, currency)
    return {
        "code": "price_changed",
        "product_id": line.product_id,
        "name": line.name,
        "old_unit_amount": line.unit_amount,
        "new_unit_amount": new_unit_amount,
        "message": f"The price of {_the(line.name)} changed from {old} to {new}.",
    }


def withdrawn_notice(line):
    """What a tab shows when a product in the cart is no longer sold."""
    return {
        "code": "product_unavailable",
        "product_id": line.product_id,
        "name": line.name,
        "quantity": line.quantity,
        "message": f"{_the(line.name).capitalize()} is no longer available and was removed from your cart.",
    }


def repriced(lines, catalog, currency):
    """Lines at the catalog's current prices, and a notice for each line that changed or left.

    `catalog` maps product id to (unit_amount, active); a product missing from it has been withdrawn.
    """
    kept, notices = [], []
    for line in lines:
        unit_amount, active = catalog.get(line.product_id, (line.unit_amount, False))
        if not active:
            notices.append(withdrawn_notice(line))
        elif unit_amount != line.unit_amount:
            notices.append(price_notice(line, unit_amount, currency))
            kept.append(replace(line, unit_amount=unit_amount))
        else:
            kept.append(line)
    return tuple(kept), notices


def ensure_available(product, wanted):
    """Refuse a line beyond the units a tracked product has left (None: not tracked)."""
    if product.available is not None and wanted > product.available:
        raise out_of_stock(product.product_id, product.name, product.available)


def out_of_stock(product_id, name, available):
    """The 409 naming the product and how many units are left."""
    available = max(0, available)
    return OutOfStock(
        out_of_stock_message(name, available),
        extra={"out_of_stock": {"product_id": product_id, "name": name, "available": available}},
    )


def out_of_stock_message(name, available):
    """'Only 2 of the burr grinder are left.' / 'The burr grinder is out of stock.'"""
    if available <= 0:
        return f"{_the(name).capitalize()} is out of stock."
    return f"Only {available} of {_the(name)} {'is' if available == 1 else 'are'} left."
