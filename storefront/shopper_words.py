"""The shop's words for gateway outcomes on the server: the twin of static/js/words.js.

A failed order stores the gateway's own message (the merchant reads it in the admin); what a shopper is sent
is one of these sentences instead, so no Stripe (or PayPal) English reaches the order page or its JSON.
"""

import re

# Looked for in the stored gateway message, first match wins; the sentences say what happened, not what to do
# (the order page adds that). Keep in step with PAYMENT in static/js/words.js.
FAILURES = (
    (re.compile(r"insufficient.funds", re.I), "your bank said there was not enough money on the account"),
    (re.compile(r"\bcancell?ed\b", re.I), "the payment was cancelled"),
    (re.compile(r"authenticat", re.I), "your bank could not confirm it was you"),
    (re.compile(r"expired", re.I), "the card has expired"),
    (re.compile(r"cvc|security code", re.I), "the card's security code was not right"),
    (re.compile(r"incorrect|invalid.*(number|account|iban)", re.I), "the card or account number was not right"),
    (re.compile(r"declined|refused|failed", re.I), "your bank refused the payment"),
)
GENERAL = "the payment did not go through"


def failure_reason(stored):
    """Why a payment failed, in the shop's words (None when no reason was recorded)."""
    if not stored:
        return None
    for pattern, sentence in FAILURES:
        if pattern.search(stored):
            return sentence
    return GENERAL
