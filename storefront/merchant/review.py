"""The merchant's review queue: why each needs_review order is there, and accepting one once stock allows."""

import logging

from sqlalchemy import select, update

from ..checkout.fulfilment import order_push
from ..errors import Conflict, NotFound
from ..models import Order, OrderHistory
from . import domain, history, stock, words

log = logging.getLogger(__name__)
orders, lines = Order.__table__, OrderHistory.__table__


def reasons(conn, found):
    """{order id: why it needs review} for the needs_review orders among `found` (rows with the orders
    table's columns); the stock line fulfilment writes when a paid order's stock is gone says which."""
    ids = [order.id for order in found if order.status == "needs_review"]
    if not ids:
        return {}
    query = select(lines.c.order_id).where(lines.c.order_id.in_(ids), lines.c.kind == "stock")
    stock_gone = set(conn.execute(query).scalars())
    return {order.id: words.review_reason(order, order.id in stock_gone) for order in found if order.id in ids}


def can_accept(order, reason):
    """Only an order paid in full whose one problem was missing stock can be accepted (the rest is refunded)."""
    return order.status == "needs_review" and reason == words.STOCK_GONE and order.amount_received == order.amount


def _short(conn, order):
    """ "only 0 of the burr grinder" for the first product the stock still can't cover."""
    wanted = domain.wanted_units(order.items)
    locked = stock.lock_products(conn, wanted)
    on_hand = {pid: units for pid, (_, units) in locked.items()}
    short = domain.shortfall(wanted, on_hand, stock.held(conn, wanted, besides_order=order.id))
    if short is None:
        return "the stock"
    product_id, available = short
    name = locked.get(product_id, (f"product {product_id}", None))[0]
    return f"{name}: {available} available, {wanted[product_id]} needed"


def accept_order(shop, order_id):
    """Fulfil a needs_review order whose stock was gone, now that the merchant has restocked: sell its units
    (as a paid order does, beside what frozen carts hold) and mark it paid; Conflict while stock falls short."""
    with shop.uow() as uow:
        order = uow.conn.execute(select(orders).where(orders.c.id == order_id).with_for_update()).first()
        if order is None:
            raise NotFound(f"No order {order_id}.", code="order_not_found")
        if not can_accept(order, reasons(uow.conn, [order]).get(order.id)):
            raise Conflict("Only an order paid in full whose stock was gone can be accepted.", code="not_acceptable")
        if not stock.sell(uow.conn, order_id, order.items):
            raise Conflict(
                f"The stock still doesn't cover this order ({_short(uow.conn, order)}); restock, then accept again.",
                code="out_of_stock",
            )
        order = uow.conn.execute(
            update(orders).where(orders.c.id == order_id).values(status="paid").returning(*orders.c)
        ).one()
        history.record(
            uow.conn,
            "review",
            "merchant accepted the order after restocking: its units are sold; order is paid",
            cart_id=order.cart_id,
            order_id=order_id,
            payment_intent_id=order.payment_intent_id,
        )
        push = order_push(order)
        uow.after_commit(lambda: shop.publish.order(order.cart_id, push))
        uow.commit()
    log.info("order %s: accepted by the merchant after restocking; paid", order_id)
    return order
