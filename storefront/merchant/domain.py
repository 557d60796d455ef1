"""The merchant's rules as plain functions: stock reservations, product edits, refund amounts."""

import unicodedata

from ..cart.domain import out_of_stock
from ..errors import Conflict, InvalidInput

MAX_UNIT_AMOUNT = 99_999_999  # Stripe's limit for one charge, in minor units
MAX_STOCK = 2**31 - 1
MAX_NAME = 120


def wanted_units(items):
    """{product_id: quantity} of a snapshot's items."""
    wanted = {}
    for item in items:
        wanted[item["product_id"]] = wanted.get(item["product_id"], 0) + item["quantity"]
    return wanted


def shortfall(wanted, on_hand, held):
    """The first tracked product (by id) with fewer units available than wanted: (product_id, available), or None.

    `on_hand` maps product id to its stock (None: not tracked); `held` to the units reserved by others.
    """
    for product_id in sorted(wanted):
        stock = on_hand.get(product_id)
        if stock is None:
            continue
        available = stock - held.get(product_id, 0)
        if wanted[product_id] > available:
            return product_id, max(0, available)
    return None


def reservation(wanted, on_hand, held, names):
    """The units to hold for a handshake (tracked products only); refuses with out_of_stock when one is short."""
    short = shortfall(wanted, on_hand, held)
    if short is not None:
        product_id, available = short
        raise out_of_stock(product_id, names.get(product_id, f"product {product_id}"), available)
    return {pid: quantity for pid, quantity in wanted.items() if on_hand.get(pid) is not None}


def sale(wanted, reserved, on_hand, held_by_others):
    """What a paid order takes from stock: {product_id: units}, or None when stock is gone (needs review).

    Units the order reserved are its own; the rest must still be available beside what others hold.
    """
    unreserved = {pid: q - reserved.get(pid, 0) for pid, q in wanted.items() if q > reserved.get(pid, 0)}
    if shortfall(unreserved, on_hand, held_by_others) is not None:
        return None
    return {pid: q for pid, q in wanted.items() if on_hand.get(pid) is not None}


def check_stock_level(stock, reserved):
    """On hand may not drop below what frozen carts hold: those units are being paid for."""
    if stock is not None and stock < reserved:
        raise Conflict(
            f"{reserved} units are reserved by payments in flight; stock can't go below that.", code="stock_reserved"
        )


def has_control_characters(text):
    """True if the text holds a control character (NUL, escape, newline...) or a lone surrogate: not a name."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _integer(body, key, low, high):
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{key} must be an integer from {low} to {high}", code=f"invalid_{key}")
    return value


def parse_product(body, *, creating):
    """The fields of a product create (name and unit_amount required) or edit (any of them)."""
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.", code="invalid_json")
    unknown = set(body) - {"name", "unit_amount", "stock", "active"}
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.", code="invalid_request")
    if creating and not {"name", "unit_amount"} <= set(body):
        raise InvalidInput("name and unit_amount are required.", code="invalid_request")
    changes = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or has_control_characters(name):
            raise InvalidInput(
                f"name must be text of 1 to {MAX_NAME} characters, without control characters", code="invalid_name"
            )
        changes["name"] = name.strip()
    if "unit_amount" in body:
        changes["unit_amount"] = _integer(body, "unit_amount", 1, MAX_UNIT_AMOUNT)
    if "stock" in body:
        changes["stock"] = None if body["stock"] is None else _integer(body, "stock", 0, MAX_STOCK)
    if "active" in body:
        if not isinstance(body["active"], bool):
            raise InvalidInput("active must be true or false", code="invalid_active")
        changes["active"] = body["active"]
    return changes


def refund_amount(requested, amount_received, amount_refunded):
    """The amount a merchant refund returns: what was asked, or by default all not yet refunded."""
    refundable = amount_received - amount_refunded
    if refundable <= 0:
        raise InvalidInput("Nothing is left to refund on this order.", code="nothing_to_refund")
    if requested is None:
        return refundable
    if isinstance(requested, bool) or not isinstance(requested, int) or not 0 < requested <= refundable:
        raise InvalidInput(f"amount must be an integer from 1 to {refundable}", code="invalid_amount")
    return requested


def merchant_refund_key(order_id, refunded_before, amount):
    """One refund per (order, what was refunded before, amount): a repeated click refunds once."""
    return f"order-{order_id}-merchant-{refunded_before}-{amount}"
