"""Cart rules as plain functions over plain data: no Flask, database or Stripe."""

from dataclasses import dataclass

from ..errors import CheckoutInProgress, InvalidInput

MAX_QUANTITY = 99


@dataclass(frozen=True)
class Line:
    product_id: int
    name: str
    unit_amount: int
    quantity: int

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
