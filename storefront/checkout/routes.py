"""Checkout and order JSON routes."""

import secrets

from flask import Blueprint, current_app, jsonify, request, session

from ..extensions import limiter
from ..guards import json_body
from ..payments.sync import sync_until_current
from ..wiring import current_shop, session_cart_id, with_session_cart
from . import domain, service
from .cancel import cancel_checkout
from .holds import Client

bp = Blueprint("checkout", __name__, url_prefix="/api")

TOO_MANY_HANDSHAKES = "Too many payment attempts in a short time; please wait a minute and try again."


def _session_limit():
    return current_app.config["CHECKOUT_RATE_LIMIT"]


def _address_limit():
    return current_app.config["CHECKOUT_ADDRESS_RATE_LIMIT"]


def _address_key():
    return f"addr:{request.remote_addr}"


def _client():
    """Who asks for the handshake: the address the request came from (request.remote_addr: behind a proxy,
    the proxy's unless TRUSTED_PROXY_HOPS counts it) and the session's own id, given once."""
    sid = session.get("hold_id")
    if not isinstance(sid, str):
        sid = session["hold_id"] = secrets.token_hex(8)
    return Client(address=request.remote_addr, session=sid)


@bp.post("/checkout")
def start_checkout():
    shop = current_shop()
    answer = with_session_cart(shop, lambda cart_id: service.start_checkout(shop, cart_id))
    return jsonify({**answer, "publishable_key": current_app.config["STRIPE_PUBLISHABLE_KEY"]})


# Each handshake freezes a cart and reserves its stock: counted per session (the cart limits' key) and per
# address, whatever the answer.
@bp.post("/checkout/confirm")
@limiter.limit(_session_limit, scope="checkout_confirm", error_message=TOO_MANY_HANDSHAKES)
@limiter.limit(_address_limit, key_func=_address_key, scope="checkout_confirm_addr", error_message=TOO_MANY_HANDSHAKES)
def confirm():
    shown_version = domain.parse_cart_version(json_body())
    shop = current_shop()
    lease = current_app.config["SYNC_LEASE_SECONDS"]
    client = _client()

    def sync_now(cart_id):
        return sync_until_current(shop, cart_id, wait_seconds=lease, lease_seconds=lease)

    return jsonify(
        with_session_cart(shop, lambda cart_id: service.confirm(shop, cart_id, shown_version, sync_now, client))
    )


@bp.post("/checkout/cancel")
def cancel():
    # No body is needed; one that is sent follows the JSON rules of every other route.
    if request.get_data(cache=True):
        json_body()
    # Only a frozen cart has anything to cancel, and a frozen cart has a row: nothing is written for one
    # without (no cookie, a reserved id, a cart removed as abandoned), which gets its empty cart back.
    return jsonify(cancel_checkout(current_shop(), session_cart_id()))


@bp.get("/orders/<int(max=2147483647):order_id>")
def get_order(order_id):
    shop = current_shop()
    return jsonify(with_session_cart(shop, lambda cart_id: service.read_order(shop, cart_id, order_id)))
