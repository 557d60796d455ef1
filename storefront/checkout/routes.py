"""Checkout and order JSON routes."""

from flask import Blueprint, current_app, jsonify, request

from ..guards import json_body
from ..payments.sync import sync_until_current
from ..wiring import current_shop, session_cart_id, with_session_cart
from . import domain, service
from .cancel import cancel_checkout

bp = Blueprint("checkout", __name__, url_prefix="/api")


@bp.post("/checkout")
def start_checkout():
    shop = current_shop()
    answer = with_session_cart(shop, lambda cart_id: service.start_checkout(shop, cart_id))
    return jsonify({**answer, "publishable_key": current_app.config["STRIPE_PUBLISHABLE_KEY"]})


@bp.post("/checkout/confirm")
def confirm():
    shown_version = domain.parse_cart_version(json_body())
    shop = current_shop()
    lease = current_app.config["SYNC_LEASE_SECONDS"]

    def sync_now(cart_id):
        return sync_until_current(shop, cart_id, wait_seconds=lease, lease_seconds=lease)

    return jsonify(with_session_cart(shop, lambda cart_id: service.confirm(shop, cart_id, shown_version, sync_now)))


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
