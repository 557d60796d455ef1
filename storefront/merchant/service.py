"""Merchant use cases: products (carts follow every change), orders by status, refunds.

Each opens its own unit of work and returns plain views; the refund's Stripe call happens between two.
"""

import logging

from sqlalchemy import case, func, insert, select, update

from ..cart.domain import money
from ..catalog.routes import available_of, products_with_availability
from ..checkout.domain import refund_outcome
from ..checkout.fulfilment import order_push
from ..checkout.service import order_view
from ..errors import Conflict, NotFound, PaymentUnavailable
from ..models import Order, Product
from ..payments.gateway import PaymentError
from ..webhooks import inbox
from . import domain, history, stock
from .pricing import reprice_carts

log = logging.getLogger(__name__)
products, orders = Product.__table__, Order.__table__
# Orders in the merchant's queue (`needs_review`) before all others, in the API and on the admin pages.
# An order flagged by a dispute or a failed refund (`attention`) is in that queue too.
REVIEW_FIRST = case((orders.c.status == "needs_review", 0), (orders.c.attention.is_not(None), 0), else_=1)
NEWEST_FIRST = (orders.c.created_at.desc(), orders.c.id.desc())


def product_view(product, available, reserved=0):
    """A product as the merchant sees it: on hand, held by frozen carts, and what a shopper can still add
    (the catalog's count)."""
    return {
        "id": product.id,
        "name": product.name,
        "unit_amount": product.unit_amount,
        "currency": product.currency,
        "stock": product.stock,
        "reserved": reserved,
        "available": None if available is None else max(0, available),
        "active": product.active,
    }


def list_products(shop):
    """Every product, active or not, in id order."""
    with shop.uow() as uow:
        rows = products_with_availability(uow.conn, active_only=False)
        reserved = stock.reserved_per_product(uow.conn)
        uow.commit()
    return [product_view(row, row.available, reserved.get(row.id, 0)) for row in rows]


def reservation_report(shop, top=10):
    """Units held by frozen carts: in total, per product holding any, and by the client addresses holding
    the most (the metric that shows a client hoarding stock)."""
    with shop.uow() as uow:
        per_product = stock.reserved_per_product(uow.conn)
        names = dict(uow.conn.execute(select(products.c.id, products.c.name)).all())
        frozen = stock.frozen_carts(uow.conn)
        holders = stock.top_holders(uow.conn, top)
        uow.commit()
    return {
        "reserved_units": sum(per_product.values()),
        "frozen_carts": frozen,
        "products": [
            {"id": pid, "name": names.get(pid), "reserved": units} for pid, units in sorted(per_product.items())
        ],
        "top_addresses": [{"address": a, "frozen_carts": f, "reserved": u} for a, f, u in holders],
    }


def create_product(shop, body):
    """A new product in the store's currency."""
    changes = domain.parse_product(body, creating=True)
    with shop.uow() as uow:
        values = {"currency": shop.currency, "active": True, "stock": None, **changes}
        product = uow.conn.execute(insert(products).values(values).returning(*products.c)).one()
        view = product_view(product, available_of(uow.conn, product.id))
        uow.commit()
    log.info("product %s created: %s at %s", view["id"], view["name"], view["unit_amount"])
    return view


def _check_unchanged(product, changes, shown):
    """A field changed here that the store changed since the page showed it is refused, not overwritten."""
    stale = [name for name in changes if shown and name in shown and getattr(product, name) != shown[name]]
    if stale:
        now = ", ".join(f"{name} is now {getattr(product, name)}, not {shown[name]}" for name in stale)
        raise Conflict(
            f"{stale[0].replace('_', ' ').capitalize()} changed meanwhile ({now}); nothing was saved. "
            "Open the product again.",
            code="product_changed",
        )


def update_product(shop, product_id, body, shown=None):
    """Edit a product; a new price or a withdrawal moves every open cart holding it to a new version.

    `shown` (the admin page's values when opened): a field changed here that the store changed meanwhile
    is refused (409 `product_changed`), not overwritten.
    """
    changes = domain.parse_product(body, creating=False)
    with shop.uow() as uow:
        product = uow.conn.execute(select(products).where(products.c.id == product_id).with_for_update()).first()
        if product is None:
            raise NotFound(f"No product with id {product_id}.", code="product_not_found")
        _check_unchanged(product, changes, shown)
        reserved = stock.reserved_units(uow.conn, product_id)
        if "stock" in changes:
            domain.check_stock_level(changes["stock"], reserved)
        if changes:
            product = uow.conn.execute(
                update(products).where(products.c.id == product_id).values(changes).returning(*products.c)
            ).one()
        view = product_view(product, available_of(uow.conn, product_id), reserved)
        uow.commit()
    # Whenever the request names a price or for-sale (even unchanged): repricing is idempotent, so a PATCH
    # retried after a failure part-way brings the carts it did not reach to the catalog.
    if "unit_amount" in changes or "active" in changes:
        moved = reprice_carts(shop, product_id)
        log.info("product %s changed (%s); %s open carts moved to a new version", product_id, changes, len(moved))
    return view


def list_orders(shop, status=None):
    """Orders newest first; without a filter the `needs_review` queue comes first."""
    query = select(orders)
    if status:
        query = query.where(orders.c.status == status).order_by(*NEWEST_FIRST)
    else:
        query = query.order_by(REVIEW_FIRST, *NEWEST_FIRST)
    with shop.uow() as uow:
        rows = uow.conn.execute(query).all()
        uow.commit()
    return [merchant_order_view(row) for row in rows]


