"""Checkout use cases: start, the confirm handshake, and turning a PaymentIntent's state into orders."""

import logging

from sqlalchemy import select

from ..cart.domain import without_snapshot
from ..cart.service import cart_view, lock_cart, replace_lines
from ..errors import CheckoutInProgress, Conflict, InvalidInput, NotFound, PaymentUnavailable
from ..models import Cart, CartSnapshot, Order
from ..payments.gateway import GatewayUnavailable, IdempotencyConflict, PaymentError
from . import domain

log = logging.getLogger(__name__)


def order_view(order):
    """The order as GET /api/orders/<id> shows it."""
    return {
        "id": order.id,
        "status": order.status,
        "amount": order.amount,
        "amount_received": order.amount_received,
        "amount_refunded": order.amount_refunded,
        "currency": order.currency,
        "items": order.items,
        "payment_intent_id": order.payment_intent_id,
        "cart_version": order.cart_version,
    }


def order_push(order):
    return {"id": order.id, "status": order.status, "amount": order.amount}


def read_order(shop, cart_id, order_id):
    """One of this cart's orders; another shopper's order is indistinguishable from a missing one."""
    order = shop.session.get(Order, order_id, populate_existing=True)
    if order is None or order.cart_id != cart_id:
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    view = order_view(order)
    shop.session.commit()
    return view


def checkout_answer(cart):
    return {
        "payment_intent_id": cart.payment_intent_id,
        "client_secret": cart.client_secret,
        "amount": cart.pi_amount,
        "currency": cart.currency,
        "cart_version": cart.version,
    }


def start_checkout(shop, cart_id):
    """The cart's live PaymentIntent, created for the current version if it has none."""
    for _ in range(3):
        cart = lock_cart(shop.session, cart_id)
        if cart_view(cart)["total"] <= 0:
            shop.session.commit()
            raise InvalidInput("Your cart is empty.", code="cart_empty")
        if cart.payment_intent_id and cart.pi_status not in ("succeeded", "canceled"):
            answer = checkout_answer(cart)
            shop.session.commit()
            shop.schedule_sync(cart_id)
            return answer
        attempt, version = cart.checkout_count, cart.version
        total = cart_view(cart)["total"]
        shop.session.commit()
        try:
            pi = shop.gateway.create_payment_intent(
                cart_id=cart_id, version=version, amount=total, currency=cart.currency, attempt=attempt
            )
        except IdempotencyConflict:
            continue
        except PaymentError as err:
            raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
        _attach(shop, cart_id, attempt, pi)
    raise PaymentUnavailable("Checkout could not start; please try again.")


def _attach(shop, cart_id, attempt, pi):
    cart = lock_cart(shop.session, cart_id)
    if cart.checkout_count == attempt:
        cart.payment_intent_id, cart.client_secret = pi.id, pi.client_secret
        cart.pi_amount, cart.pi_status = pi.amount, pi.status
        cart.pi_version = pi.cart_ref[1]
        cart.checkout_count += 1
        log.info("cart %s v%s: PaymentIntent %s created for %s", cart_id, cart.pi_version, pi.id, pi.amount)
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart(view)


def confirm(shop, cart_id, shown_version, sync_now):
    """The handshake: freeze the cart at the version the page shows and record the order awaiting payment."""
    cart = lock_cart(shop.session, cart_id)
    view = cart_view(cart)
    try:
        domain.check_handshake(
            shown_version=shown_version,
            version=cart.version,
            status=cart.status,
            total=view["total"],
            has_payment_intent=bool(cart.payment_intent_id),
        )
    except Conflict as err:
        shop.session.commit()
        err.extra = {"cart": view}
        raise
    cart.status, cart.frozen_at = "frozen", shop.now()
    order = _awaiting_order(shop.session, cart, view)
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart(view)
    synced = sync_now(cart_id)
    fresh, released = _refresh(shop, cart_id, order.id, synced)
    if released:
        raise PaymentUnavailable("The payment provider is not answering; please try again.")
    if not synced or fresh["status"] != "frozen" or fresh["version"] != view["version"]:
        raise CheckoutInProgress("This cart's payment already went through.", extra={"cart": fresh})
    log.info("cart %s v%s frozen for order %s", cart_id, view["version"], order.id)
    return {"order_id": order.id, "amount": view["total"], "cart_version": view["version"]}


def _awaiting_order(session, cart, view):
    order = session.execute(
        select(Order).where(Order.payment_intent_id == cart.payment_intent_id, Order.cart_version == cart.version)
    ).scalar_one_or_none()
    if order is None:
        order = Order(
            cart_id=cart.id,
            payment_intent_id=cart.payment_intent_id,
            cart_version=cart.version,
            amount=view["total"],
            currency=cart.currency,
            items=view["items"],
        )
        session.add(order)
    order.status = "awaiting_payment"
    session.flush()
    return order


