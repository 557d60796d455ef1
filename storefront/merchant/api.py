"""The merchant's JSON API under /admin/api (behind the admin gate)."""

from flask import Blueprint, jsonify, request

from ..checkout.domain import SETTLED_ORDER_STATUSES
from ..errors import InvalidInput
from ..guards import json_body
from ..wiring import current_shop
from . import service

bp = Blueprint("merchant_api", __name__, url_prefix="/admin/api")

ORDER_STATUSES = frozenset({"awaiting_payment", "payment_failed", *SETTLED_ORDER_STATUSES})
ID = "int(max=2147483647)"


@bp.get("/products")
def list_products():
    return jsonify(service.list_products(current_shop()))


@bp.post("/products")
def create_product():
    return jsonify(service.create_product(current_shop(), json_body())), 201


@bp.patch(f"/products/<{ID}:product_id>")
def update_product(product_id):
    return jsonify(service.update_product(current_shop(), product_id, json_body()))


@bp.get("/reservations")
def reservations():
    """The metric of held stock: units reserved by frozen carts, in total, per product and per address."""
    return jsonify(service.reservation_report(current_shop()))


@bp.get("/orders")
def list_orders():
    status = request.args.get("status") or None
    if status is not None and status not in ORDER_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(sorted(ORDER_STATUSES))}", code="invalid_status")
    return jsonify(service.list_orders(current_shop(), status))


@bp.get("/attention")
def needing_attention():
    """Payments whose webhook event keeps failing: the error, the attempts, the orders (still retried)."""
    return jsonify(service.needing_attention(current_shop()))


@bp.get(f"/orders/<{ID}:order_id>")
def show_order(order_id):
    return jsonify(service.order_history(current_shop(), order_id))


@bp.post(f"/orders/<{ID}:order_id>/refund")
def refund(order_id):
    if not request.is_json:  # an empty form post or text body is not "refund everything"
        raise InvalidInput("Send a JSON body with Content-Type: application/json.", code="invalid_json")
    body = json_body() if request.get_data() else {}
    return jsonify(service.refund_order(current_shop(), order_id, body.get("amount")))
