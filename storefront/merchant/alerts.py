"""What Stripe tells about a payment after it settled: disputes and failed refunds, put before the merchant.

Each is recorded on the payment's settled orders: a line in their history (once per thing Stripe says, so a
second delivery or a retried event adds nothing) and the order's `attention`, the text the admin's queue
shows first ("disputed: fraudulent, $50.00 (needs_response)", "refund of $20.00 failed: …").
"""

import logging

from sqlalchemy import select

from ..cart.domain import money
from ..checkout import domain, records
from ..models import Order, OrderHistory
from . import history

log = logging.getLogger(__name__)

orders, lines = Order.__table__, OrderHistory.__table__
# A dispute that ended this way needs nothing more from the merchant: its flag is cleared.
SETTLED_IN_OUR_FAVOUR = frozenset({"won", "warning_closed", "prevented"})


def dispute_attention(dispute):
    """The order's flag for a dispute in its current state (None once it ended in the merchant's favour)."""
    amount = money(dispute.amount, dispute.currency)
    if dispute.status in SETTLED_IN_OUR_FAVOUR:
        return None
    if dispute.status == "lost":
        return f"dispute lost: {dispute.reason}, {amount}"
    return f"disputed: {dispute.reason}, {amount} ({dispute.status})"


def record_dispute(shop, dispute):
    """Put a dispute, as Stripe says it is now, on its payment's settled orders; how many orders it names."""
    amount = money(dispute.amount, dispute.currency)
    line = f"dispute {dispute.id} {dispute.status}: {dispute.reason}, {amount}"
    with shop.uow() as uow:
        named = _settled_orders(uow.conn, dispute.payment_intent)
        for order in named:
            if _record_once(uow.conn, order, "dispute", line):
                records.update_order(uow.conn, order.id, attention=dispute_attention(dispute))
        uow.commit()
    if named:
        log.warning("PaymentIntent %s: %s (orders %s)", dispute.payment_intent, line, [o.id for o in named])
    return len(named)


def record_refund_failure(shop, refund):
    """Put a refund that failed on its payment's settled orders: the money is back in the merchant's
    balance, not with the shopper, so the order is refunded that much less and goes to the review queue."""
    amount = money(refund.amount, refund.currency)
    reason = refund.failure_reason or "unknown"
    line = f"refund {refund.id} of {amount} failed ({reason}); the money is back in the store's balance"
    with shop.uow() as uow:
        named = _settled_orders(uow.conn, refund.payment_intent)
        for order in named:
            if _record_once(uow.conn, order, "refund_failed", line):
                refunded = max(0, order.amount_refunded - refund.amount)
                status = "needs_review" if order.status == "refunded" else order.status
                attention = f"refund of {amount} failed: {reason}"
                records.update_order(uow.conn, order.id, amount_refunded=refunded, status=status, attention=attention)
        uow.commit()
    if named:
        log.warning("PaymentIntent %s: %s (orders %s)", refund.payment_intent, line, [o.id for o in named])
    return len(named)


def _settled_orders(conn, pi_id):
    """The PaymentIntent's settled orders, locked (the money moved under them), oldest first."""
    if not pi_id:
        return []
    ids = [o.id for o in records.orders_of(conn, pi_id) if o.status in domain.SETTLED_ORDER_STATUSES]
    return [records.order(conn, order_id, lock=True) for order_id in ids]


def _record_once(conn, order, kind, message):
    """Append the history line unless the order has it already (under the order's lock); True if appended."""
    seen = select(lines.c.id).where(lines.c.order_id == order.id, lines.c.kind == kind, lines.c.message == message)
    if conn.execute(seen.limit(1)).first() is not None:
        return False
    history.record(
        conn, kind, message, cart_id=order.cart_id, order_id=order.id, payment_intent_id=order.payment_intent_id
    )
    return True
