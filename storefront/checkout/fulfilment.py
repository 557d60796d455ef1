"""A PaymentIntent's current state becomes orders: fulfil, fail, refund (for webhooks, reconcile and sync)."""

import logging

from sqlalchemy import select

from ..cart import repository
from ..cart.domain import without_snapshot
from ..cart.service import cart_view, lock_cart
from ..models import Cart, CartSnapshot, Order
from ..payments.gateway import PaymentError
from . import domain

log = logging.getLogger(__name__)


def order_push(order):
    """The `order` event's payload."""
    return {"id": order.id, "status": order.status, "amount": order.amount}


def orders_of(session, pi_id, status=None):
    query = select(Order).where(Order.payment_intent_id == pi_id)
    if status:
        query = query.where(Order.status == status)
    return list(session.execute(query).scalars())


def unfreeze(cart, orders):
    cart.status, cart.frozen_at = "open", None
    for order in orders:
        if order.status == "awaiting_payment":
            order.status = "payment_failed"


def apply_payment_intent(shop, pi, observed_at=None):
    """Bring orders and the cart in line with a PaymentIntent's current state (webhook, reconcile, sync)."""
    ref = pi.cart_ref
    if ref is None or shop.session.get(Cart, ref[0]) is None:
        shop.session.commit()
        log.warning("PaymentIntent %s names no cart of ours; ignored", pi.id)
        return
    cart_id, version = ref
    outcome = domain.payment_outcome(pi.status, pi.payment_error is not None)
    method = _method_to_record(shop, pi, outcome)
    cart = lock_cart(shop.session, cart_id)
    if cart.payment_intent_id != pi.id and not orders_of(shop.session, pi.id):
        # Metadata can be copied: only a PaymentIntent this cart was given is one of ours.
        shop.session.commit()
        log.warning("PaymentIntent %s names cart %s, which never used it; ignored", pi.id, cart_id)
        return
    if cart.payment_intent_id == pi.id:
        cart.pi_status = pi.status
    changed, refund = [], None
    if outcome == "succeeded":
        changed, refund = _fulfil(shop.session, cart, pi, version, method)
    elif pi.status == "processing":
        changed = _note_method(shop.session, pi, method)
    elif outcome == "canceled" or (outcome == "failed" and domain.failure_is_current(observed_at, cart.frozen_at)):
        changed = _fail(shop.session, cart, pi, outcome)
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart(view)
    for order in changed:
        shop.publish.order(cart_id, order_push(order))
    if refund:
        refund_excess(shop, *refund)


def _method_to_record(shop, pi, outcome):
    """How a processing or succeeded payment was paid, read from Stripe once per payment (before any row
    lock: no Stripe call while a cart is locked); None when already recorded or not yet known."""
    if outcome != "succeeded" and pi.status != "processing":
        return None
    known = shop.session.execute(  # a column read: no models loaded ahead of the lock
        select(Order.id).where(Order.payment_intent_id == pi.id, Order.payment_method.is_not(None)).limit(1)
    ).first()
    return None if known else shop.gateway.payment_method_of(pi)


def _note_method(session, pi, method):
    """A bank debit can take days: the awaiting orders say which method is on its way."""
    if not method:
        return []
    awaiting = orders_of(session, pi.id, status="awaiting_payment")
    for order in awaiting:
        order.payment_method = method
    return awaiting


def _fulfil(session, cart, pi, version, method):
    orders = orders_of(session, pi.id)
    order = next((o for o in orders if o.cart_version == version), None)
    if order is not None and order.status in domain.SETTLED_ORDER_STATUSES:
        return [], None
    if order is None:
        order = _order_from_snapshot(session, cart, pi, version)
    order.status, order.refund_due = domain.settlement(order.amount, pi.amount_received)
    order.amount_received = pi.amount_received
    order.payment_method = method or order.payment_method
    superseded = [o for o in orders if o is not order and o.status == "awaiting_payment"]
    for other in superseded:
        other.status = "payment_failed"
    if cart.payment_intent_id == pi.id:
        _forget_payment_intent(cart)
    session.flush()
    state = repository.state_of(cart)
    repository.write_lines(session.connection(), state, without_snapshot(state.quantities, order.items))
    session.expire(cart)  # written in Core above: the model reloads its version and lines
    log.info("order %s for cart %s v%s is %s (received %s of %s)",
             order.id, cart.id, version, order.status, pi.amount_received, order.amount)
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
            order.status = "payment_failed"
    return awaiting


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
    shop.session.commit()
    return True


def record_refunds(shop, pi_id, amount_refunded):
    """Mirror Stripe's refunded total onto the PaymentIntent's settled orders (never decreasing)."""
    changed = []
    for order in orders_of(shop.session, pi_id):
        if order.status in domain.SETTLED_ORDER_STATUSES and amount_refunded > order.amount_refunded:
            order.amount_refunded = amount_refunded
            order.status = domain.refund_outcome(order.status, order.amount_received, amount_refunded, order.refund_due)
            changed.append(order)
    shop.session.commit()
    for order in changed:
        shop.publish.order(order.cart_id, order_push(order))
