"""Cart JSON routes: parse, call the service, answer."""

from flask import Blueprint, current_app, jsonify

from ..extensions import limiter
from ..guards import json_body
from ..wiring import current_shop, new_session_cart_id, session_cart_id, with_session_cart
from . import domain, service

bp = Blueprint("cart", __name__, url_prefix="/api/cart")


def _mutation_limit():
    return current_app.config["CART_RATE_LIMIT"]


# One budget for all of a session's cart changes (each may cost a PaymentIntent update), not one per route.
_mutations = limiter.shared_limit(_mutation_limit, scope="cart_mutation")


@bp.get("")
def get_cart():
    """The session's cart; a first visit gets a cart id in its cookie (for its Socket.IO room), not a row."""
    shop = current_shop()
    return jsonify(service.read_cart(shop, session_cart_id() or new_session_cart_id(shop)))


@bp.post("/items")
@_mutations
def add_item():
    body = json_body()
    product_id = domain.parse_product_id(body.get("product_id"))
    quantity = domain.parse_quantity(body.get("quantity", 1))
    shop = current_shop()
    return jsonify(with_session_cart(shop, lambda cart_id: service.add_item(shop, cart_id, product_id, quantity)))


@bp.put("/items/<product_id>")
@_mutations
def set_quantity(product_id):
    product_id = domain.parse_product_id(product_id)
    quantity = domain.parse_quantity(json_body().get("quantity"), allow_zero=True)
    shop = current_shop()
    return jsonify(with_session_cart(shop, lambda cart_id: service.set_quantity(shop, cart_id, product_id, quantity)))


@bp.delete("/items/<product_id>")
@_mutations
def remove_item(product_id):
    product_id = domain.parse_product_id(product_id)
    shop = current_shop()
    return jsonify(with_session_cart(shop, lambda cart_id: service.remove_item(shop, cart_id, product_id)))
