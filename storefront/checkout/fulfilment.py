"""A PaymentIntent's current state becomes orders: fulfil, fail, refund (for webhooks, reconcile and sync)."""

import logging

from sqlalchemy import select
from sqlalchemy.orm import object_session

from ..cart import repository
from ..cart.domain import money, without_snapshot
from ..cart.service import cart_view, lock_cart
from ..merchant import history, stock
from ..merchant.pricing import reprice_locked
from ..models import Cart, CartSnapshot, Order
from ..payments.gateway import AlreadyRefunded, GatewayUnavailable, PaymentError
from . import attempts, domain

log = logging.getLogger(__name__)


def order_push(order):
    """The `order` event's payload."""
    return {"id": order.id, "status": order.status, "amount": order.amount}


def orders_of(session, pi_id, status=None):
    query = select(Order).where(Order.payment_intent_id == pi_id)
    if status:
        query = query.where(Order.status == status)
    return list(session.execute(query).scalars())


def fail_order(session, order):
    """An order whose payment will not come: its reserved stock goes back."""
    order.status = "payment_failed"
    stock.release(session.connection(), order.id)


def unfreeze(cart, orders):
    """Open a frozen cart again; it moves to the catalog's current prices (kept while it was being paid)."""
    session = object_session(cart)
    cart.status, cart.frozen_at = "open", None
    for order in orders:
        if order.status == "awaiting_payment":
            fail_order(session, order)
    session.flush()
    if reprice_locked(session.connection(), repository.state_of(cart)) is not None:
        session.expire(cart)  # written in Core: the model reloads its version and lines


def apply_payment_intent(shop, pi, observed_at=None):
    """Bring orders and the cart in line with a PaymentIntent's current state (webhook, reconcile, sync)."""
    claim = _claim(shop, pi)
    if claim is None:
        return
    cart_id, version = claim.cart_id, claim.version
    outcome = domain.payment_outcome(pi.status, pi.payment_error is not None)
    method = _method_to_record(shop, pi, outcome)
    cart = lock_cart(shop.session, cart_id)
    if cart.payment_intent_id == pi.id:
        cart.pi_status = pi.status
    changed, refund = [], None
    if outcome == "succeeded":
        changed, refund = _fulfil(shop.session, cart, pi, version, method, matched=not claim.review)
    elif pi.status == "processing":
        changed = _note_method(shop.session, pi, method)
    elif outcome == "canceled" or (outcome == "failed" and domain.failure_is_current(observed_at, cart.frozen_at)):
        changed = _fail(shop.session, cart, pi, outcome)
    for order in changed:
        history.record(
            shop.session.connection(),
            "stripe",
            f"PaymentIntent {pi.status}; received {money(pi.amount_received, pi.currency)}; order is {order.status}",
            cart_id=cart_id,
            order_id=order.id,
            payment_intent_id=pi.id,
        )
    # Read before the commit: an expired model read afterwards opens a transaction that would stay open
    # across the refund's Stripe call (on SQLite, the write lock).
    view, pushes = cart_view(cart), [order_push(order) for order in changed]
    shop.session.commit()
    shop.publish.cart(view)
    if changed:
        shop.schedule_sync(cart_id)  # a cart opened again may be at new prices: its PaymentIntent follows
    for push in pushes:
        shop.publish.order(cart_id, push)
    if refund:
        refund_excess(shop, *refund)


def _claim(shop, pi):
    """Whose payment this is, by our records (metadata can be copied or edited); None when no cart of ours
    takes it — a succeeded payment of ours that no cart takes is refunded, so no money ends nowhere."""
    claim = attempts.claim_of(shop.session, pi, shop.gateway.store_id)
    if claim is not None and claim.cart_id is not None and shop.session.get(Cart, claim.cart_id) is not None:
        return claim
    shop.session.commit()
    if claim is not None and pi.status == "succeeded":
        refund_unmatched(shop, pi)
    else:
        log.warning("PaymentIntent %s is no payment of this store's carts; ignored", pi.id)
    return None


def _method_to_record(shop, pi, outcome):
    """How a processing or succeeded payment was paid, read from Stripe once per payment (before any row
    lock: no Stripe call while a cart is locked); None when already recorded or not yet known."""
    if outcome != "succeeded" and pi.status != "processing":
        return None
    known = shop.session.execute(  # a column read: no models loaded ahead of the lock
        select(Order.id).where(Order.payment_intent_id == pi.id, Order.payment_method.is_not(None)).limit(1)
    ).first()
    shop.session.commit()  # no connection held while Stripe is asked (SQLite has one per process)
    return None if known else shop.gateway.payment_method_of(pi)


def _note_method(session, pi, method):
    """A bank debit can take days: the awaiting orders say which method is on its way."""
    if not method:
        return []
    awaiting = orders_of(session, pi.id, status="awaiting_payment")
    for order in awaiting:
        order.payment_method = method
    return awaiting


