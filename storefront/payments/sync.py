"""Bring a cart's PaymentIntent to the cart's latest version: one writer per cart, bursts coalesced.

One writer per cart across processes is a lease on the cart row (`sync_owner`, `sync_lease_until`):
whoever holds it updates Stripe until the PaymentIntent describes the latest version, then releases
it and looks once more, so a change committed while the lease was held is never left behind.
"""

import logging
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from ..cart.service import cart_view, lock_cart
from ..checkout.domain import REUSABLE_PI_STATUSES
from ..models import Cart, CartSnapshot
from .gateway import AmountLocked, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)

DONE, BUSY, FAILED = "done", "busy", "failed"


def pending_target(session, cart_id):
    """(PaymentIntent id, version, amount) still to be sent to Stripe, or None when nothing is."""
    return _pending(session, cart_id)[0]


def _pending(session, cart_id):
    """(pending target or None, the lease's owner): the cart and its current snapshot in one query."""
    row = session.execute(
        select(Cart.payment_intent_id, Cart.pi_status, Cart.version, Cart.pi_version, Cart.pi_amount,
               Cart.sync_owner, CartSnapshot.total)
        .outerjoin(CartSnapshot, and_(CartSnapshot.cart_id == Cart.id, CartSnapshot.version == Cart.version))
        .where(Cart.id == cart_id)
    ).one_or_none()
    if row is None:
        return None, None
    if not row.payment_intent_id or row.pi_status not in REUSABLE_PI_STATUSES or not row.total or row.total <= 0:
        return None, row.sync_owner
    if row.pi_version == row.version and row.pi_amount == row.total:
        return None, row.sync_owner
    return (row.payment_intent_id, row.version, row.total), row.sync_owner


def sync_cart(shop, cart_id, owner, lease_seconds=30.0, budget=None):
    """Update Stripe until the PaymentIntent matches the cart, holding the cart's lease; DONE, BUSY or FAILED.

    Nothing pending means no lease to take. With a `budget`, each update first waits for its store-wide
    slot; the lease is taken (or renewed) after the wait and the version to send read after that, so an
    update carries every change made while it waited.
    """
    if _read_target(shop, cart_id) is None:
        return DONE
    claimed = False
    try:
        while True:
            if budget is not None:
                budget.wait()
            if not _claim(shop, cart_id, owner, lease_seconds):
                return BUSY
            claimed = True
            target = _read_target(shop, cart_id)
            if target is None:
                return DONE
            outcome = _send(shop, cart_id, target)
            if outcome is not None:
                return outcome
            if _read_target(shop, cart_id) is None:
                return DONE
    finally:
        if claimed:
            _release(shop, cart_id, owner)


def _send(shop, cart_id, target):
    """One PaymentIntent update, recorded and pushed; None to go on, or how the sync ends."""
    pi_id, version, amount = target
    try:
        pi = shop.gateway.set_amount(pi_id, cart_id=cart_id, version=version, amount=amount)
    except AmountLocked as err:
        from ..checkout.fulfilment import apply_payment_intent

        log.info("cart %s v%s: PaymentIntent %s is %s; applying it",
                 cart_id, version, pi_id, err.payment_intent.status)
        apply_payment_intent(shop, err.payment_intent)
        return DONE
    except PaymentIntentMissing:
        log.warning("cart %s: PaymentIntent %s is unknown to Stripe", cart_id, pi_id)
        return FAILED
    except PaymentError as err:
        log.warning("cart %s v%s: PaymentIntent %s update failed: %s", cart_id, version, pi_id, err)
        return FAILED
    _record(shop, cart_id, pi)
    return None


def _read_target(shop, cart_id):
    target = pending_target(shop.session, cart_id)
    shop.session.commit()
    return target


def _record(shop, cart_id, pi):
    cart = lock_cart(shop.session, cart_id)
    version = pi.cart_ref[1]
    if cart.payment_intent_id == pi.id and (cart.pi_version or 0) <= version:
        cart.pi_amount, cart.pi_version, cart.pi_status = pi.amount, version, pi.status
    view = cart_view(cart)
    shop.session.commit()
    log.info("cart %s v%s: PaymentIntent %s now charges %s", cart_id, version, pi.id, pi.amount)
    shop.publish.cart(view)


def _claim(shop, cart_id, owner, lease_seconds):
    now = shop.now()
    free = or_(Cart.sync_owner.is_(None), Cart.sync_owner == owner, Cart.sync_lease_until < now)
    result = shop.session.execute(
        update(Cart)
        .where(Cart.id == cart_id, free)
        .values(sync_owner=owner, sync_lease_until=now + timedelta(seconds=lease_seconds))
    )
    shop.session.commit()
    return result.rowcount == 1


def _release(shop, cart_id, owner):
    shop.session.rollback()
    shop.session.execute(
        update(Cart).where(Cart.id == cart_id, Cart.sync_owner == owner).values(sync_owner=None, sync_lease_until=None)
    )
    shop.session.commit()


def sync_until_current(shop, cart_id, *, wait_seconds, lease_seconds=30.0):
    """Sync now, waiting for another writer's lease if needed; True once the PaymentIntent matches the cart."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        outcome = sync_cart(shop, cart_id, owner, lease_seconds)
        if outcome == FAILED:
            return False
        if outcome == DONE and pending_target(shop.session, cart_id) is None:
            shop.session.commit()
            return True
        shop.session.commit()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


class BackgroundSync:
    """Schedules one background sync task per cart in this process; the lease covers other processes."""

    def __init__(self, app, start_task, shop_factory, budget=None):
        self._app = app
        self._start_task = start_task
        self._shop_factory = shop_factory
        self._budget = budget
        self._running = set()
        self._lock = threading.Lock()
        self.coalesce_seconds = app.config["SYNC_COALESCE_SECONDS"]
        self.lease_seconds = app.config["SYNC_LEASE_SECONDS"]

    def schedule(self, cart_id):
        """Ask for the cart's PaymentIntent to follow its latest version, soon and in the background."""
        with self._lock:
            if cart_id in self._running:
                return
            self._running.add(cart_id)
        self._start_task(self._run, cart_id)

    def _run(self, cart_id):
        with self._app.app_context():
            shop = self._shop_factory()
            outcome = FAILED
            try:
                outcome = self._sync(shop, cart_id)
            except Exception:
                log.exception("cart %s: background PaymentIntent sync crashed", cart_id)
            finally:
                with self._lock:
                    self._running.discard(cart_id)
                shop.session.remove()
            # A change may have committed after the last look and before the release: look again.
            if outcome != FAILED and self._still_pending(shop, cart_id):
                self.schedule(cart_id)

    def _sync(self, shop, cart_id):
        owner = uuid.uuid4().hex
        delay = 0.5
        outcome = FAILED
        for _ in range(4):
            time.sleep(self.coalesce_seconds)
            outcome = sync_cart(shop, cart_id, owner, self.lease_seconds, budget=self._budget)
            if outcome != FAILED:
                break
            time.sleep(delay)
            delay *= 2
        return outcome

    def _still_pending(self, shop, cart_id):
        try:
            target, owner = _pending(shop.session, cart_id)
            return owner is None and target is not None
        except Exception:
            log.exception("cart %s: could not look for changes left to sync; reconcile will", cart_id)
            return False
        finally:
            shop.session.remove()

    def wait_idle(self, timeout):
        """Wait until no sync task of this process is running (for orderly shutdown); True if idle."""
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._running
