"""Bring a cart's PaymentIntent to the cart's latest version: one writer per cart, bursts coalesced.

One writer per cart across processes is a lease on the cart row (`sync_owner`, `sync_lease_until`):
whoever holds it updates Stripe until the PaymentIntent describes the latest version, then releases
it and looks once more, so a change committed while the lease was held is never left behind.

Each Stripe update costs two statements: the claim (take or renew the lease, read what to send) and
the record (mirror what Stripe accepted, release the lease, write the history line and read the cart
for its push; one statement on PostgreSQL).
"""

import logging
import time
import uuid
from datetime import timedelta

from sqlalchemy import Integer, and_, bindparam, case, exists, func, insert, literal, or_, select, update

from ..cart import repository
from ..cart.domain import money
from ..checkout.domain import REUSABLE_PI_STATUSES
from ..merchant import history
from ..models import utcnow
from .gateway import AmountLocked, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)

DONE, BUSY, FAILED = "done", "busy", "failed"

carts, lines_table, products = repository.carts, repository.lines_table, repository.products
# The PaymentIntent lags behind the cart: it can still change, the cart has something to charge, and
# Stripe has not been told this version's amount. One condition on one row, so a claim is one statement
# (and the worker's poll an index scan of the partial index ix_carts_lagging, which has this predicate:
# its constants are written into the SQL, so that even a prepared, generic plan can use the index).
LAGGING = and_(
    carts.c.payment_intent_id.is_not(None),
    carts.c.pi_status.in_(bindparam("reusable", sorted(REUSABLE_PI_STATUSES), expanding=True, literal_execute=True)),
    carts.c.total > literal(0, Integer, literal_execute=True),
    or_(
        carts.c.pi_version.is_(None),
        carts.c.pi_version != carts.c.version,
        carts.c.pi_amount.is_(None),
        carts.c.pi_amount != carts.c.total,
    ),
)
_UNLEASED = or_(carts.c.sync_owner.is_(None), carts.c.sync_lease_until < bindparam("now"))

_IS_LAGGING = select(exists().where(carts.c.id == bindparam("cart_id"), LAGGING))
# Carts no process is syncing whose PaymentIntent lags: what the worker's poll finds.
_UNCLAIMED = select(carts.c.id).where(LAGGING, _UNLEASED).order_by(carts.c.id).limit(bindparam("limit", type_=Integer))
_OURS = carts.c.sync_owner == bindparam("owner")
_CLAIM = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"), LAGGING, or_(_UNLEASED, _OURS))
    .values(sync_owner=bindparam("owner"), sync_lease_until=bindparam("until"))
    .returning(carts.c.payment_intent_id, carts.c.version, carts.c.total)
)
# Mirror an update Stripe accepted, only forward (a newer version, of the cart's current PaymentIntent),
# and release the lease if it is still ours.
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


def _record_in_one_statement():
    """PostgreSQL: the record, its history line and the cart with its lines for the push, as one statement."""
    recorded = _RECORD.returning(*repository.CART_COLUMNS).cte("recorded")
    noted = (
        insert(history.history)
        .from_select(
            ["cart_id", "payment_intent_id", "kind", "message", "at"],
            select(recorded.c.id, bindparam("pi_id"), literal("sync"), bindparam("message"), bindparam("at")),
        )
        .cte("noted")
    )
    return (
        select(
            *recorded.c,
            lines_table.c.product_id,
            products.c.name,
            lines_table.c.unit_amount,
            lines_table.c.quantity,
            lines_table.c.position,
        )
        .select_from(
            recorded.outerjoin(lines_table, lines_table.c.cart_id == recorded.c.id).outerjoin(
                products, products.c.id == lines_table.c.product_id
            )
        )
        .order_by(lines_table.c.position)
        .add_cte(noted)
    )


_RECORD_AND_READ = _record_in_one_statement()


def is_current(shop, cart_id):
    """True when the cart's PaymentIntent charges its latest version (or there is nothing to charge)."""
    with shop.uow(statements=True) as uow:
        lagging = uow.conn.execute(_IS_LAGGING, {"cart_id": cart_id}).scalar()
        uow.commit()
    return not lagging


def unclaimed_lagging(shop, limit):
    """Ids of carts whose PaymentIntent lags and that no process is syncing (at most `limit`)."""
    with shop.uow(statements=True) as uow:
        cart_ids = uow.conn.execute(_UNCLAIMED, {"now": shop.now(), "limit": limit}).scalars().all()
        uow.commit()
    return cart_ids


def sync_cart(shop, cart_id, owner, lease_seconds=30.0, budget=None):
    """Update Stripe until the PaymentIntent matches the cart, holding the cart's lease; DONE, BUSY or FAILED.

    The lease is taken only when there is something to send, in the statement that reads what to send.
    With a `budget`, each update then waits for its store-wide slot; a wait renews the lease and reads
    the version again, so the update carries every change made while it waited. Recording an update
    releases the lease; the claim that follows is the look for changes committed meanwhile.
    """
    target = _claim(shop, cart_id, owner, lease_seconds)
    if target is None:
        return DONE if is_current(shop, cart_id) else BUSY
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
    now = shop.now()
    params = {"cart_id": cart_id, "owner": owner, "now": now, "until": now + timedelta(seconds=lease_seconds)}
    with shop.uow(statements=True) as uow:
        row = uow.conn.execute(_CLAIM, params).one_or_none()
        uow.commit()
    return tuple(row) if row is not None else None


def _record(shop, cart_id, owner, pi):
    """Mirror an update Stripe accepted onto the cart, release the lease, and push the cart as it now is."""
    version = pi.cart_ref[1]
    message = f"PaymentIntent now charges {money(pi.amount, pi.currency)} for cart v{version}"
    params = {
        "cart_id": cart_id,
        "owner": owner,
        "pi_id": pi.id,
        "recorded_version": version,
        "new_amount": pi.amount,
        "new_status": pi.status,
    }
    with shop.uow(statements=True) as uow:
        if uow.conn.dialect.name == "postgresql":
            view = _view(uow.conn.execute(_RECORD_AND_READ, {**params, "message": message, "at": utcnow()}).all())
        else:
            uow.conn.execute(_RECORD, params)
            history.record(uow.conn, "sync", message, cart_id=cart_id, payment_intent_id=pi.id)
            view = repository.read(uow.conn, cart_id)[0].view()
        uow.commit()
    log.info("cart %s v%s: PaymentIntent %s now charges %s", cart_id, version, pi.id, pi.amount)
    if view is not None:
        shop.publish.cart(view)


def _view(rows):
    """The pushed view of the cart the record statement returned with its lines (None if it is gone)."""
    if not rows:
        return None
    return repository.state_from_rows(rows[0], [r for r in rows if r.quantity is not None]).view()


def _release(shop, cart_id, owner):
    with shop.uow(statements=True) as uow:
        uow.conn.execute(_RELEASE, {"cart_id": cart_id, "owner": owner})
        uow.commit()


def sync_until_current(shop, cart_id, *, wait_seconds, lease_seconds=30.0):
    """Sync now, waiting for another writer's lease if needed; True once the PaymentIntent matches the cart."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        outcome = sync_cart(shop, cart_id, owner, lease_seconds)
        if outcome == FAILED:
            return False
        if outcome == DONE and is_current(shop, cart_id):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
