"""Checkout and payment rules as plain functions: handshake, outcomes, settlement."""

from datetime import timedelta

from ..errors import CartChanged, CheckoutInProgress, InvalidInput

REUSABLE_PI_STATUSES = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
IN_FLIGHT_PI_STATUSES = frozenset({"processing", "requires_capture", "succeeded"})
SETTLED_ORDER_STATUSES = frozenset({"paid", "needs_review", "refunded"})
# A freeze on a PaymentIntent in these states holds no payment: nothing was confirmed on it (a handshake
# that broke half-way), or it was cancelled. `requires_action` is left to the freeze's time limit: the
# shopper may be in the middle of authenticating.
UNPAID_PI_STATUSES = frozenset({"requires_payment_method", "requires_confirmation", "canceled"})


def parse_cart_version(payload):
    """The handshake names the cart version the page shows."""
    version = payload.get("cart_version") if isinstance(payload, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("cart_version must be a positive integer", code="invalid_cart_version")
    return version


def check_handshake(*, shown_version, version, status, total, has_payment_intent):
    """Raise unless the page's version is the latest and the cart can start paying."""
    if status != "open":
        raise CheckoutInProgress("A payment for this cart is already in progress.")
    if shown_version != version:
        raise CartChanged("Your cart changed in another tab; please review the new amount before paying.")
    if total <= 0:
        raise InvalidInput("Your cart is empty.", code="cart_empty")
    if not has_payment_intent:
        raise InvalidInput("Start checkout before confirming.", code="checkout_not_started")


def payment_outcome(status, has_payment_error):
    """Reduce a PaymentIntent's state to what the order needs to know."""
    if status == "succeeded":
        return "succeeded"
    if status == "canceled":
        return "canceled"
    if status == "requires_payment_method" and has_payment_error:
        return "failed"
    if status in ("processing", "requires_capture"):
        return "processing"
    return "pending"


def settlement(order_total, amount_received, *, matched=True):
    """Paid only when the amount received is the order total and our records match the payment to the order;
    anything else is for review, and any excess is refunded."""
    if amount_received == order_total and matched:
        return "paid", 0
    return "needs_review", max(0, amount_received - order_total)


def freeze_expired(frozen_at, now, freeze_seconds):
    """Whether a freeze has outlived its time limit (and Stripe must be asked before release)."""
    return frozen_at is not None and now - frozen_at > timedelta(seconds=freeze_seconds)


def may_release_freeze(pi_status):
    """A frozen cart is released only when its PaymentIntent can no longer take the money."""
    return pi_status not in IN_FLIGHT_PI_STATUSES


def refund_outcome(order_status, amount_received, amount_refunded, refund_due):
    """An order is refunded once refunds exceed what was returned as excess."""
    if amount_refunded > refund_due and amount_refunded >= amount_received:
        return "refunded"
    return order_status


def failure_is_current(observed_at, frozen_at):
    """A failure seen before the cart was frozen again belongs to an earlier attempt."""
    return observed_at is None or frozen_at is None or observed_at >= frozen_at.replace(microsecond=0)
