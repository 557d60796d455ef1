"""The PaymentIntent status machine: confirm, authenticate, settle, capture, cancel."""

from __future__ import annotations

import copy
import time
from urllib.parse import urlencode

from . import disputes, errors
from .payment_methods import DECLINE_MESSAGES, public
from .pi_params import check_usable
from .refunds import balance_transaction, new_charge
from .state import SandboxState, Transaction

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
AUTH_FAILURE = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this "
    "PaymentIntent again."
)
REDIRECTS_NEED_RETURN_URL = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, "
    "some of which may require a full page redirect to succeed. If you do not want to accept "
    "redirect-based payment methods, set `automatic_payment_methods[allow_redirects]` to "
    "`never` when creating Setup Intents and Payment Intents. If you do want to accept "
    "redirect-based payment methods, set `return_url` when confirming Setup Intents and "
    "Payment Intents."
)


def _statuses(allowed) -> str:
    return ", ".join(allowed)


def _require_status(pi: dict, allowed, action: str, done: str) -> None:
    """Stripe's refusal to `action` a PaymentIntent whose status is not in `allowed`."""
    if pi["status"] not in allowed:
        raise errors.unexpected_state(
            f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be {done}: "
            f"{_statuses(allowed)}.",
            copy.deepcopy(pi),
        )


def not_updatable(pi: dict, param: str) -> errors.StripeError:
    return errors.unexpected_state(
        f"This PaymentIntent's {param} could not be updated because it has a status of "
        f"{pi['status']}. You may only update the {param} of a PaymentIntent with one of the "
        f"following statuses: {_statuses(UPDATABLE)}.",
        copy.deepcopy(pi),
        param,
    )


def _pm_of(txn: Transaction, pm: dict | None) -> dict:
    pi = txn.pi
    if pm is None and pi["payment_method"]:
        pm = txn.state.payment_methods[pi["payment_method"]]
    if pm is None:
        raise errors.unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. You "
            "can either update the PaymentIntent with a payment method and then confirm it "
            "again, or confirm it again directly with a payment method.",
            copy.deepcopy(pi),
        )
    return pm


def _needs_return_url(pi: dict, return_url: str | None) -> bool:
    apm = pi["automatic_payment_methods"]
    return bool(apm and apm["enabled"] and apm["allow_redirects"] != "never" and not return_url)


def confirm(txn: Transaction, pm: dict | None, return_url: str | None, base_url: str) -> None:
    """Confirm the PaymentIntent with a PaymentMethod; the outcome follows the test method."""
    pi = txn.pi
    _require_status(pi, CONFIRMABLE, "confirm", "confirmed")
    pm = _pm_of(txn, pm)
    check_usable(pi, pm)
    if _needs_return_url(pi, return_url):
        raise errors.invalid(REDIRECTS_NEED_RETURN_URL, "return_url")
    with txn.state.lock:
        pm["_used"] = True  # no Customer to keep it for: it cannot pay again (check_usable)
    pi.update(payment_method=pm["id"], last_payment_error=None, next_action=None)
    outcome = pm["_outcome"]
    kind = outcome["outcome"]
    if kind == "succeed":
        succeed(txn, pm)
    elif kind == "decline":
        _decline(txn, pm, outcome["decline_code"])
    elif kind == "authenticate":
        _require_action(txn, return_url, base_url)
    else:
        _start_processing(txn, pm, kind)


def succeed(txn: Transaction, pm: dict) -> None:
    """A successful authorization: captured at once, or held for a manual capture."""
    pi = txn.pi
    charge = new_charge(txn, pm, "succeeded")
    pi["next_action"] = None
    txn.emit("charge.succeeded", charge)
    if pi["capture_method"] == "manual":
        pi.update(status="requires_capture", amount_capturable=pi["amount"])
        txn.emit("payment_intent.amount_capturable_updated", pi)
    else:
        pi.update(status="succeeded", amount_received=pi["amount"])
        txn.emit("payment_intent.succeeded", pi)
        if pm["_outcome"].get("after") == "dispute":
            state = txn.state
            state.later(state.settings.dispute_delay, disputes.open_in_background, state, pi["id"], charge["id"])


def _decline(txn: Transaction, pm: dict, decline_code: str) -> None:
    pi = txn.pi
    message = DECLINE_MESSAGES[decline_code]
    charge = new_charge(txn, pm, "failed", failure_code="card_declined", failure_message=message)
    error = {
        "charge": charge["id"],
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": errors.DOC_URL + "card-declined",
        "message": message,
        "payment_method": public(pm),
        "type": "card_error",
    }
    pi.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
    txn.emit("charge.failed", charge)
    txn.emit("payment_intent.payment_failed", pi)
    raise errors.StripeError(
        402,
        message,
        type="card_error",
        code="card_declined",
        extra={
            "decline_code": decline_code,
            "charge": charge["id"],
            "payment_intent": copy.deepcopy(pi),
            "payment_method": public(pm),
        },
    )


