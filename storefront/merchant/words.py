"""What the merchant's pages say about an order, in the shop's words (pure): statuses, why an order needs
review, history lines, local times."""

import re
from datetime import UTC

from ..cart.domain import money

STATUS_WORDS = {
    "awaiting_payment": "Awaiting payment",
    "payment_failed": "Payment failed",
    "paid": "Paid",
    "needs_review": "Needs review",
    "refunded": "Refunded",
}
STOCK_GONE, AMOUNT_MISMATCH, UNMATCHED = "stock_gone", "amount_mismatch", "unmatched"
KIND_WORDS = {
    "handshake": "Checkout",
    "sync": "Amount sent to Stripe",
    "stripe": "Payment",
    "refund": "Refund",
    "stock": "Stock",
    "review": "Review",
    "dispute": "Dispute",
    "refund_failed": "Refund failed",
}
PI_WORDS = {
    "succeeded": "payment succeeded",
    "processing": "payment on its way",
    "requires_action": "waiting for the shopper's bank authentication",
    "requires_payment_method": "payment refused",
    "canceled": "payment cancelled",
    "requires_capture": "payment authorised",
}
STRIPE_LINE = re.compile(r"PaymentIntent (\w+); received (.+); order is (\w+)")


def status_name(status):
    """A status as a word ("Awaiting payment"); one this table does not know reads as its code in words."""
    return STATUS_WORDS.get(status) or status.replace("_", " ").capitalize()


def review_reason(order, stock_gone):
    """Why a needs_review order needs a person: its stock was gone, it was paid the wrong amount, or the
    payment could not be matched to what was shown (`stock_gone`: the order's history says so)."""
    if stock_gone:
        return STOCK_GONE
    return AMOUNT_MISMATCH if order.amount_received != order.amount else UNMATCHED


def status_words(order, reason=None):
    """The order's state in a sentence: "Needs review: paid $153.00 but the stock was gone", "Refunded
    $5.00 of $153.00"."""
    paid, refunded = money(order.amount_received, order.currency), money(order.amount_refunded, order.currency)
    if order.status == "needs_review":
        why = {
            STOCK_GONE: f"paid {paid} but the stock was gone",
            AMOUNT_MISMATCH: f"paid {paid} for an order of {money(order.amount, order.currency)}",
            UNMATCHED: f"paid {paid}, but the payment does not match what the shopper was shown",
        }[reason or UNMATCHED]
        words = f"Needs review: {why}"
    else:
        words = status_name(order.status)
    if order.status == "refunded":
        return f"Refunded {refunded} of {paid}"
    if order.amount_refunded and order.status in ("paid", "needs_review"):
        return f"{words}; refunded {refunded} of {paid}"
    return words


def history_line(kind, message):
    """(what, detail) of one history line in words; Stripe's PaymentIntent states become the shop's."""
    found = STRIPE_LINE.fullmatch(message or "")
    if kind == "stripe" and found:
        state, received, status = found.groups()
        message = f"{PI_WORDS.get(state, state.replace('_', ' '))}; received {received}; order: {status_name(status)}"
    return KIND_WORDS.get(kind, kind.capitalize()), message[:1].upper() + message[1:]


def local_time(at, zone):
    """A naive UTC time from the database as the merchant's clock reads it: "2026-12-08 14:03:27 CET"."""
    if at is None:
        return ""
    return at.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
