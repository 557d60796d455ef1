"""The order history: one append-only row per thing that happened to a payment."""

from sqlalchemy import insert, or_, select

from ..models import Order, OrderHistory, utcnow

history, orders = OrderHistory.__table__, Order.__table__


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


def of_order(conn, order_id):
    """What happened to the order, oldest first: its own lines and its PaymentIntent's (syncs before it),
    as rows with `at`, `kind` and `message`."""
    payment_intent = select(orders.c.payment_intent_id).where(orders.c.id == order_id).scalar_subquery()
    query = (
        select(history)
        .where(
            or_(
                history.c.order_id == order_id,
                (history.c.payment_intent_id == payment_intent) & history.c.order_id.is_(None),
            )
        )
        .order_by(history.c.at, history.c.id)
    )
    return conn.execute(query).all()
