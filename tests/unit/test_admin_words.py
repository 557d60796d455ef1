"""What the merchant's pages say about an order (merchant.words): statuses, reasons, history, times."""

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from storefront.merchant import words


def order(status, amount=15300, received=15300, refunded=0, currency="usd"):
    return SimpleNamespace(
        status=status, amount=amount, amount_received=received, amount_refunded=refunded, currency=currency
    )


@pytest.mark.parametrize(
    ("row", "reason", "said"),
    [
        (order("awaiting_payment", received=0), None, "Awaiting payment"),
        (order("payment_failed", received=0), None, "Payment failed"),
        (order("paid"), None, "Paid"),
        (order("paid", refunded=500), None, "Paid; refunded $5.00 of $153.00"),
        (order("refunded", refunded=15300), None, "Refunded $153.00 of $153.00"),
        (order("needs_review"), words.STOCK_GONE, "Needs review: paid $153.00 but the stock was gone"),
        (
            order("needs_review", received=16000, refunded=700),
            words.AMOUNT_MISMATCH,
            "Needs review: paid $160.00 for an order of $153.00; refunded $7.00 of $160.00",
        ),
        (order("needs_review"), words.UNMATCHED, "Needs review: paid $153.00, but the payment does not match"),
        (order("paid", amount=1200, received=1200, currency="jpy"), None, "Paid"),
        (order("disputed"), None, "Disputed"),  # a status this table does not know yet still reads as words
    ],
)
def test_status_words(row, reason, said):
    assert words.status_words(row, reason).startswith(said)


def test_why_an_order_needs_review():
    assert words.review_reason(order("needs_review"), stock_gone=True) == words.STOCK_GONE
    assert words.review_reason(order("needs_review", received=16000), stock_gone=False) == words.AMOUNT_MISMATCH
    assert words.review_reason(order("needs_review"), stock_gone=False) == words.UNMATCHED


def test_history_lines_in_words():
    stripe = "PaymentIntent succeeded; received $129.00; order is needs_review"
    assert words.history_line("stripe", stripe) == (
        "Payment",
        "Payment succeeded; received $129.00; order: Needs review",
    )
    assert words.history_line("refund", "merchant refunded $5.00") == ("Refund", "Merchant refunded $5.00")
    assert words.history_line("handshake", "reserved 1") == ("Checkout", "Reserved 1")
    assert words.history_line("dispute", "opened") == ("Dispute", "Opened")


def test_local_time_is_the_merchants_clock_to_the_second():
    at = datetime(2026, 12, 8, 13, 4, 5, 123456)  # naive UTC, as stored
    assert words.local_time(at, ZoneInfo("Europe/Paris")) == "2026-12-08 14:04:05 CET"
    assert words.local_time(at, ZoneInfo("UTC")) == "2026-12-08 13:04:05 UTC"
    assert words.local_time(None, ZoneInfo("UTC")) == ""
