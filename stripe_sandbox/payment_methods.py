"""Stripe's test payment methods: which card or IBAN does what, and pm_ objects made on the fly."""

from __future__ import annotations

import re
import time

from . import errors
from .params import Params
from .state import SandboxState, new_id

# outcome: succeed | decline | authenticate | processing_succeed | processing_fail | late_succeed;
# after: what happens to a successful charge later (Stripe's docs, "Testing": disputes and refunds).
CARDS = {
    "4242424242424242": {"brand": "visa", "outcome": "succeed"},
    "5555555555554444": {"brand": "mastercard", "outcome": "succeed"},
    "4000000000000002": {"brand": "visa", "outcome": "decline", "decline_code": "generic_decline"},
    "4000000000009995": {
        "brand": "visa",
        "outcome": "decline",
        "decline_code": "insufficient_funds",
    },
    "4000002500003155": {"brand": "visa", "outcome": "authenticate"},
    # "The charge succeeds, only to be disputed as fraudulent" a moment later.
    "4000000000000259": {"brand": "visa", "outcome": "succeed", "after": "dispute"},
    # "Charge succeeds. If you initiate a refund, its status begins as succeeded. Some time later, its
    # status transitions to failed" (with charge.refund.updated and refund.failed).
    "4000000000005126": {"brand": "visa", "outcome": "succeed", "after": "refund_fails"},
}
MAGIC_PMS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_refundFail": "4000000000005126",
}
IBANS = {
    "AT611904300234573201": "processing_succeed",
    "AT861904300235473202": "processing_fail",
    "AT321904300235473204": "late_succeed",
}
DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "live_mode_test_card": "Your card was declined. Your request was in test mode, but used "
    "a non test (live) card. For a list of valid test cards, visit: "
    "https://stripe.com/docs/testing.",
}


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def _card(number: str, param: str) -> dict:
    number = number.replace(" ", "")
    if not re.fullmatch(r"\d{12,19}", number) or not _luhn_ok(number):
        raise errors.StripeError(
            402,
            "Your card number is incorrect.",
            type="card_error",
            code="incorrect_number",
            param=param,
        )
    spec = CARDS.get(number, {"brand": "visa", "outcome": "decline", "decline_code": "live_mode_test_card"})
    card = {
        "brand": spec["brand"],
        "last4": number[-4:],
        "exp_month": 12,
        "exp_year": time.gmtime().tm_year + 3,
        "funding": "credit",
        "country": "US",
        "checks": {"cvc_check": "pass", "address_line1_check": None, "address_postal_code_check": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
    return {"type": "card", "card": card, "_outcome": spec}


def _iban_ok(iban: str) -> bool:
    """ISO 13616 check digits: the IBAN, first four characters moved last, is 1 mod 97."""
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _sepa(iban: str, param: str) -> dict:
    iban = iban.replace(" ", "").upper()
    if not _iban_ok(iban):
        raise errors.invalid("The IBAN you provided is invalid.", param, "invalid_bank_account_iban")
    outcome = IBANS.get(iban, "processing_succeed")
    sepa = {
        "bank_code": iban[4:9],
        "branch_code": "",
        "country": iban[:2],
        "fingerprint": new_id("fp", 16)[3:],
        "last4": iban[-4:],
    }
    return {"type": "sepa_debit", "sepa_debit": sepa, "_outcome": {"outcome": outcome}}


def _from_data(data: Params) -> dict:
    data.only({"type", "card", "sepa_debit", "billing_details"}, frozenset({"metadata", "allow_redisplay"}))
    kind = data.str("type", required=True, choices=("card", "sepa_debit"))
    billing = data.sub("billing_details")
    if billing is not None:
        billing.only({"name", "email", "phone"}, frozenset({"address"}))
    if kind == "card":
        card = data.sub("card", required=True)
        card.only({"number"}, frozenset({"exp_month", "exp_year", "cvc", "networks"}))
        return _card(card.str("number", required=True), card.name("number"))
    sepa = data.sub("sepa_debit", required=True)
    sepa.only({"iban"})
    return _sepa(sepa.str("iban", required=True), sepa.name("iban"))


def _store(state: SandboxState, spec: dict, billing: dict | None = None) -> dict:
    pm = {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "metadata": {},
        **spec,
    }
    if billing:
        pm["billing_details"].update({k: v for k, v in billing.items() if isinstance(v, str)})
    with state.lock:
        state.payment_methods[pm["id"]] = pm
    return pm


def resolve(state: SandboxState, p: Params) -> dict | None:
    """The PaymentMethod named by `payment_method` or built from `payment_method_data`."""
    data = p.sub("payment_method_data")
    if data is not None:
        billing = data.data.get("billing_details")
        return _store(state, _from_data(data), billing if isinstance(billing, dict) else None)
    pm_id = p.str("payment_method")
    if not pm_id:
        return None
    if pm_id in MAGIC_PMS:
        return _store(state, _card(MAGIC_PMS[pm_id], "payment_method"))
    pm = state.payment_methods.get(pm_id)
    if pm is None:
        raise errors.no_such("PaymentMethod", pm_id, "payment_method", 400)
    return pm


def public(pm: dict) -> dict:
    """The PaymentMethod as the API shows it (without the sandbox's outcome marker)."""
    return {k: v for k, v in pm.items() if not k.startswith("_")}


def details(pm: dict) -> dict:
    """`payment_method_details` for a charge made with this PaymentMethod."""
    kind = pm["type"]
    fields = dict(pm[kind])
    # `three_d_secure_usage` describes a PaymentMethod's card; a charge's card has no such field.
    fields.pop("three_d_secure_usage", None)
    return {"type": kind, kind: fields}
