"""`expand[]`: replace an object's id fields with the objects they name, as Stripe does."""

from __future__ import annotations

import copy

from flask import current_app, jsonify

from . import errors
from .params import Params, from_request
from .payment_methods import public

# Per object type: the fields Stripe lets you expand and the kind of object each names.
EXPANDABLE = {
    "payment_intent": {"latest_charge": "charge", "payment_method": "payment_method", "customer": "customer"},
    "charge": {
        "payment_intent": "payment_intent",
        "balance_transaction": "balance_transaction",
        "customer": "customer",
    },
    "refund": {"charge": "charge", "payment_intent": "payment_intent", "balance_transaction": "balance_transaction"},
    "dispute": {"charge": "charge", "payment_intent": "payment_intent"},
}
MAX_DEPTH = 4  # Stripe: "You cannot expand more than 4 levels of a property."


def _cannot(path: str, list_hint: bool = False) -> errors.StripeError:
    message = f"This property cannot be expanded ({path})."
    if list_hint:
        message += f" You may want to try expanding 'data.{path}' instead."
    return errors.invalid(message)


def _fetch(kind: str, object_id: str, path: str) -> dict:
    state = current_app.config["SANDBOX_STATE"]
    store = {
        "charge": state.charges,
        "payment_intent": state.payment_intents,
        "payment_method": state.payment_methods,
    }.get(kind)
    found = store.get(object_id) if store is not None else None
    if found is None:
        # The sandbox keeps no customers or balance transactions: only a null one expands.
        raise errors.invalid(f"This property cannot be expanded ({path}): the sandbox has no {kind} objects.")
    return public(copy.deepcopy(found)) if kind == "payment_method" else copy.deepcopy(found)


def _walk(obj, parts: list[str], path: str):
    if obj is None:
        return None  # an empty field stays null, as on Stripe
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list":
        if head != "data" or not rest:
            raise _cannot(path, list_hint=head != "data")
        obj["data"] = [_walk(item, rest, path) for item in obj["data"]]
        return obj
    kind = EXPANDABLE.get(obj.get("object"), {}).get(head)
    if kind is None or head not in obj:
        raise _cannot(path)
    value = obj[head]
    if isinstance(value, str):
        value = _fetch(kind, value, path)
    obj[head] = _walk(value, rest, path) if rest else value
    return obj


def apply(obj: dict, paths: list[str]) -> dict:
    """A copy of obj with every dotted path in `paths` expanded."""
    obj = copy.deepcopy(obj)
    for path in paths:
        _walk(obj, path.split("."), path)
    return obj


# With a publishable key (Stripe.js) a PaymentIntent shows fewer fields; only this one expands.
PUBLISHABLE_EXPANDABLE = {"payment_method"}


def validate(kind: str, listed: bool = False, publishable: bool = False) -> None:
    """Refuse, before anything executes, an expansion no `kind` object (or list of them) allows."""
    for path in requested():
        parts = path.split(".")
        if publishable and parts[0] not in PUBLISHABLE_EXPANDABLE:
            raise _cannot(path)
        if listed:
            if parts[0] != "data" or len(parts) < 2:
                raise _cannot(path, list_hint=parts[0] != "data")
            parts = parts[1:]
        if len(parts) > MAX_DEPTH:
            raise errors.invalid(f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}")
        current = kind
        for part in parts:
            current = EXPANDABLE.get(current, {}).get(part)
            if current is None:
                raise _cannot(path)


def requested() -> list[str]:
    """The request's `expand[]` paths."""
    return Params(from_request()).list("expand") or []


def respond(obj: dict):
    """JSON for obj with the request's expansions."""
    paths = requested()
    return jsonify(apply(obj, paths) if paths else obj)