def _require_action(txn: Transaction, return_url: str | None, base_url: str) -> None:
    pi = txn.pi
    query = {"client_secret": pi["client_secret"]}
    if return_url:
        query["return_url"] = return_url
    url = f"{base_url}/_sandbox/3ds/{pi['id']}?{urlencode(query)}"
    if return_url:
        action = {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}
    else:
        action = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": url, "source": pi["payment_method"]},
        }
    pi.update(status="requires_action", next_action=action)
    txn.emit("payment_intent.requires_action", pi)


def authenticate(txn: Transaction, complete: bool) -> None:
    """The shopper passes or fails the 3D Secure challenge."""
    pi = txn.pi
    if pi["status"] != "requires_action":
        raise errors.unexpected_state(
            f"This PaymentIntent cannot be authenticated because it has a status of "
            f"{pi['status']}; it must be requires_action.",
            copy.deepcopy(pi),
        )
    pm = txn.state.payment_methods[pi["payment_method"]]
    if complete:
        succeed(txn, pm)
        return
    error = {
        "code": "payment_intent_authentication_failure",
        "doc_url": errors.DOC_URL + "payment-intent-authentication-failure",
        "message": AUTH_FAILURE,
        "payment_method": public(pm),
        "type": "invalid_request_error",
    }
    pi.update(status="requires_payment_method", payment_method=None, next_action=None, last_payment_error=error)
    txn.emit("payment_intent.payment_failed", pi)


def _start_processing(txn: Transaction, pm: dict, kind: str) -> None:
    pi = txn.pi
    charge = new_charge(txn, pm, "pending")
    pi["status"] = "processing"
    txn.emit("charge.pending", charge)
    txn.emit("payment_intent.processing", pi)
    state = txn.state
    delay = state.settings.sepa_delay * (3 if kind == "late_succeed" else 1)
    state.later(delay, settle_in_background, state, pi["id"])


def settle_in_background(state: SandboxState, pi_id: str) -> None:
    """Timer callback: settle the payment if it is still processing."""
    try:
        with state.pi_transaction(pi_id, internal=True) as txn:
            if txn.pi["status"] == "processing":
                settle(txn)
    except errors.StripeError:
        pass  # reset in the meantime


def settle(txn: Transaction) -> None:
    """End a `processing` payment as its test IBAN says (succeeds, or fails)."""
    pi = txn.pi
    if pi["status"] != "processing":
        raise errors.unexpected_state(
            f"This PaymentIntent cannot be settled because it has a status of {pi['status']}; it must be processing.",
            copy.deepcopy(pi),
        )
    pm = txn.state.payment_methods[pi["payment_method"]]
    charge = txn.charge(pi["latest_charge"])
    if pm["_outcome"]["outcome"] != "processing_fail":
        charge.update(
            status="succeeded",
            paid=True,
            captured=True,
            amount_captured=charge["amount"],
            balance_transaction=balance_transaction(),
        )
        pi.update(status="succeeded", amount_received=pi["amount"])
        txn.emit("charge.succeeded", charge)
        txn.emit("payment_intent.succeeded", pi)
        return
    message = "The customer's account has insufficient funds to cover this payment."
    charge.update(
        status="failed",
        failure_code="insufficient_funds",
        failure_message=message,
        outcome={**charge["outcome"], "type": "issuer_declined"},
    )
    pi.update(
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={
            "charge": charge["id"],
            "code": "payment_intent_payment_attempt_failed",
            "decline_code": "insufficient_funds",
            "doc_url": errors.DOC_URL + "payment-intent-payment-attempt-failed",
            "message": message,
            "payment_method": public(pm),
            "type": "invalid_request_error",
        },
    )
    txn.emit("charge.failed", charge)
    txn.emit("payment_intent.payment_failed", pi)


def capture(txn: Transaction, amount_to_capture: int | None) -> None:
    """Capture all or part of a held authorization."""
    pi = txn.pi
    if pi["status"] != "requires_capture":
        raise errors.unexpected_state(
            f"This PaymentIntent could not be captured because it has a status of "
            f"{pi['status']}. Only a PaymentIntent with one of the following statuses may be "
            "captured: requires_capture.",
            copy.deepcopy(pi),
        )
    amount = pi["amount_capturable"] if amount_to_capture is None else amount_to_capture
    if amount > pi["amount_capturable"]:
        raise errors.StripeError(
            400,
            f"The amount to capture ({amount}) must be less than or equal to the "
            f"PaymentIntent's amount_capturable ({pi['amount_capturable']}).",
            code="amount_too_large",
            param="amount_to_capture",
        )
    charge = txn.charge(pi["latest_charge"])
    charge.update(captured=True, amount_captured=amount, balance_transaction=balance_transaction())
    pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
    txn.emit("charge.captured", charge)
    txn.emit("payment_intent.succeeded", pi)


def cancel(txn: Transaction, reason: str | None) -> None:
    """Cancel the PaymentIntent (releasing a held authorization)."""
    pi = txn.pi
    _require_status(pi, CANCELABLE, "cancel", "canceled")
    if pi["status"] == "requires_capture":
        charge = txn.charge(pi["latest_charge"])
        charge.update(refunded=True, amount_refunded=charge["amount"])
    pi.update(
        status="canceled",
        canceled_at=int(time.time()),
        cancellation_reason=reason,
        next_action=None,
        amount_capturable=0,
    )
    txn.emit("payment_intent.canceled", pi)
