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


@bp.get("/v1/events")
def list_events():
    """Newest first; `type` (wildcards such as `payment_intent.*`), `types[]`, pagination."""
    auth.require_secret()
    p = Params(from_request())
    with current_app.config["SANDBOX_STATE"].lock:
        items = list(reversed(current_app.config["SANDBOX_STATE"].events))
    patterns = ([p.str("type")] if p.str("type") else []) + (p.list("types") or [])
    if patterns:
        items = [e for e in items if any(_matches(e["type"], pat) for pat in patterns)]
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
