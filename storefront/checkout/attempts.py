"""Which PaymentIntents this store created, and for which cart: recorded before Stripe is asked.

A create's idempotency key is its attempt's random token (with the store's id), so a create whose
answer was lost is asked again with the same key and the same parameters, and Stripe hands back the
PaymentIntent it made (or makes it now) instead of refusing a key reused with a changed cart. The
record, not a PaymentIntent's metadata (anyone with the secret key can edit it), says whose a payment is.
"""

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, insert, select, update

from ..models import PaymentAttempt
from . import records
from .domain import SETTLED_ORDER_STATUSES
from .records import carts, orders

log = logging.getLogger(__name__)

attempts = PaymentAttempt.__table__

_PENDING = (
    select(attempts)
    .where(attempts.c.cart_id == bindparam("cart_id"), attempts.c.status == "pending")
    .order_by(attempts.c.created_at.desc())
    .limit(1)
)
# The first answer for an attempt records its PaymentIntent; a second one (the same create asked twice) finds
# it recorded and writes nothing.
_CREATED = (
    update(attempts)
    .where(attempts.c.id == bindparam("token"), attempts.c.payment_intent_id.is_(None))
    .values(status="created", payment_intent_id=bindparam("pi_id"))
)
_ABANDON = (
    update(attempts)
    .where(attempts.c.id == bindparam("token"), attempts.c.status == "pending")
    .values(status="abandoned")
)


_pi_id = attempts.c.payment_intent_id
# A cart holding the PaymentIntent does not take it out of the sweep: its shopper may have paid it without
# the handshake, and a lost or failed event would leave that money without its order. Those held take turns
# with the rest (least recently checked first), and the sweep never cancels them.
_UNSETTLED = (
    select(_pi_id, exists().where(carts.c.payment_intent_id == _pi_id).label("held"))
    .where(
        attempts.c.status == "created",
        _pi_id.is_not(None),
        attempts.c.created_at <= bindparam("created_before"),
        ~exists().where(orders.c.payment_intent_id == _pi_id, orders.c.status.in_(sorted(SETTLED_ORDER_STATUSES))),
    )
    .order_by(attempts.c.checked_at.asc().nulls_first(), attempts.c.created_at, attempts.c.id)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class Attempt:
    """What one create sends, read before the transaction ends (the Stripe call runs outside it)."""

    token: str
    cart_version: int
    amount: int
    currency: str


def for_checkout(conn, state):
    """The cart's create still waiting for an answer, or a new one for its current version (`state`, a
    CartState, in the caller's transaction, which holds the cart's lock)."""
    pending = conn.execute(_PENDING, {"cart_id": state.id}).first()
    if pending is None:
        token = uuid.uuid4().hex
        conn.execute(
            insert(attempts),
            {
                "id": token,
                "cart_id": state.id,
                "cart_version": state.version,
                "amount": state.total,
                "currency": state.currency,
                "status": "pending",
            },
        )
        return Attempt(token, state.version, state.total, state.currency)
    log.info(
        "cart %s: asking again for attempt %s (v%s), whose answer was lost", state.id, pending.id, pending.cart_version
    )
    return Attempt(pending.id, pending.cart_version, pending.amount, pending.currency)


def record_created(conn, token, pi_id):
    """Note the PaymentIntent an attempt made; True the first time (the one answer that may attach it)."""
    return conn.execute(_CREATED, {"token": token, "pi_id": pi_id}).rowcount == 1


def abandon(conn, token):
    """Stripe refused to answer this attempt again: the next checkout makes a new one."""
    conn.execute(_ABANDON, {"token": token})


@dataclass(frozen=True)
class Claim:
    """Whose payment a PaymentIntent is: the cart this store gave it to (None: ours, but no cart can take it),
    the cart version it pays, and whether its metadata disagrees with our records (a person must look)."""

    cart_id: int | None
    version: int | None
    review: bool = False


def claim_of(conn, pi, store_id):
    """The claim this store has on `pi`, by its own records first; None when the payment is not ours."""
    meta_store, ref = pi.metadata.get("store_id"), pi.cart_ref
    attempt = _attempt_of(conn, pi)
    if attempt is not None:
        if meta_store == store_id and ref is not None and ref[0] == attempt.cart_id:
            return Claim(attempt.cart_id, ref[1])
        log.warning(
            "PaymentIntent %s of cart %s has metadata %s, not what this store set; for review",
            pi.id,
            attempt.cart_id,
            pi.metadata,
        )
        return Claim(attempt.cart_id, _paid_version(conn, pi, attempt), review=True)
    if meta_store not in (None, store_id):
        return None
    if ref is not None and _cart_used(conn, ref[0], pi.id):
        return Claim(*ref)  # created before attempts were recorded: the cart's own PaymentIntent
    return Claim(None, None) if meta_store == store_id else None


def unsettled(conn, created_before, limit):
    """PaymentIntents this store created and no order settled, as (id, whether a cart holds it): each may hold
    money that reached no order (its event acknowledged by a deployment that did nothing, or failed, or a
    payment confirmed without the handshake). Never asked about first, then the least recently asked, so a
    backlog drains in order and those carts still hold take turns."""
    return conn.execute(_UNSETTLED, {"created_before": created_before, "limit": limit}).all()


def checked(conn, pi_id, now):
    """Reconciliation asked Stripe about the PaymentIntent now: the next passes ask about the others first."""
    conn.execute(update(attempts).where(attempts.c.payment_intent_id == pi_id).values(checked_at=now))


def close(conn, pi_id, status):
    """The attempt's PaymentIntent ended without an order (`refunded`, `canceled`, `missing` at Stripe):
    reconciliation stops asking about it."""
    conn.execute(
        update(attempts)
        .where(attempts.c.payment_intent_id == pi_id, attempts.c.status == "created")
        .values(status=status)
    )


def _attempt_of(conn, pi):
    attempt = conn.execute(select(attempts).where(attempts.c.payment_intent_id == pi.id)).one_or_none()
    token = pi.metadata.get("checkout_attempt")
    if attempt is None and isinstance(token, str) and token:
        # A create whose answer never reached us (abandoned, or still pending): its token names it.
        found = conn.execute(select(attempts).where(attempts.c.id == token)).one_or_none()
        attempt = found if found is not None and found.payment_intent_id is None else None
    return attempt


def _paid_version(conn, pi, attempt):
    """The version a PaymentIntent with untrustworthy metadata pays: its handshake's order, else the last
    version this store set on it, else the one it was created for."""
    paid = records.orders_of(conn, pi.id)
    if paid:
        return paid[-1].cart_version
    cart = records.checkout_of(conn, attempt.cart_id)
    if cart is not None and cart.payment_intent_id == pi.id and cart.pi_version:
        return cart.pi_version
    return attempt.cart_version


def _cart_used(conn, cart_id, pi_id):
    cart = records.checkout_of(conn, cart_id)
    if cart is None:
        return False
    used = select(orders.c.id).where(orders.c.payment_intent_id == pi_id, orders.c.cart_id == cart_id).limit(1)
    return cart.payment_intent_id == pi_id or conn.execute(used).first() is not None
