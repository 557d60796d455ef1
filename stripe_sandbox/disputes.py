"""Disputes: opened on a test card's charge after it succeeds; retrieve, and close (accept) one.

What the sandbox models of Stripe's disputes: test card 4000 0000 0000 0259 (pm_card_createDispute) gets a
`fraudulent` dispute that `needs_response` a moment after its payment (`charge.dispute.created`, the
charge `disputed`); GET /v1/disputes/{id}; POST /v1/disputes/{id}/close, which accepts it as lost
(`charge.dispute.closed`). Submitting evidence (POST /v1/disputes/{id}) and listing are refused.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app

from . import auth, errors, expand
from .params import Params, from_request
from .state import SandboxState, new_id

bp = Blueprint("disputes", __name__)
# How long the merchant has to respond (Stripe: about a week to three weeks, by network).
RESPONSE_SECONDS = 7 * 86400
OPEN = ("needs_response", "warning_needs_response")
# The evidence a merchant may submit (all empty until then; the sandbox does not model submitting it).
EVIDENCE_FIELDS = (
    "access_activity_log billing_address cancellation_policy cancellation_policy_disclosure cancellation_rebuttal "
    "customer_communication customer_email_address customer_name customer_purchase_ip customer_signature "
    "duplicate_charge_documentation duplicate_charge_explanation duplicate_charge_id product_description receipt "
    "refund_policy refund_policy_disclosure refund_refusal_explanation service_date service_documentation "
    "shipping_address shipping_carrier shipping_date shipping_documentation shipping_tracking_number "
    "uncategorized_file uncategorized_text"
).split()


def open_in_background(state: SandboxState, pi_id: str, charge_id: str) -> None:
    """Timer callback: the cardholder's bank disputes the charge as fraudulent."""
    try:
        with state.pi_transaction(pi_id, internal=True) as txn:
            charge = txn.charge(charge_id)
            if charge["disputed"] or charge["refunded"]:
                return
            charge["disputed"] = True
            dispute = _new(charge, pi_id)
            txn.disputes.append(dispute)
            txn.emit("charge.dispute.created", dispute)
    except errors.StripeError:
        pass  # reset in the meantime


def _new(charge: dict, pi_id: str) -> dict:
    now = int(time.time())
    return {
        "id": new_id("du"),
        "object": "dispute",
        "amount": charge["amount_captured"] - charge["amount_refunded"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": now + RESPONSE_SECONDS,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": None,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4",  # Visa's "other fraud, card-absent environment"
        "payment_intent": pi_id,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": "needs_response",
    }


def _state() -> SandboxState:
    return current_app.config["SANDBOX_STATE"]


def _get(dispute_id: str) -> dict:
    found = _state().disputes.get(dispute_id)
    if found is None:
        raise errors.no_such("dispute", dispute_id, "dispute")
    return found


@bp.get("/v1/disputes/<dispute_id>")
def retrieve_dispute(dispute_id):
    auth.require_secret()
    Params(from_request()).only(set())
    expand.validate("dispute")
    return expand.respond(_get(dispute_id))


@bp.post("/v1/disputes/<dispute_id>/close")
def close_dispute(dispute_id):
    """Accept the dispute: it is lost (a warning, closed), irreversibly."""
    auth.require_secret()
    Params(from_request()).only(set())
    expand.validate("dispute")
    state = _state()
    with state.pi_transaction(_get(dispute_id)["payment_intent"]) as txn:
        dispute = dict(state.disputes[dispute_id])
        if dispute["status"] not in OPEN:
            raise errors.invalid(
                f"This dispute is already closed (its status is {dispute['status']}).", None, "dispute_already_closed"
            )
        dispute["status"] = "warning_closed" if dispute["status"].startswith("warning_") else "lost"
        txn.disputes.append(dispute)
        txn.emit("charge.dispute.closed", dispute)
    return expand.respond(dispute)


@bp.post("/v1/disputes/<dispute_id>")
def update_dispute(dispute_id):
    auth.require_secret()
    _get(dispute_id)
    raise errors.invalid(
        "The Stripe sandbox does not model submitting evidence (POST /v1/disputes/{id}); it refuses it rather "
        "than pretend to. Close the dispute (POST /v1/disputes/{id}/close) to accept it.",
    )


@bp.get("/v1/disputes")
def list_disputes():
    auth.require_secret()
    raise errors.invalid("The Stripe sandbox does not model listing disputes; retrieve one by its id.")
