"""/v1/payment_intents: create, retrieve, update, confirm, cancel, capture, list."""

from __future__ import annotations

import secrets
import time
from functools import wraps

from flask import Blueprint, current_app, request

from . import auth, currencies, errors, expand, lifecycle
from .params import LIST_PARAMS, Params, from_request, merge_metadata, page
from .payment_methods import resolve
from .state import new_id

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
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
METHOD_TYPES = ("card", "sepa_debit")
# Stripe: "The payment method type sepa_debit only supports the following currencies: eur."
METHOD_CURRENCIES = {"sepa_debit": ("eur",)}
CONFIRM_PARAMS = {
    "payment_method",
    "payment_method_data",
    "return_url",
    "receipt_email",
    "payment_method_types",
    "capture_method",
}
CREATE_PARAMS = CONFIRM_PARAMS | {
    "amount",
    "currency",
    "automatic_payment_methods",
    "confirm",
    "confirmation_method",
    "customer",
    "description",
    "metadata",
}
UPDATE_PARAMS = {
    "amount",
    "currency",
    "capture_method",
    "customer",
    "payment_method_types",
    "description",
    "receipt_email",
    "metadata",
    "payment_method",
    "payment_method_data",
}
# Parameters of Stripe's PaymentIntent endpoints (its OpenAPI spec) that the sandbox does not model: refused
# with a message saying so, never accepted and ignored (a test would pass on behaviour Stripe does not have).
UNMODELLED = frozenset(
    {
        "amount_details",
        "application_fee_amount",
        "confirmation_token",
        "error_on_requires_action",
        "excluded_payment_method_types",
        "hooks",
        "mandate",
        "mandate_data",
        "off_session",
        "on_behalf_of",
        "payment_details",
        "payment_method_configuration",
        "payment_method_options",
        "radar_options",
        "setup_future_usage",
        "shipping",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_data",
        "transfer_group",
        "use_stripe_sdk",
    }
)
# Extra fields the shim (as Stripe.js) sends with a publishable key.
BROWSER_PARAMS = {"client_secret"}


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


def _money(p: Params, required: bool, current: dict | None = None) -> tuple[int, str]:
    """Amount and currency (given, or the PaymentIntent's), checked against Stripe's limits."""
    currency = currencies.parse(p.str("currency", required))
    amount = p.int("amount", required, minimum=1)
    currency = currency or current["currency"]
    if amount is not None or p.has("currency"):
        currencies.check_amount(current["amount"] if amount is None else amount, currency)
    return (current["amount"] if amount is None else amount), currency


def _method_types(p: Params) -> list | None:
    types = p.list("payment_method_types")
    for i, kind in enumerate(types or []):
        if kind not in METHOD_TYPES:
            raise errors.invalid(
                f"The payment method type provided: {kind} is invalid.",
                f"payment_method_types[{i}]",
                "payment_method_invalid_parameter",
            )
    return types


def check_currency(types: list, currency: str) -> None:
    """Stripe's refusal of a payment method type that does not take the PaymentIntent's currency."""
    for kind in types:
        allowed = METHOD_CURRENCIES.get(kind)
        if allowed and currency not in allowed:
            raise errors.invalid(
                f"The currency provided ({currency}) is invalid for one or more payment method types on this "
                f"PaymentIntent. The payment method type {kind} only supports the following currencies: "
                f"{', '.join(allowed)}. Either correct the provided currency, or use a different PaymentIntent to "
                "accept this payment method type."
            )


def automatic_types(currency: str) -> list:
    """With automatic payment methods, Stripe offers only the enabled types that take the currency."""
    return [kind for kind in METHOD_TYPES if currency in METHOD_CURRENCIES.get(kind, (currency,))]


def _customer(p: Params) -> None:
    """The sandbox has no Customer objects, so every customer is one Stripe would not find."""
    customer = p.str("customer")
    if customer:
        raise errors.no_such("customer", customer, "customer", 400)


def _automatic(p: Params, types: list | None) -> dict | None:
    apm = p.sub("automatic_payment_methods")
    if apm is not None and types:
        raise errors.only_one_of("automatic_payment_methods", "payment_method_types")
    if apm is not None:
        apm.only({"enabled", "allow_redirects"})
        if apm.bool("enabled") is None:
            raise errors.missing(apm.name("enabled"))
    if types:
        return None
    enabled = True if apm is None else apm.bool("enabled")
    redirects = "always" if apm is None else apm.str("allow_redirects", choices=("always", "never"))
    return {"enabled": bool(enabled), "allow_redirects": redirects or "always"} if enabled else None


def _confirmation_method(p: Params) -> str:
    method = p.str("confirmation_method", choices=("automatic", "manual"))
    if method == "manual":
        # Manual confirmation (confirm only with the secret key, next actions handled server-side) is not modelled.
        raise errors.not_modelled("confirmation_method")
    return "automatic"


def _new_payment_intent(p: Params) -> dict:
    amount, currency = _money(p, True)
    types = _method_types(p)
    apm = _automatic(p, types)
    _customer(p)
    if types:
        check_currency(types, currency)
    pi_id = new_id("pi")
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": apm,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": p.str("capture_method", choices=CAPTURE_METHODS) or "automatic_async",
        "client_secret": f"{pi_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": _confirmation_method(p),
        "created": int(time.time()),
        "currency": currency,
        "customer": None,
        "description": p.str("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": merge_metadata({}, p.data.get("metadata", {})),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": types or automatic_types(currency),
        "processing": None,
        "receipt_email": p.str("receipt_email"),
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


@bp.post("/v1/payment_intents")
def create():
    """Create a PaymentIntent, optionally confirming it at once (`confirm=true`)."""
    auth.require_secret()
    state = _state()
    p = Params(from_request())
    p.only(CREATE_PARAMS, UNMODELLED)
    expand.validate("payment_intent")
    pi = _new_payment_intent(p)
    confirm_now = p.bool("confirm")
    pm = resolve(state, p)
    if pm is not None and not confirm_now:
        lifecycle.check_usable(pi, pm)
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
    amount, currency = _money(p, False, pi)
    types = _method_types(p)
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
    _customer(p)
    expand.validate("payment_intent")
    with state.pi_transaction(pi_id) as txn:
        _update_fields(txn, p)
        pm = resolve(state, p)
        if pm is not None:
            if txn.pi["status"] not in lifecycle.UPDATABLE:
                raise lifecycle.not_updatable(txn.pi, "payment_method")
            lifecycle.check_usable(txn.pi, pm)
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
