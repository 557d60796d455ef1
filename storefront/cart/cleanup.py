"""Removing abandoned carts: open, unchanged for ABANDONED_CART_SECONDS, with no order and no
PaymentIntent that could still move money. Their lines and snapshots go with them.

A shopper who comes back with the old cookie finds an empty cart, as on a first visit; the first change
writes it under a new id (ids are never handed out twice), and the removed cart's pending payment
attempts are marked abandoned.
"""

import logging
import uuid
from datetime import timedelta

from sqlalchemy import exists, or_, select

from ..models import Cart, Order
from ..payments.lease import end_turn, take_turn
from . import repository

log = logging.getLogger(__name__)
BATCH = 500
TURN = "cart_cleanup"  # its own turn: once per store, whichever process's loop asks first
TURN_HOLD_SECONDS = 300


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


class CleanupSchedule:
    """Runs the removal from every process's periodic loop, once per store every CART_CLEANUP_INTERVAL_SECONDS
    (the store-wide turn in job_turns decides which process)."""

    def __init__(self, config, clock):
        self._config, self._clock, self._last = config, clock, None
        self._holder = uuid.uuid4().hex

    def run_if_due(self, shop):
        """Remove abandoned carts if it is this store's turn; the count, or None when not due here."""
        now = self._clock()
        interval = self._config["CART_CLEANUP_INTERVAL_SECONDS"]
        if interval <= 0 or (self._last is not None and now - self._last < interval):
            return None  # asked at most once an interval per process: no write on every loop
        self._last = now
        hold = max(interval, TURN_HOLD_SECONDS)
        if not take_turn(shop.session, TURN, self._holder, now=shop.now(), hold_seconds=hold):
            return None
        try:
            return remove_abandoned_carts(shop, shop.now(), self._config["ABANDONED_CART_SECONDS"])
        finally:
            shop.session.rollback()
            end_turn(shop.session, TURN, self._holder, now=shop.now(), every_seconds=interval)
