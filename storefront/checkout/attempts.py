"""Which PaymentIntents this store created, and for which cart: recorded before Stripe is asked.

A create's idempotency key is its attempt's random token (with the store's id), so a create whose
answer was lost is asked again with the same key and the same parameters, and Stripe hands back the
PaymentIntent it made (or makes it now) instead of refusing a key reused with a changed cart. The
record, not a PaymentIntent's metadata (anyone with the secret key can edit it), says whose a payment is.
"""

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from ..models import Cart, Order, PaymentAttempt
from .domain import SETTLED_ORDER_STATUSES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What one create sends, read before the transaction ends (the Stripe call runs outside it)."""

    token: str
    cart_version: int
    amount: int
    currency: str


def for_checkout(session, cart, total):
    """The cart's create still waiting for an answer, or a new one for its current version (in the caller's
    transaction, which holds the cart's lock)."""
    pending = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.cart_id == cart.id, PaymentAttempt.status == "pending")
        .order_by(PaymentAttempt.created_at.desc())
    ).first()
    if pending is None:
        pending = PaymentAttempt(
            id=uuid.uuid4().hex,
            cart_id=cart.id,
            cart_version=cart.version,
            amount=total,
            currency=cart.currency,
            status="pending",
        )
        session.add(pending)
        session.flush()
    else:
        log.info(
            "cart %s: asking again for attempt %s (v%s), whose answer was lost",
            cart.id,
            pending.id,
            pending.cart_version,
        )
    return Attempt(pending.id, pending.cart_version, pending.amount, pending.currency)


def record_created(session, token, pi_id):
    """Note the PaymentIntent an attempt made; True the first time (the one answer that may attach it)."""
    attempt = session.get(PaymentAttempt, token, with_for_update=True)
    first = attempt.payment_intent_id is None
    attempt.status, attempt.payment_intent_id = "created", pi_id
    return first


def abandon(session, token):
    """Stripe refused to answer this attempt again: the next checkout makes a new one."""
    attempt = session.get(PaymentAttempt, token, with_for_update=True)
    if attempt.status == "pending":
        attempt.status = "abandoned"


@dataclass(frozen=True)
class Claim:
    """Whose payment a PaymentIntent is: the cart this store gave it to (None: ours, but no cart can take it),
    the cart version it pays, and whether its metadata disagrees with our records (a person must look)."""

    cart_id: int | None
    version: int | None
    review: bool = False


def claim_of(session, pi, store_id):
    """The claim this store has on `pi`, by its own records first; None when the payment is not ours."""
    meta_store, ref = pi.metadata.get("store_id"), pi.cart_ref
    attempt = _attempt_of(session, pi)
    if attempt is not None:
        if meta_store == store_id and ref is not None and ref[0] == attempt.cart_id:
            return Claim(attempt.cart_id, ref[1])
        log.warning(
            "PaymentIntent %s of cart %s has metadata %s, not what this store set; for review",
            pi.id,
            attempt.cart_id,
            pi.metadata,
        )
        return Claim(attempt.cart_id, _paid_version(session, pi, attempt), review=True)
    if meta_store not in (None, store_id):
        return None
    if ref is not None and _cart_used(session, ref[0], pi.id):
        return Claim(*ref)  # created before attempts were recorded: the cart's own PaymentIntent
    return Claim(None, None) if meta_store == store_id else None


def unsettled(session, created_before, limit):
    """PaymentIntents this store created, no cart holds and no order settled: each may hold money that
    reached no order (its event acknowledged, but by a deployment that did nothing). Oldest first, so a
    backlog drains in order: each one asked about ends (an order, a refund, a cancel) or is still in flight."""
    pi_id = PaymentAttempt.payment_intent_id
    settled = select(Order.id).where(Order.payment_intent_id == pi_id, Order.status.in_(SETTLED_ORDER_STATUSES))
    held = select(Cart.id).where(Cart.payment_intent_id == pi_id)
    found = session.scalars(
        select(pi_id)
        .where(
            PaymentAttempt.status == "created",
            pi_id.is_not(None),
            PaymentAttempt.created_at <= created_before,
            ~settled.exists(),
            ~held.exists(),
        )
        .order_by(PaymentAttempt.created_at, PaymentAttempt.id)
        .limit(limit)
    ).all()
    return found


def close(session, pi_id, status):
    """The attempt's PaymentIntent ended without an order (`refunded`, `canceled`, `missing` at Stripe):
    reconciliation stops asking about it."""
    session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.payment_intent_id == pi_id, PaymentAttempt.status == "created")
        .values(status=status)
    )


def _attempt_of(session, pi):
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.payment_intent_id == pi.id))
    token = pi.metadata.get("checkout_attempt")
    if attempt is None and isinstance(token, str) and token:
        # A create whose answer never reached us (abandoned, or still pending): its token names it.
        found = session.get(PaymentAttempt, token)
        attempt = found if found is not None and found.payment_intent_id is None else None
    return attempt


def _paid_version(session, pi, attempt):
    """The version a PaymentIntent with untrustworthy metadata pays: its handshake's order, else the last
    version this store set on it, else the one it was created for."""
    order = session.scalars(select(Order).where(Order.payment_intent_id == pi.id).order_by(Order.id.desc())).first()
    if order is not None:
        return order.cart_version
    cart = session.get(Cart, attempt.cart_id)
    if cart is not None and cart.payment_intent_id == pi.id and cart.pi_version:
        return cart.pi_version
    return attempt.cart_version


def _cart_used(session, cart_id, pi_id):
    cart = session.get(Cart, cart_id)
    if cart is None:
        return False
    return (
        cart.payment_intent_id == pi_id
        or session.scalar(select(Order.id).where(Order.payment_intent_id == pi_id, Order.cart_id == cart_id).limit(1))
        is not None
    )
