"""Webhook endpoints through Stripe's API (/v1/webhook_endpoints): create, list, retrieve, delete.

Create takes `url`, `enabled_events` (event types the sandbox sends, or `*`), `api_version` (one the
sandbox answers in), `description` and `metadata`; `connect` is Stripe's but not modelled, so refused.
The signing secret is in the creation's answer only, as on Stripe.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify

from . import auth, errors, versions
from .params import LIST_PARAMS, Params, from_request, merge_metadata, page

bp = Blueprint("endpoints", __name__)

# The event types the sandbox sends: an endpoint can subscribe to these (or `*`); Stripe's others it refuses.
EVENT_TYPES = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "charge.succeeded",
        "charge.failed",
        "charge.pending",
        "charge.captured",
        "charge.refunded",
        "charge.refund.updated",
        "charge.dispute.created",
        "charge.dispute.closed",
        # Stripe sends it when a dispute's evidence or status changes; the sandbox models no evidence, so it
        # never sends one, but a store may subscribe to it.
        "charge.dispute.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)


def _state():
    return current_app.config["SANDBOX_STATE"]


def _url(p: Params) -> str:
    url = p.str("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.invalid(f"Invalid URL: {url}", "url", "url_invalid")
    return url


def _events(p: Params) -> list:
    events = p.list("enabled_events")
    if not events:
        raise errors.missing("enabled_events")
    for index, event_type in enumerate(events):
        if event_type != "*" and event_type not in EVENT_TYPES:
            raise errors.invalid(
                f"Invalid enabled_events[{index}]: the Stripe sandbox does not send {event_type!r} events "
                f"(it sends: {', '.join(sorted(EVENT_TYPES))}, or '*').",
                f"enabled_events[{index}]",
            )
    return events


def _api_version(p: Params) -> str | None:
    version = p.str("api_version")
    if version is None:
        return None
    try:
        return versions.requested(version)
    except errors.StripeError as err:
        raise errors.invalid(f"Invalid api_version: {err.message}", "api_version") from err


def _public(endpoint, with_secret=False) -> dict:
    shown = endpoint.as_json()
    if not with_secret:
        shown.pop("secret")
    return shown


@bp.post("/v1/webhook_endpoints")
def create_endpoint():
    """Register an endpoint; its signing secret is in this answer only."""
    auth.require_secret()
    p = Params(from_request())
    p.only({"url", "enabled_events", "api_version", "description", "metadata"}, frozenset({"connect"}))
    url, events, version = _url(p), _events(p), _api_version(p)
    description = p.str("description")
    metadata = merge_metadata({}, p.data.get("metadata", {}))
    secret = "whsec_" + secrets.token_hex(24)
    endpoint = _state().webhooks.add_endpoint(
        url, secret, events, api_version=version, description=description, metadata=metadata
    )
    return jsonify(_public(endpoint, with_secret=True))


def _get(endpoint_id: str):
    found = _state().webhooks.endpoints.get(endpoint_id)
    if found is None:
        raise errors.no_such("webhook_endpoint", endpoint_id, "webhook_endpoint")
    return found


@bp.get("/v1/webhook_endpoints")
def list_endpoints():
    auth.require_secret()
    p = Params(from_request())
    p.only(LIST_PARAMS - {"created"})
    items = sorted(_state().webhooks.endpoints.values(), key=lambda e: e.created, reverse=True)
    return jsonify(page([_public(e) for e in items], p, "/v1/webhook_endpoints"))


@bp.get("/v1/webhook_endpoints/<endpoint_id>")
def retrieve_endpoint(endpoint_id):
    auth.require_secret()
    Params(from_request()).only(set())
    return jsonify(_public(_get(endpoint_id)))


@bp.delete("/v1/webhook_endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id):
    auth.require_secret()
    _get(endpoint_id)
    _state().webhooks.remove_endpoint(endpoint_id)
    return jsonify({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})
