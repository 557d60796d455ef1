"""/v1/payment_intents: create, retrieve, update, confirm, cancel, capture, list."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, request

from . import auth, errors, expand, lifecycle
from .params import LIST_PARAMS, Params, from_request, merge_metadata, page
from .payment_methods import resolve
from .pi_params import (
    BROWSER_PARAMS,
    CANCELLATION_REASONS,
    CAPTURE_METHODS,
    CONFIRM_PARAMS,
    CREATE_PARAMS,
    UNMODELLED,
    UPDATE_PARAMS,
    automatic_types,
    check_currency,
    check_customer,
    check_usable,
    method_types,
    money,
    new_payment_intent,
)

bp = Blueprint("payment_intents", __name__)

# Fields Stripe returns when a PaymentIntent is read or confirmed with a publishable key.
PUBLISHABLE_FIELDS = (
    "id",
    "object",
    "amount",
    "amount_details",
    "automatic_payment_methods",
    "canceled_at",
    "cancellation_reason",
    "capture_method",
    "client_secret",
    "confirmation_method",
    "created",
    "currency",
    "description",
    "last_payment_error",
    "livemode",
    "next_action",
    "payment_method",
    "payment_method_types",
    "processing",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "status",
)


def _state():
    return current_app.config["SANDBOX_STATE"]


def _base_url() -> str:
    return request.host_url.rstrip("/")


def present(pi: dict) -> dict:
    """The PaymentIntent as the caller's key may see it."""
    if auth.is_secret():
        return pi
    return {key: pi.get(key) for key in PUBLISHABLE_FIELDS}