def _refresh(shop, cart_id, order_id, synced):
    """The cart after the handshake's sync, and whether a failed sync released it (no payment went through)."""
    cart = lock_cart(shop.session, cart_id)
    order = shop.session.get(Order, order_id, populate_existing=True)
    release = (
        not synced
        and cart.status == "frozen"
        and cart.pi_status in domain.REUSABLE_PI_STATUSES
        and order.status == "awaiting_payment"
    )
    if release:
        _unfreeze(cart, [order])
    view = cart_view(cart)
    shop.session.commit()
    if release:
        shop.publish.cart(view)
        shop.publish.order(cart_id, order_push(order))
    return view, release


def _unfreeze(cart, orders):
    cart.status, cart.frozen_at = "open", None
    for order in orders:
        if order.status == "awaiting_payment":
            order.status = "payment_failed"


def release_expired_freeze(shop, cart_id):
    """Release a freeze past its time limit once Stripe says the money can no longer move; True if released."""
    cart = shop.session.get(Cart, cart_id, populate_existing=True)
    expired = cart is not None and domain.freeze_expired(cart.frozen_at, shop.now(), shop.freeze_seconds)
    pi_id = cart.payment_intent_id if expired else None
    shop.session.commit()
    if not pi_id:
        return False
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentError:
        return False
    apply_payment_intent(shop, pi)
    if not domain.may_release_freeze(pi.status):
        return False
    cart = lock_cart(shop.session, cart_id)
    if cart.status != "frozen" or cart.payment_intent_id != pi_id:
        shop.session.commit()
        return cart.status == "open"
    awaiting = _orders_of(shop.session, pi_id, status="awaiting_payment")
    _unfreeze(cart, awaiting)
    view = cart_view(cart)
    shop.session.commit()
    log.info("cart %s: expired freeze released (PaymentIntent %s is %s)", cart_id, pi_id, pi.status)
    shop.publish.cart(view)
    for order in awaiting:
        shop.publish.order(cart_id, order_push(order))
    return True


def _orders_of(session, pi_id, status=None):
    query = select(Order).where(Order.payment_intent_id == pi_id)
    if status:
        query = query.where(Order.status == status)
    return list(session.execute(query).scalars())


def apply_payment_intent(shop, pi, observed_at=None):
    """Bring orders and the cart in line with a PaymentIntent's current state (webhook, reconcile, sync)."""
    ref = pi.cart_ref
    if ref is None or shop.session.get(Cart, ref[0]) is None:
        shop.session.commit()
        log.warning("PaymentIntent %s names no cart of ours; ignored", pi.id)
        return
    cart_id, version = ref
    cart = lock_cart(shop.session, cart_id)
    if cart.payment_intent_id == pi.id:
        cart.pi_status = pi.status
    outcome = domain.payment_outcome(pi.status, pi.payment_error is not None)
    changed, refund = [], None
    if outcome == "succeeded":
        changed, refund = _fulfil(shop.session, cart, pi, version)
    elif outcome == "canceled" or (outcome == "failed" and domain.failure_is_current(observed_at, cart.frozen_at)):
        changed = _fail(shop.session, cart, pi, outcome)
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart(view)
    for order in changed:
        shop.publish.order(cart_id, order_push(order))
    if refund:
        refund_excess(shop, *refund)


def _fulfil(session, cart, pi, version):
    orders = _orders_of(session, pi.id)
    order = next((o for o in orders if o.cart_version == version), None)
    if order is not None and order.status in domain.SETTLED_ORDER_STATUSES:
        return [], None
    if order is None:
        order = _order_from_snapshot(session, cart, pi, version)
    order.status, order.refund_due = domain.settlement(order.amount, pi.amount_received)
    order.amount_received = pi.amount_received
    superseded = [o for o in orders if o is not order and o.status == "awaiting_payment"]
    for other in superseded:
        other.status = "payment_failed"
    quantities = {line.product_id: line.quantity for line in cart.lines}
    if cart.payment_intent_id == pi.id:
        _forget_payment_intent(cart)
    replace_lines(session, cart, without_snapshot(quantities, order.items))
    session.flush()
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
    awaiting = _orders_of(session, pi.id, status="awaiting_payment")
    if cart.payment_intent_id == pi.id:
        _unfreeze(cart, awaiting)
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
    for order in _orders_of(shop.session, pi_id):
        if order.status in domain.SETTLED_ORDER_STATUSES and amount_refunded > order.amount_refunded:
            order.amount_refunded = amount_refunded
            order.status = domain.refund_outcome(order.status, order.amount_received, amount_refunded, order.refund_due)
            changed.append(order)
    shop.session.commit()
    for order in changed:
        shop.publish.order(order.cart_id, order_push(order))


def unavailable(err):
    """Whether a payment error is worth retrying later."""
    return isinstance(err, GatewayUnavailable)
