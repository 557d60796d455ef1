"""Charges (one per payment attempt) and refunds."""

from __future__ import annotations

import time

from flask import Blueprint, current_app

from . import auth, currencies, errors, expand
from .params import LIST_PARAMS, Params, from_request, merge_metadata, page
from .payment_methods import details
from .state import Transaction, new_id

bp = Blueprint("refunds", __name__)
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def new_charge(txn: Transaction, pm: dict, status: str, **fields) -> dict:
    """Create a charge for the transaction's PaymentIntent and make it its latest_charge."""
    pi = txn.pi
    captured = status == "succeeded" and pi["capture_method"] != "manual"
    charge = {
        "id": new_id("ch"),
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": pi["amount"] if captured else 0,
        "amount_refunded": 0,
        "balance_transaction": balance_transaction() if captured else None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "SANDBOX",
        "captured": captured,
        "created": int(time.time()),
        "currency": pi["currency"],
        "customer": None,
        "description": pi["description"],
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "outcome": _outcome(status),
        "paid": status == "succeeded",
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": details(pm),
        "receipt_email": pi["receipt_email"],
        "receipt_url": None,
        "refunded": False,
        "status": status,
    }
    charge.update(fields)
    txn.charges[charge["id"]] = charge
    pi["latest_charge"] = charge["id"]
    return charge


def balance_transaction() -> str:
    """The id of the balance transaction Stripe books when money moves (a captured charge, a refund).

    The sandbox keeps no balance transaction objects: the id is there, as on Stripe, but cannot be expanded.
    """
    return new_id("txn")


def _outcome(status: str) -> dict:
    if status == "failed":
        return {
            "network_status": "declined_by_network",
            "reason": "generic_decline",
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    return {
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def _state():
    return current_app.config["SANDBOX_STATE"]


@bp.get("/v1/charges/<charge_id>")
def retrieve_charge(charge_id):
    auth.require_secret()
    Params(from_request()).only(set())
    expand.validate("charge")
    charge = _state().charges.get(charge_id)
    if charge is None:
        raise errors.no_such("charge", charge_id)
    return expand.respond(charge)


@bp.get("/v1/charges")
def list_charges():
    auth.require_secret()
    p = Params(from_request())
    p.only(LIST_PARAMS | {"payment_intent"}, frozenset({"customer", "transfer_group"}))
    expand.validate("charge", listed=True)
    items = list(_state().charges.values())
    if p.str("payment_intent"):
        items = [c for c in items if c["payment_intent"] == p.str("payment_intent")]
    items.reverse()
    return expand.respond(page(items, p, "/v1/charges"))


def _payment_intent_of(state, p: Params) -> str:
    pi_id = p.str("payment_intent")
    charge_id = p.str("charge")
    if charge_id:
        charge = state.charges.get(charge_id)
        if charge is None:
            raise errors.no_such("charge", charge_id, "charge", 400)
        return charge["payment_intent"]
    if not pi_id:
        raise errors.invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
            None,
            "parameter_missing",
        )
    state.get_pi(pi_id, "payment_intent", 400)
    return pi_id


def _refundable_charge(txn: Transaction) -> dict:
    pi = txn.pi
    charge_id = pi["latest_charge"]
    if pi["status"] != "succeeded" or not charge_id:
        raise errors.invalid(
            f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
            "payment_intent",
            "charge_not_refundable",
        )
    charge = txn.charge(charge_id)
    if charge["disputed"]:
        raise errors.invalid(
            f"Charge {charge_id} has been charged back; cannot issue a refund.", "charge", "charge_disputed"
        )
    if charge["refunded"]:
        raise errors.invalid(f"Charge {charge_id} has already been refunded.", "charge", "charge_already_refunded")
    return charge


def _money(amount: int, currency: str) -> str:
    return f"{currencies.display(amount, currency)} {currency}"


@bp.post("/v1/refunds")
def create_refund():
    """Refund all or part of a PaymentIntent's successful charge."""
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only(
        {"payment_intent", "charge", "amount", "reason", "metadata"},
        frozenset(
            {"currency", "customer", "instructions_email", "origin", "refund_application_fee", "reverse_transfer"}
        ),
    )
    amount = p.int("amount", minimum=1)
    reason = p.str("reason", choices=REFUND_REASONS)
    metadata = merge_metadata({}, p.data.get("metadata", {}))
    expand.validate("refund")
    pi_id = _payment_intent_of(state, p)
    with state.pi_transaction(pi_id, "payment_intent", 400) as txn:
        charge = _refundable_charge(txn)
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise errors.invalid(
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded "
                f"amount on charge ({_money(remaining, charge['currency'])})",
                "amount",
                "amount_too_large",
            )
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": balance_transaction(),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "destination_details": {"type": "card"},
            "metadata": metadata,
            "payment_intent": pi_id,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        txn.refunds.append(refund)
        txn.emit("refund.created", refund)
        txn.emit("charge.refunded", charge)
        pm = state.payment_methods.get(charge["payment_method"]) or {}
        if pm.get("_outcome", {}).get("after") == "refund_fails":
            state.later(state.settings.refund_failure_delay, fail_in_background, state, pi_id, refund["id"])
    return expand.respond(refund)


def fail_in_background(state, pi_id: str, refund_id: str) -> None:
    """Timer callback: a refund to a test card whose refunds fail does fail (the card was cancelled); the
    money is back in the merchant's balance and no longer counts as refunded on the charge."""
    try:
        with state.pi_transaction(pi_id, internal=True) as txn:
            refund = dict(state.refunds[refund_id])
            if refund["status"] != "succeeded":
                return
            refund.update(
                status="failed",
                failure_reason="expired_or_canceled_card",
                failure_balance_transaction=balance_transaction(),
            )
            charge = txn.charge(refund["charge"])
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            txn.refunds.append(refund)
            for event_type in ("charge.refund.updated", "refund.updated", "refund.failed"):
                txn.emit(event_type, refund)
    except (errors.StripeError, KeyError):
        pass  # reset in the meantime


@bp.get("/v1/refunds/<refund_id>")
def retrieve_refund(refund_id):
    auth.require_secret()
    Params(from_request()).only(set())
    expand.validate("refund")
    refund = _state().refunds.get(refund_id)
    if refund is None:
        raise errors.no_such("refund", refund_id)
    return expand.respond(refund)


@bp.get("/v1/refunds")
def list_refunds():
    auth.require_secret()
    p = Params(from_request())
    p.only(LIST_PARAMS | {"payment_intent", "charge"})
    items = list(_state().refunds.values())
    for key in ("payment_intent", "charge"):
        if p.str(key):
            items = [r for r in items if r[key] == p.str(key)]
    items.reverse()
    expand.validate("refund", listed=True)
    return expand.respond(page(items, p, "/v1/refunds"))
