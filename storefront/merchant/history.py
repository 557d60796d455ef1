"""The order history: one append-only row per thing that happened to a payment."""

from sqlalchemy import insert, or_, select

from ..models import OrderHistory, utcnow

history = OrderHistory.__table__


def record(conn, kind, message, *, cart_id, order_id=None, payment_intent_id=None):
    """Append one line (in the caller's transaction or statement connection)."""
    conn.execute(
        insert(history),
        {
            "cart_id": cart_id,
            "order_id": order_id,
            "payment_intent_id": payment_intent_id,
            "kind": kind,
            "message": message,
            "at": utcnow(),
        },
    )


def of_order(session, order):
    """What happened to the order, oldest first: its own lines and its PaymentIntent's (syncs before it)."""
    query = (
        select(OrderHistory)
        .where(
            or_(
                OrderHistory.order_id == order.id,
                (OrderHistory.payment_intent_id == order.payment_intent_id) & OrderHistory.order_id.is_(None),
            )
        )
        .order_by(OrderHistory.at, OrderHistory.id)
    )
    return list(session.execute(query).scalars())
