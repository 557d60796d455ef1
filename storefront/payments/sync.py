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

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update

from ..cart import repository
from ..cart.domain import money
from ..checkout.domain import REUSABLE_PI_STATUSES
from ..database import statement_connection
from ..merchant import history
from .gateway import AmountLocked, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)

DONE, BUSY, FAILED = "done", "busy", "failed"

carts = repository.carts
# The PaymentIntent lags behind the cart: it can still change, the cart has something to charge, and
# Stripe has not been told this version's amount. One condition on one row, so a claim is one statement.
LAGGING = and_(
    carts.c.payment_intent_id.is_not(None),
    carts.c.pi_status.in_(sorted(REUSABLE_PI_STATUSES)),
    carts.c.total > 0,
    or_(
        carts.c.pi_version.is_(None),
        carts.c.pi_version != carts.c.version,
        carts.c.pi_amount.is_(None),
        carts.c.pi_amount != carts.c.total,
    ),
)


_IS_LAGGING = select(exists().where(carts.c.id == bindparam("cart_id"), LAGGING))
_OURS = carts.c.sync_owner == bindparam("owner")
_CLAIM = (
    update(carts)
    .where(
        carts.c.id == bindparam("cart_id"),
        LAGGING,
        or_(carts.c.sync_owner.is_(None), _OURS, carts.c.sync_lease_until < bindparam("now")),
    )
    .values(sync_owner=bindparam("owner"), sync_lease_until=bindparam("until"))
    .returning(carts.c.payment_intent_id, carts.c.version, carts.c.total)
)
# Mirror an update Stripe accepted, only forward (a newer version, of the cart's current PaymentIntent),
# and release the lease if it is still ours: one statement.
_NEWER = and_(
    carts.c.payment_intent_id == bindparam("pi_id"),
    func.coalesce(carts.c.pi_version, 0) <= bindparam("recorded_version"),
)
_RECORD = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"))
    .values(
        pi_amount=case((_NEWER, bindparam("new_amount")), else_=carts.c.pi_amount),
        pi_version=case((_NEWER, bindparam("recorded_version")), else_=carts.c.pi_version),
        pi_status=case((_NEWER, bindparam("new_status")), else_=carts.c.pi_status),
        sync_owner=case((_OURS, None), else_=carts.c.sync_owner),
        sync_lease_until=case((_OURS, None), else_=carts.c.sync_lease_until),
    )
)
_RELEASE = update(carts).where(carts.c.id == bindparam("cart_id"), _OURS).values(sync_owner=None, sync_lease_until=None)


def is_current(session, cart_id):
    """True when the cart's PaymentIntent charges its latest version (or there is nothing to charge)."""
    lagging = statement_connection(session).execute(_IS_LAGGING, {"cart_id": cart_id}).scalar()
    session.commit()
    return not lagging


def sync_cart(shop, cart_id, owner, lease_seconds=30.0, budget=None):
    """Update Stripe until the PaymentIntent matches the cart, holding the cart's lease; DONE, BUSY or FAILED.

    The lease is taken only when there is something to send, in the statement that reads what to send.
    With a `budget`, each update then waits for its store-wide slot; a wait renews the lease and reads
    the version again, so the update carries every change made while it waited. Recording an update
    releases the lease; the claim that follows is the look for changes committed meanwhile.
    """
    target = _claim(shop, cart_id, owner, lease_seconds)
    if target is None:
        return DONE if is_current(shop.session, cart_id) else BUSY
    held = True
    try:
        while target is not None:
            if budget is not None and budget.wait() > 0:
                target = _claim(shop, cart_id, owner, lease_seconds)
                if target is None:
                    return DONE
            outcome = _send(shop, cart_id, owner, target)
            held = outcome is not None
            if held:
                return outcome
            target = _claim(shop, cart_id, owner, lease_seconds)
            held = target is not None
        return DONE
    finally:
        if held:
            _release(shop, cart_id, owner)


def _send(shop, cart_id, owner, target):
    """One PaymentIntent update, recorded (lease released) and pushed; None to go on, or how the sync ends."""
    pi_id, version, amount = target
    try:
        pi = shop.gateway.set_amount(pi_id, cart_id=cart_id, version=version, amount=amount)
    except AmountLocked as err:
        from ..checkout.fulfilment import apply_payment_intent

        log.info("cart %s v%s: PaymentIntent %s is %s; applying it", cart_id, version, pi_id, err.payment_intent.status)
        apply_payment_intent(shop, err.payment_intent)
        return DONE
    except PaymentIntentMissing:
        log.warning("cart %s: PaymentIntent %s is unknown to Stripe", cart_id, pi_id)
        return FAILED
    except PaymentError as err:
        log.warning("cart %s v%s: PaymentIntent %s update failed: %s", cart_id, version, pi_id, err)
        return FAILED
    _record(shop, cart_id, owner, pi)
    return None


def _claim(shop, cart_id, owner, lease_seconds):
    """Take or renew the lease if the PaymentIntent lags: (PaymentIntent id, version, amount), else None."""
    session, now = shop.session, shop.now()
    row = (
        statement_connection(session)
        .execute(
            _CLAIM,
            {
                "cart_id": cart_id,
                "owner": owner,
                "now": now,
                "until": now + timedelta(seconds=lease_seconds),
            },
        )
        .one_or_none()
    )
    session.commit()
    return tuple(row) if row is not None else None


def _record(shop, cart_id, owner, pi):
    """Mirror an update Stripe accepted onto the cart, release the lease, and push the cart as it now is."""
    session, version = shop.session, pi.cart_ref[1]
    conn = statement_connection(session)
    conn.execute(
        _RECORD,
        {
            "cart_id": cart_id,
            "owner": owner,
            "pi_id": pi.id,
            "recorded_version": version,
            "new_amount": pi.amount,
            "new_status": pi.status,
        },
    )
    history.record(
        conn,
        "sync",
        f"PaymentIntent now charges {money(pi.amount, pi.currency)} for cart v{version}",
        cart_id=cart_id,
        payment_intent_id=pi.id,
    )
    view = repository.read(conn, cart_id)[0].view()
    session.commit()
    log.info("cart %s v%s: PaymentIntent %s now charges %s", cart_id, version, pi.id, pi.amount)
    shop.publish.cart(view)


def _release(shop, cart_id, owner):
    shop.session.rollback()
    statement_connection(shop.session).execute(_RELEASE, {"cart_id": cart_id, "owner": owner})
    shop.session.commit()


def sync_until_current(shop, cart_id, *, wait_seconds, lease_seconds=30.0):
    """Sync now, waiting for another writer's lease if needed; True once the PaymentIntent matches the cart."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        outcome = sync_cart(shop, cart_id, owner, lease_seconds)
        if outcome == FAILED:
            return False
        if outcome == DONE and is_current(shop.session, cart_id):
            return True
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
        self._again = set()
        self._lock = threading.Lock()
        self.coalesce_seconds = app.config["SYNC_COALESCE_SECONDS"]
        self.lease_seconds = app.config["SYNC_LEASE_SECONDS"]

    def schedule(self, cart_id):
        """Ask for the cart's PaymentIntent to follow its latest version, soon and in the background."""
        with self._lock:
            if cart_id in self._running:
                # The running task may already have made its last look: it runs once more when it ends.
                self._again.add(cart_id)
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
                shop.session.remove()
                with self._lock:
                    self._running.discard(cart_id)
                    again = cart_id in self._again and outcome != FAILED
                    self._again.discard(cart_id)
        if again:
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

    def wait_idle(self, timeout):
        """Wait until no sync task of this process is running (for orderly shutdown); True if idle."""
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._running
