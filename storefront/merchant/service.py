"""Merchant use cases: products (carts follow every change), orders by status, refunds."""

import logging

from sqlalchemy import case, select

from ..cart.domain import money
from ..catalog.routes import available_of, products_with_availability
from ..checkout.domain import refund_outcome
from ..checkout.fulfilment import order_push
from ..checkout.service import order_view
from ..errors import Conflict, NotFound, PaymentUnavailable
from ..models import Order, Product
from ..payments.gateway import PaymentError
from . import domain, history, stock
from .pricing import reprice_carts

log = logging.getLogger(__name__)
# Orders in the merchant's queue (`needs_review`) before all others, in the API and on the admin pages.
REVIEW_FIRST = case((Order.status == "needs_review", 0), else_=1)


def product_view(product, available):
    """A product as the merchant sees it: on hand, and what a shopper can still add (the catalog's count)."""
    return {
        "id": product.id,
        "name": product.name,
        "unit_amount": product.unit_amount,
        "currency": product.currency,
        "stock": product.stock,
        "available": None if available is None else max(0, available),
        "active": product.active,
    }


def list_products(shop):
    """Every product, active or not, in id order."""
    rows = products_with_availability(shop.session, active_only=False)
    views = [product_view(product, available) for product, available in rows]
    shop.session.commit()
    return views


def create_product(shop, body):
    """A new product in the store's currency."""
    changes = domain.parse_product(body, creating=True)
    product = Product(currency=shop.currency, **{"active": True, "stock": None, **changes})
    shop.session.add(product)
    shop.session.flush()
    view = product_view(product, available_of(shop.session, product.id))
    shop.session.commit()
    log.info("product %s created: %s at %s", view["id"], view["name"], view["unit_amount"])
    return view


def update_product(shop, product_id, body, shown=None):
    """Edit a product; a new price or a withdrawal moves every open cart holding it to a new version.

    `shown` (the admin page's values when opened): a field changed here that the store changed meanwhile
    is refused (409 `product_changed`), not overwritten.
    """
    changes = domain.parse_product(body, creating=False)
    product = shop.session.get(Product, product_id, with_for_update=True, populate_existing=True)
    if product is None:
        shop.session.rollback()
        raise NotFound(f"No product with id {product_id}.", code="product_not_found")
    stale = [name for name in changes if shown and name in shown and getattr(product, name) != shown[name]]
    if stale:
        now = ", ".join(f"{name} is now {getattr(product, name)}, not {shown[name]}" for name in stale)
        shop.session.rollback()
        raise Conflict(
            f"{stale[0].replace('_', ' ').capitalize()} changed meanwhile ({now}); nothing was saved. "
            "Open the product again.",
            code="product_changed",
        )
    reserved = stock.reserved_units(shop.session, product_id)
    if "stock" in changes:
        try:
            domain.check_stock_level(changes["stock"], reserved)
        except Exception:
            shop.session.rollback()
            raise
    # Whenever the request names a price or for-sale (even unchanged): repricing is idempotent, so a PATCH
    # retried after a failure part-way brings the carts it did not reach to the catalog.
    carts_follow = "unit_amount" in changes or "active" in changes
    for name, value in changes.items():
        setattr(product, name, value)
    shop.session.flush()
    view = product_view(product, available_of(shop.session, product_id))
    shop.session.commit()
    if carts_follow:
        moved = reprice_carts(shop, product_id)
        log.info("product %s changed (%s); %s open carts moved to a new version", product_id, changes, len(moved))
    return view


def list_orders(shop, status=None):
    """Orders newest first; without a filter the `needs_review` queue comes first."""
    query = select(Order)
    if status:
        query = query.where(Order.status == status).order_by(Order.created_at.desc(), Order.id.desc())
    else:
        query = query.order_by(REVIEW_FIRST, Order.created_at.desc(), Order.id.desc())
    views = [merchant_order_view(order) for order in shop.session.execute(query).scalars()]
    shop.session.commit()
    return views


def merchant_order_view(order):
    """The order as the shopper sees it, plus its cart and when it was made."""
    return {
        **order_view(order),
        "cart_id": order.cart_id,
        "refund_due": order.refund_due,
        "created_at": order.created_at.isoformat() + "Z",
    }


def refund_order(shop, order_id, requested=None):
    """Refund an order (by default all that is not yet refunded) through the gateway, once per click."""
    order = shop.session.get(Order, order_id, populate_existing=True)
    if order is None:
        shop.session.rollback()
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    try:
        amount = domain.refund_amount(requested, order.amount_received, order.amount_refunded)
    except Exception:
        shop.session.rollback()
        raise
    before, pi_id, currency = order.amount_refunded, order.payment_intent_id, order.currency
    shop.session.commit()  # no transaction (nor SQLite's write lock) held across the Stripe call
    try:
        shop.gateway.refund(pi_id, amount, reason_key=domain.merchant_refund_key(order_id, before, amount))
    except PaymentError as err:
        log.warning("order %s: merchant refund of %s failed: %s", order_id, amount, err)
        raise PaymentUnavailable("Stripe did not take the refund; please try again.") from err
    order = shop.session.get(Order, order_id, with_for_update=True, populate_existing=True)
    # charge.refunded may have mirrored Stripe's total already: never count a refund twice.
    order.amount_refunded = max(order.amount_refunded, before + amount)
    order.status = refund_outcome(order.status, order.amount_received, order.amount_refunded, order.refund_due)
    history.record(
        shop.session.connection(),
        "refund",
        f"merchant refunded {money(amount, currency)}",
        cart_id=order.cart_id,
        order_id=order_id,
        payment_intent_id=pi_id,
    )
    view, push = merchant_order_view(order), order_push(order)
    shop.session.commit()
    shop.publish.order(view["cart_id"], push)
    log.info("order %s: merchant refunded %s", order_id, amount)
    return view


def order_history(shop, order_id):
    """An order and the lines of its history, oldest first."""
    order = shop.session.get(Order, order_id, populate_existing=True)
    if order is None:
        shop.session.rollback()
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    lines = [
        {"at": h.at.isoformat() + "Z", "kind": h.kind, "message": h.message}
        for h in history.of_order(shop.session, order)
    ]
    view = {**merchant_order_view(order), "history": lines}
    shop.session.commit()
    return view
