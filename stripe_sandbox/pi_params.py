"""What the PaymentIntent endpoints take: their parameters, the checks on them, and a new PaymentIntent."""

from __future__ import annotations

import secrets
import time

from . import currencies, errors
from .params import Params, merge_metadata
from .state import new_id

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


# Stripe's words (quoted in stripe/stripe-react-native#1170, liberapay/liberapay.com#2686): a PaymentMethod
# that paid (or tried to pay) without a Customer is spent. The sandbox has no Customers, so every used one is.
PREVIOUSLY_USED = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared "
    "with a connected account without Customer attachment, or was detached from a Customer. It may not be used "
    "again. To use a PaymentMethod multiple times, you must attach it to a Customer first."
)


def check_usable(pi: dict, pm: dict) -> None:
    """Refuse a spent PaymentMethod, or one of a type the PaymentIntent does not take, as Stripe does."""
    if pm.get("_used") and pi["payment_method"] != pm["id"]:
        raise errors.invalid(PREVIOUSLY_USED, "payment_method")
    kind = pm["type"]
    if kind not in pi["payment_method_types"]:
        # Stripe's message, as quoted in Automattic/woocommerce-payments#7026 (for `link`).
        raise errors.invalid(
            f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please attach a "
            f"PaymentMethod of one of the following types: {', '.join(pi['payment_method_types'])}. "
            f'Alternatively, update the allowed payment_method_types for this PaymentIntent to include "{kind}".'
        )


def money(p: Params, required: bool, current: dict | None = None) -> tuple[int, str]:
    """Amount and currency (given, or the PaymentIntent's), checked against Stripe's limits."""
    currency = currencies.parse(p.str("currency", required))
    amount = p.int("amount", required, minimum=1)
    currency = currency or current["currency"]
    if amount is not None or p.has("currency"):
        currencies.check_amount(current["amount"] if amount is None else amount, currency)
    return (current["amount"] if amount is None else amount), currency


def method_types(p: Params) -> list | None:
    """`payment_method_types[]`, each one a type the sandbox models."""
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


def check_customer(p: Params) -> None:
    """The sandbox has no Customer objects, so every customer is one Stripe would not find."""
    customer = p.str("customer")
    if customer:
        raise errors.no_such("customer", customer, "customer", 400)


def automatic(p: Params, types: list | None) -> dict | None:
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


def confirmation_method(p: Params) -> str:
    method = p.str("confirmation_method", choices=("automatic", "manual"))
    if method == "manual":
        # Manual confirmation (confirm only with the secret key, next actions handled server-side) is not modelled.
        raise errors.not_modelled("confirmation_method")
    return "automatic"


def new_payment_intent(p: Params) -> dict:
    amount, currency = money(p, True)
    types = method_types(p)
    apm = automatic(p, types)
    check_customer(p)
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
        "confirmation_method": confirmation_method(p),
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
