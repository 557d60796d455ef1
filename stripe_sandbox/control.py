"""The sandbox-only control API under /_sandbox (no API key needed; never part of Stripe)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from . import auth, errors, lifecycle
from .payment_intents import answers_publishable

bp = Blueprint("control", __name__, url_prefix="/_sandbox")


def _state():
    return current_app.config["SANDBOX_STATE"]


def _json() -> dict:
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise errors.invalid("The request body must be a JSON object.")
    return body


@bp.post("/reset")
def reset():
    """Forget all objects, events, deliveries and idempotency keys; restore start-up faults."""
    _state().reset()
    return jsonify({"reset": True})


@bp.get("/state")
def state_summary():
    return jsonify(_state().summary())


@bp.get("/webhook_endpoints")
def list_endpoints():
    endpoints = list(_state().webhooks.endpoints.values())
    return jsonify({"object": "list", "data": [e.as_json() for e in endpoints]})


@bp.post("/webhook_endpoints")
def add_endpoint():
    """Register {url, secret, enabled_events}."""
    body = _json()
    for key in ("url", "secret"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise errors.missing(key)
    events = body.get("enabled_events") or ["*"]
    if not isinstance(events, list):
        raise errors.invalid("enabled_events must be a list of event types.", "enabled_events")
    endpoint = _state().webhooks.add_endpoint(body["url"], body["secret"], events)
    return jsonify(endpoint.as_json())


@bp.delete("/webhook_endpoints/<endpoint_id>")
def remove_endpoint(endpoint_id):
    if not _state().webhooks.remove_endpoint(endpoint_id):
        raise errors.no_such("webhook_endpoint", endpoint_id)
    return jsonify({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})


@bp.delete("/webhook_endpoints")
def remove_all_endpoints():
    webhooks = _state().webhooks
    removed = [eid for eid in list(webhooks.endpoints) if webhooks.remove_endpoint(eid)]
    return jsonify({"deleted": removed})


@bp.get("/deliveries")
def deliveries():
    """Every delivery attempt, oldest first; `?event=evt_...` filters."""
    data = _state().webhooks.list_deliveries(request.args.get("event"))
    return jsonify({"object": "list", "data": data})


@bp.get("/faults")
def get_faults():
    return jsonify(_state().faults.snapshot())


@bp.post("/faults")
def set_faults():
    """Merge faults into the current configuration (a null value removes one)."""
    _state().faults.update(_json())
    return jsonify(_state().faults.snapshot())


@bp.delete("/faults")
def clear_faults():
    _state().faults.clear()
    return jsonify(_state().faults.snapshot())


@bp.get("/faults/stats")
def fault_stats():
    return jsonify(_state().faults.snapshot()["stats"])


def _identify_optional() -> None:
    """The caller's key if any: the 3DS page and the shim may call with no key at all."""
    if request.headers.get("Authorization"):
        auth.identify(_state().settings)


@bp.post("/payment_intents/<pi_id>/authenticate")
@answers_publishable
def authenticate(pi_id):
    """Finish the 3D Secure challenge: {"outcome": "complete"|"fail", "client_secret"}."""
    _identify_optional()
    state = _state()
    body = _json()
    outcome = body.get("outcome", "complete")
    if outcome not in ("complete", "fail"):
        raise errors.invalid("outcome must be complete or fail.", "outcome")
    if not auth.is_secret() and pi_id not in state.payment_intents:
        raise errors.authentication(auth.PUBLISHABLE_NOT_ALLOWED)
    with state.pi_transaction(pi_id, internal=True) as txn:
        auth.require_client_secret(txn.pi, body.get("client_secret"))
        lifecycle.authenticate(txn, outcome == "complete")
    return txn.pi


@bp.post("/payment_intents/<pi_id>/settle")
def settle(pi_id):
    """End a `processing` (SEPA) payment now instead of waiting for the delay."""
    with _state().pi_transaction(pi_id, internal=True) as txn:
        lifecycle.settle(txn)
    return jsonify(txn.pi)