def _fulfil(session, cart, pi, version, method, *, matched):
    orders = orders_of(session, pi.id)
    order = next((o for o in orders if o.cart_version == version), None)
    if order is not None and order.status in domain.SETTLED_ORDER_STATUSES:
        return [], None
    if order is None:
        order = _order_from_snapshot(session, cart, pi, version)
    order.status, order.refund_due = domain.settlement(order.amount, pi.amount_received, matched=matched)
    order.amount_received = pi.amount_received
    order.payment_method = method or order.payment_method
    if not stock.sell(session.connection(), order.id, order.items):
        order.status = "needs_review"  # paid without the handshake, for stock that is gone: a person decides
        log.warning("order %s was paid but its stock is gone; it needs review", order.id)
        history.record(
            session.connection(),
            "stock",
            "paid, but its stock is gone: nothing sold, needs review",
            cart_id=cart.id,
            order_id=order.id,
            payment_intent_id=pi.id,
        )
    superseded = [o for o in orders if o is not order and o.status == "awaiting_payment"]
    for other in superseded:
        fail_order(session, other)
    if cart.payment_intent_id == pi.id:
        _forget_payment_intent(cart)
    session.flush()
    state = repository.state_of(cart)
    repository.write_lines(session.connection(), state, without_snapshot(state.quantities, order.items))
    session.expire(cart)  # written in Core above: the model reloads its version and lines
    log.info(
        "order %s for cart %s v%s is %s (received %s of %s)",
        order.id,
        cart.id,
        version,
        order.status,
        pi.amount_received,
        order.amount,
    )
    refund = (order.id, pi.id, order.refund_due) if order.refund_due else None
    return [order, *superseded], refund


def _order_from_snapshot(session, cart, pi, version):
    """A payment confirmed without the handshake: the order is the snapshot its metadata names."""
    snapshot = session.get(CartSnapshot, (cart.id, version))
    order = Order(
        cart_id=cart.id,
        payment_intent_id=pi.id,
        cart_version=version,
        status="awaiting_payment",
        amount=snapshot.total if snapshot else 0,
        currency=pi.currency,
        items=snapshot.items if snapshot else [],
    )
    session.add(order)
    session.flush()
    return order


def _fail(session, cart, pi, outcome):
    awaiting = orders_of(session, pi.id, status="awaiting_payment")
    for order in awaiting:
        order.failure_reason = (pi.payment_error_message or "")[:255] or None
    if cart.payment_intent_id == pi.id:
        unfreeze(cart, awaiting)
        if outcome == "canceled":
            _forget_payment_intent(cart)
    else:
        for order in awaiting:
            fail_order(session, order)
    return awaiting


def forget_missing_payment(shop, cart_id, pi_id):
    """Stripe does not know the cart's PaymentIntent, so no money can move on it: the cart opens, its awaiting
    orders fail (their stock goes back) and the next checkout creates a new PaymentIntent."""
    cart = lock_cart(shop.session, cart_id)
    if cart.payment_intent_id != pi_id:
        shop.session.commit()
        return
    awaiting = orders_of(shop.session, pi_id, status="awaiting_payment")
    if cart.status == "frozen":
        unfreeze(cart, awaiting)
    _forget_payment_intent(cart)
    for order in awaiting:
        history.record(
            shop.session.connection(),
            "stripe",
            "PaymentIntent unknown to Stripe; order is payment_failed",
            cart_id=cart_id,
            order_id=order.id,
            payment_intent_id=pi_id,
        )
    view, pushes = cart_view(cart), [order_push(order) for order in awaiting]
    shop.session.commit()
    log.warning("cart %s: PaymentIntent %s is unknown to Stripe; forgotten, the cart is open", cart_id, pi_id)
    shop.publish.cart(view)
    for push in pushes:
        shop.publish.order(cart_id, push)


def _forget_payment_intent(cart):
    cart.payment_intent_id = cart.client_secret = cart.pi_status = None
    cart.pi_amount = cart.pi_version = None
    cart.status, cart.frozen_at = "open", None


def refund_excess(shop, order_id, pi_id, amount):
    """Refund what a payment received beyond its order; retried by reconciliation if Stripe is down."""
    try:
        shop.gateway.refund(pi_id, amount, reason_key=f"order-{order_id}-excess-{amount}")
    except PaymentError as err:
        log.warning("order %s: refund of %s on %s failed (%s); reconciliation will retry", order_id, amount, pi_id, err)
        return False
    order = shop.session.get(Order, order_id, with_for_update=True)
    order.amount_refunded = max(order.amount_refunded, amount)
    history.record(
        shop.session.connection(),
        "refund",
        f"excess of {money(amount, order.currency)} refunded",
        cart_id=order.cart_id,
        order_id=order_id,
        payment_intent_id=pi_id,
    )
    shop.session.commit()
    return True


def refund_unmatched(shop, pi):
    """A payment this store created that no cart of ours can take goes back whole.

    Stripe unavailable: GatewayUnavailable goes up, so the webhook asks for redelivery and reconciliation
    leaves the event for its next pass. A payment refunded in full already (by hand, or by an earlier try
    whose answer was lost) is done.
    """
    try:
        shop.gateway.refund(pi.id, None, reason_key=f"unmatched-{pi.id}")
    except AlreadyRefunded:
        log.info("PaymentIntent %s: ours, matched to no cart; already refunded", pi.id)
    except GatewayUnavailable:
        raise
    except PaymentError as err:  # refused for good: the attempt stays open and reconciliation asks again
        log.error("PaymentIntent %s: ours, matched to no cart; Stripe refused the refund (%s)", pi.id, err)
        return False
    else:
        log.warning("PaymentIntent %s: ours, matched to no cart; %s refunded", pi.id, pi.amount_received)
    attempts.close(shop.session, pi.id, "refunded")
    shop.session.commit()
    return True


def record_refunds(shop, pi_id, amount_refunded):
    """Mirror Stripe's refunded total onto the PaymentIntent's settled orders (never decreasing)."""
    changed = []
    for order in orders_of(shop.session, pi_id):
        if order.status in domain.SETTLED_ORDER_STATUSES and amount_refunded > order.amount_refunded:
            order.amount_refunded = amount_refunded
            order.status = domain.refund_outcome(order.status, order.amount_received, amount_refunded, order.refund_due)
            changed.append((order.cart_id, order_push(order)))
    shop.session.commit()
    for cart_id, push in changed:
        shop.publish.order(cart_id, push)