def flagged_count(conn):
    """How many orders carry a dispute or a failed refund for the merchant (`attention`)."""
    return conn.execute(select(func.count()).where(orders.c.attention.is_not(None))).scalar_one()


def status_counts(conn):
    """[(status, count)] of the orders, `needs_review` first."""
    rows = conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status)).all()
    return sorted(rows, key=lambda row: (row[0] != "needs_review", row[0]))


def orders_of_payments(conn, pi_ids):
    """{PaymentIntent id: [order ids]} for the given PaymentIntents."""
    found = {}
    if pi_ids:
        query = select(orders.c.payment_intent_id, orders.c.id).where(orders.c.payment_intent_id.in_(pi_ids))
        for pi_id, order_id in conn.execute(query.order_by(orders.c.id)):
            found.setdefault(pi_id, []).append(order_id)
    return found


def needing_attention(shop):
    """Webhook events whose handler keeps failing (still retried), oldest first, with their payment's orders:
    a payment may be waiting on one, so a person looks at the error."""
    with shop.uow() as uow:
        events = inbox.needs_attention(uow.conn)
        orders_by_pi = orders_of_payments(uow.conn, sorted({event.object_id for event in events}))
        uow.commit()
    return [attention_view(event, orders_by_pi.get(event.object_id, [])) for event in events]


def attention_view(event, order_ids):
    """One event needing attention as the merchant's API shows it."""
    kind = inbox.object_kind(event.type)
    return {
        "event_id": event.id,
        "type": event.type,
        "payment_intent_id": event.object_id if kind == "payment_intent" else None,
        "charge_id": event.object_id if kind == "charge" else None,
        "object_id": event.object_id,
        "order_ids": order_ids,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "received_at": event.received_at.isoformat() + "Z",
        "next_attempt_at": event.due_at.isoformat() + "Z" if event.due_at else None,
    }


def merchant_order_view(order):
    """The order (any object with the orders table's columns) as the shopper sees it, plus its cart and date."""
    return {
        **order_view(order),
        "cart_id": order.cart_id,
        "refund_due": order.refund_due,
        "attention": order.attention,
        "created_at": order.created_at.isoformat() + "Z",
    }


def _order(conn, order_id, *, lock=False):
    query = select(orders).where(orders.c.id == order_id)
    order = conn.execute(query.with_for_update() if lock else query).first()
    if order is None:
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    return order


def refund_order(shop, order_id, requested=None, *, refunded_before=None):
    """Refund an order (by default all that is not yet refunded) through the gateway, once per click.

    `refunded_before` (what the confirmation page showed as refunded): a refund confirmed on a page that is
    out of date (a second click, another refund meanwhile) is refused with 409 `order_changed`."""
    with shop.uow() as uow:  # committed before Stripe is asked: no transaction (nor SQLite's lock) held across it
        order = _order(uow.conn, order_id)
        if refunded_before is not None and order.amount_refunded != refunded_before:
            raise Conflict(
                f"This order changed since you confirmed: {money(order.amount_refunded, order.currency)} is now "
                "refunded. Nothing more was refunded; look at the order again.",
                code="order_changed",
            )
        amount = domain.refund_amount(requested, order.amount_received, order.amount_refunded)
        uow.commit()
    before, pi_id = order.amount_refunded, order.payment_intent_id
    try:
        shop.gateway.refund(pi_id, amount, reason_key=domain.merchant_refund_key(order_id, before, amount))
    except PaymentError as err:
        log.warning("order %s: merchant refund of %s failed: %s", order_id, amount, err)
        raise PaymentUnavailable("Stripe did not take the refund; please try again.") from err
    with shop.uow() as uow:
        view, push = _record_refund(uow.conn, order_id, before + amount, money(amount, order.currency))
        uow.after_commit(lambda: shop.publish.order(view["cart_id"], push))
        uow.commit()
    log.info("order %s: merchant refunded %s", order_id, amount)
    return view


def _record_refund(conn, order_id, refunded, amount_text):
    """Write a merchant refund onto the (locked) order and its history; the order's view and push."""
    order = _order(conn, order_id, lock=True)
    # charge.refunded may have mirrored Stripe's total already: never count a refund twice.
    refunded = max(order.amount_refunded, refunded)
    status = refund_outcome(order.status, order.amount_received, refunded, order.refund_due)
    order = conn.execute(
        update(orders)
        .where(orders.c.id == order_id)
        .values(amount_refunded=refunded, status=status)
        .returning(*orders.c)
    ).one()
    history.record(
        conn,
        "refund",
        f"merchant refunded {amount_text}",
        cart_id=order.cart_id,
        order_id=order_id,
        payment_intent_id=order.payment_intent_id,
    )
    return merchant_order_view(order), order_push(order)


def order_history(shop, order_id):
    """An order and the lines of its history, oldest first."""
    with shop.uow() as uow:
        order = _order(uow.conn, order_id)
        lines = history.of_order(uow.conn, order_id)
        uow.commit()
    story = [{"at": line.at.isoformat() + "Z", "kind": line.kind, "message": line.message} for line in lines]
    return {**merchant_order_view(order), "history": story}
