"""Removing abandoned carts: open, unchanged for ABANDONED_CART_SECONDS, with no order and no
PaymentIntent that could still move money. Their lines and snapshots go with them.

A shopper who comes back with the old cookie finds an empty cart, as on a first visit; the first change
writes it under a new id (ids are never handed out twice), and the removed cart's pending payment
attempts are marked abandoned.
"""

import logging
from datetime import timedelta

from sqlalchemy import exists, or_, select

from ..models import Cart, Order
from . import repository

log = logging.getLogger(__name__)
BATCH = 500


def _abandoned(cutoff):
    return (
        select(Cart.id)
        .where(
            Cart.status == "open",
            Cart.changed_at <= cutoff,
            # A PaymentIntent a browser could still confirm would leave its money with no cart to become an order.
            or_(Cart.payment_intent_id.is_(None), Cart.pi_status == "canceled"),
            ~exists().where(Order.cart_id == Cart.id),
        )
        .order_by(Cart.id)
        .limit(BATCH)
        # Row locks (PostgreSQL re-checks the conditions on a cart changed meanwhile); SQLite's write
        # transaction already serialises. A cart another job is removing is skipped.
        .with_for_update(skip_locked=True)
    )


def remove_abandoned_carts(shop, now, older_than_seconds):
    """Remove carts nobody has changed for `older_than_seconds`; how many were removed."""
    cutoff = now - timedelta(seconds=older_than_seconds)
    removed = 0
    while True:
        removed_now = _remove_batch(shop, cutoff)
        removed += removed_now
        if removed_now < BATCH:
            break
    if removed:
        log.info("removed %d abandoned carts (unchanged since %s)", removed, cutoff)
    return removed


def _remove_batch(shop, cutoff):
    """One batch in its own unit of work, so the row locks are held for one batch only."""
    with shop.uow() as uow:
        cart_ids = uow.conn.execute(_abandoned(cutoff)).scalars().all()
        repository.delete_carts(uow.conn, cart_ids)
        uow.commit()
    return len(cart_ids)
