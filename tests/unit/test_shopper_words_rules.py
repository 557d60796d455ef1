"""The server's twin of words.js: a failed order's reason reaches the shopper in the shop's words."""

import re

import pytest

from storefront.shopper_words import FAILURES, GENERAL, failure_reason
from stripe_sandbox.payment_methods import DECLINE_MESSAGES

GATEWAY = re.compile(r"PaymentIntent|requires_|payment_method|customer's account|_", re.IGNORECASE)


@pytest.mark.parametrize(
    "stored, says",
    [
        ("The customer's account has insufficient funds to cover this payment.", "not enough money"),
        ("Your card has insufficient funds.", "not enough money"),
        ("Your card was declined.", "your bank refused the payment"),
        ("Your card has expired.", "the card has expired"),
        ("This PaymentIntent cannot be authenticated because it has a status of canceled; it must be "
         "requires_action.", "the payment was cancelled"),
        ("We are unable to authenticate your payment method.", "could not confirm it was you"),
        ("The payment was canceled.", "the payment was cancelled"),
        ("Something the gateway says one day", GENERAL),
    ],
)  # fmt: skip
def test_a_stored_gateway_message_becomes_our_sentence(stored, says):
    assert says in failure_reason(stored)
    assert not GATEWAY.search(failure_reason(stored))


def test_no_reason_stays_none_and_every_sentence_is_ours():
    assert failure_reason(None) is None and failure_reason("") is None
    for message in DECLINE_MESSAGES.values():
        assert failure_reason(message) != message
    for _, sentence in FAILURES:
        assert not GATEWAY.search(sentence), sentence