def answers_publishable(view):
    """Reduce the PaymentIntent (also one embedded in an error) for publishable keys."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            expand.validate("payment_intent", publishable=not auth.is_secret())
            return expand.respond(present(view(*args, **kwargs)))
        except errors.StripeError as err:
            if "payment_intent" in err.extra:
                err.extra["payment_intent"] = present(err.extra["payment_intent"])
            raise

    return wrapper


@bp.post("/v1/payment_intents")
def create():
    """Create a PaymentIntent, optionally confirming it at once (`confirm=true`)."""
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only(CREATE_PARAMS, UNMODELLED)
    expand.validate("payment_intent")
    pi = new_payment_intent(p)
    confirm_now = p.bool("confirm")
    pm = resolve(state, p)
    if pm is not None and not confirm_now:
        check_usable(pi, pm)
        pi.update(payment_method=pm["id"], status="requires_confirmation")
    state.add_pi(pi)
    state.emit("payment_intent.created", pi)
    if confirm_now:
        return expand.respond(_confirm(pi["id"], p, pm))
    return expand.respond(pi)


@bp.get("/v1/payment_intents/<pi_id>")
@answers_publishable
def retrieve(pi_id):
    """Retrieve; a publishable key needs the matching client_secret and sees fewer fields."""
    state = _state()
    p = Params(from_request())
    p.only(BROWSER_PARAMS)
    if not auth.is_secret():
        pi = state.payment_intents.get(pi_id)
        if pi is None:
            raise errors.authentication(auth.PUBLISHABLE_NOT_ALLOWED)
    else:
        pi = state.get_pi(pi_id)
    auth.require_client_secret(pi, p.str("client_secret"))
    return pi


@bp.get("/v1/payment_intents")
def list_all():
    auth.require_secret()
    p = Params(from_request())
    p.only(LIST_PARAMS, frozenset({"customer"}))
    expand.validate("payment_intent", listed=True)
    items = list(reversed(_state().payment_intents.values()))
    return expand.respond(page(items, p, "/v1/payment_intents"))


def _update_fields(txn, p: Params) -> None:
    pi = txn.pi
    amount, currency = money(p, False, pi)
    types = method_types(p)
    # Checked before anything changes: a refused update leaves the PaymentIntent as it was.
    check_currency(
        automatic_types(currency) if pi["automatic_payment_methods"] else types or pi["payment_method_types"], currency
    )
    guarded = {
        "amount": lambda: amount,
        "currency": lambda: currency,
        "capture_method": lambda: p.str("capture_method", choices=CAPTURE_METHODS),
        "payment_method_types": lambda: types,
    }
    for field, parse in guarded.items():
        value = parse()
        if value is None or value == pi[field]:
            continue
        if pi["status"] not in lifecycle.UPDATABLE:
            raise lifecycle.not_updatable(pi, field)
        pi[field] = value
        if pi["status"] == "requires_action":
            # The pending authentication was for the old terms; it must be confirmed again.
            pi.update(status="requires_confirmation", next_action=None)
    if pi["automatic_payment_methods"]:
        pi["payment_method_types"] = automatic_types(pi["currency"])
    for field in ("description", "receipt_email"):
        if p.has(field):
            pi[field] = p.str(field) or None
    if p.has("metadata"):
        pi["metadata"] = merge_metadata(pi["metadata"], p.data["metadata"])


@bp.post("/v1/payment_intents/<pi_id>")
def update(pi_id):
    """Update amount/currency (only before payment) and metadata/description (any time).

    Any successful update clears `last_payment_error`: Stripe's spec describes it as "The payment error
    encountered in the previous PaymentIntent confirmation. It will be cleared if the PaymentIntent is later
    updated for any reason."
    """
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only(UPDATE_PARAMS, UNMODELLED)
    check_customer(p)
    expand.validate("payment_intent")
    with state.pi_transaction(pi_id) as txn:
        _update_fields(txn, p)
        pm = resolve(state, p)
        if pm is not None:
            if txn.pi["status"] not in lifecycle.UPDATABLE:
                raise lifecycle.not_updatable(txn.pi, "payment_method")
            check_usable(txn.pi, pm)
            txn.pi.update(payment_method=pm["id"], status="requires_confirmation", next_action=None)
        txn.pi["last_payment_error"] = None
    return expand.respond(txn.pi)


def _confirm(pi_id: str, p: Params, pm: dict | None) -> dict:
    with _state().pi_transaction(pi_id) as txn:
        auth.require_client_secret(txn.pi, p.str("client_secret"))
        lifecycle.confirm(txn, pm, p.str("return_url"), _base_url())
    return txn.pi


@bp.post("/v1/payment_intents/<pi_id>/confirm")
@answers_publishable
def confirm(pi_id):
    """Confirm, server side (secret key) or as Stripe.js does (publishable key + client_secret)."""
    state = _state()
    p = Params(from_request())
    p.only(CONFIRM_PARAMS | BROWSER_PARAMS, UNMODELLED)
    if not auth.is_secret() and pi_id not in state.payment_intents:
        raise errors.authentication(auth.PUBLISHABLE_NOT_ALLOWED)
    state.get_pi(pi_id)
    return _confirm(pi_id, p, resolve(state, p))


@bp.post("/v1/payment_intents/<pi_id>/capture")
def capture(pi_id):
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only({"amount_to_capture", "metadata"}, UNMODELLED | {"final_capture", "application_fee_amount"})
    expand.validate("payment_intent")
    amount = p.int("amount_to_capture", minimum=1)
    with state.pi_transaction(pi_id) as txn:
        lifecycle.capture(txn, amount)
        if p.has("metadata"):
            txn.pi["metadata"] = merge_metadata(txn.pi["metadata"], p.data["metadata"])
    return expand.respond(txn.pi)


@bp.post("/v1/payment_intents/<pi_id>/cancel")
def cancel(pi_id):
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only({"cancellation_reason"})
    reason = p.str("cancellation_reason", choices=CANCELLATION_REASONS)
    expand.validate("payment_intent")
    with state.pi_transaction(pi_id) as txn:
        lifecycle.cancel(txn, reason)
    return expand.respond(txn.pi)


# Writes that lock one PaymentIntent: their injected latency is spent holding the lock.
LOCKING_ENDPOINTS = {
    "payment_intents.update",
    "payment_intents.confirm",
    "payment_intents.capture",
    "payment_intents.cancel",
    "refunds.create_refund",
}
