"""Events: `evt_` objects snapshotting the object they are about; list and retrieve."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g, has_request_context, jsonify, request

from . import auth, errors
from .params import Params, from_request, page
from .state import API_VERSION, new_id

bp = Blueprint("events", __name__)


def _request_info(automatic: bool) -> dict:
    # Stripe: `request.id` is "null" when "the event was automatic" (docs.stripe.com/api/events/object).
    if automatic or not has_request_context():
        return {"id": None, "idempotency_key": None}
    return {"id": g.get("request_id"), "idempotency_key": request.headers.get("Idempotency-Key")}


def build_event(state, event_type: str, obj: dict, automatic: bool = False) -> dict:
    """An event whose data.object is the object's state at this moment."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": state.webhooks.count_subscribers(event_type),
        "request": _request_info(automatic),
        "type": event_type,
    }


def _matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


def _created_filter(p: Params):
    """`created` as Stripe takes it: a Unix time, or a range of gt/gte/lt/lte."""
    if not p.has("created"):
        return lambda created: True
    if not isinstance(p.data["created"], dict):
        exact = p.int("created")
        return lambda created: created == exact
    bounds = p.sub("created")
    bounds.only({"gt", "gte", "lt", "lte"})
    limits = {op: bounds.int(op) for op in ("gt", "gte", "lt", "lte") if bounds.has(op)}
    tests = {"gt": lambda c, v: c > v, "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v}
    return lambda created: all(tests[op](created, value) for op, value in limits.items())


# Stripe: "types: An array of up to 20 strings containing specific event names ... You may pass either type
# or types, but not both." (its OpenAPI spec, GET /v1/events; FriendlyCaptcha/friendly-stripe-sync#20 saw
# the 400 for 21).
MAX_TYPES = 20
LIST_PARAMS = {"created", "delivery_success", "ending_before", "limit", "starting_after", "type", "types"}


def _patterns(p: Params) -> list:
    if p.has("type") and p.has("types"):
        raise errors.only_one_of("type", "types")
    types = p.list("types") or []
    if len(types) > MAX_TYPES:
        raise errors.invalid(
            f"Invalid array: types can have at most {MAX_TYPES} items, but {len(types)} were given.", "types"
        )
    return ([p.str("type")] if p.str("type") else []) + types


@bp.get("/v1/events")
def list_events():
    """Newest first; `type` (wildcards such as `payment_intent.*`), `types[]`, `created`, `delivery_success`,
    pagination. `delivery_success=false`: events still pending or failed at one of their endpoints."""
    auth.require_secret()
    p = Params(from_request())
    p.only(LIST_PARAMS)
    state = current_app.config["SANDBOX_STATE"]
    patterns = _patterns(p)
    with state.lock:
        items = [dict(e) for e in reversed(state.events)]
    if patterns:
        items = [e for e in items if any(_matches(e["type"], pat) for pat in patterns)]
    created = _created_filter(p)
    items = [e for e in items if created(e["created"])]
    success = p.bool("delivery_success")
    if success is not None:
        # Delivered: every endpoint it was sent to answered 2xx, so none is pending any more.
        items = [e for e in items if (e["pending_webhooks"] == 0) == success]
    return jsonify(page(items, p, "/v1/events"))


@bp.get("/v1/events/<event_id>")
def retrieve_event(event_id):
    auth.require_secret()
    Params(from_request()).only(set())
    state = current_app.config["SANDBOX_STATE"]
    with state.lock:
        found = state.events_by_id.get(event_id)
        found = dict(found) if found else None
    if found is None:
        raise errors.no_such("event", event_id)
    return jsonify(found)
