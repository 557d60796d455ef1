"""Events: `evt_` objects snapshotting the object they are about; list and retrieve."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g, has_request_context, jsonify, request

from . import auth, errors
from .params import Params, from_request, page
from .state import API_VERSION, new_id

bp = Blueprint("events", __name__)


def _request_info() -> dict:
    if not has_request_context():
        return {"id": None, "idempotency_key": None}
    return {"id": g.get("request_id"), "idempotency_key": request.headers.get("Idempotency-Key")}


def build_event(state, event_type: str, obj: dict) -> dict:
    """An event whose data.object is the object's state at this moment."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": state.webhooks.count_subscribers(event_type),
        "request": _request_info(),
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


def _delivered(state, events) -> set:
    """Ids of events that every endpoint they were sent to acknowledged with a 2xx."""
    acknowledged: dict[str, set] = {}
    for d in state.webhooks.list_deliveries():
        if d["status_code"] is not None and 200 <= d["status_code"] < 300:
            acknowledged.setdefault(d["event_id"], set()).add(d["endpoint"])
    return {e["id"] for e in events if len(acknowledged.get(e["id"], ())) >= e["pending_webhooks"]}


@bp.get("/v1/events")
def list_events():
    """Newest first; `type` (wildcards such as `payment_intent.*`), `types[]`, `created`, `delivery_success`,
    pagination. `delivery_success=false`: events still pending or failed at one of their endpoints."""
    auth.require_secret()
    p = Params(from_request())
    state = current_app.config["SANDBOX_STATE"]
    with state.lock:
        items = list(reversed(state.events))
    patterns = ([p.str("type")] if p.str("type") else []) + (p.list("types") or [])
    if patterns:
        items = [e for e in items if any(_matches(e["type"], pat) for pat in patterns)]
    created = _created_filter(p)
    items = [e for e in items if created(e["created"])]
    success = p.bool("delivery_success")
    if success is not None:
        delivered = _delivered(state, items)
        items = [e for e in items if (e["id"] in delivered) == success]
    return jsonify(page(items, p, "/v1/events"))


@bp.get("/v1/events/<event_id>")
def retrieve_event(event_id):
    auth.require_secret()
    state = current_app.config["SANDBOX_STATE"]
    with state.lock:
        found = [e for e in state.events if e["id"] == event_id]
    if not found:
        raise errors.no_such("event", event_id)
    return jsonify(found[0])
