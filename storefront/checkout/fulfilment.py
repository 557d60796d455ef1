"""A PaymentIntent's current state becomes orders: fulfil, fail, refund (for webhooks, reconcile and sync)."""

import logging
from dataclasses import replace

from ..cart import repository
from ..cart.domain import money, without_snapshot
from ..merchant import history, pricing, stock
from ..payments.gateway import AlreadyRefunded, GatewayUnavailable, PaymentError
from . import attempts, domain, records

log = logging.getLogger(__name__)


def order_push(order):
    """The `order` event's payload."""
    return {"id": order.id, "status": order.status, "amount": order.amount}


def fail_order(conn, order, **values):
    """An order whose payment will not come: its reserved stock goes back. The order row as it now is."""
    stock.release(conn, order.id)
    return records.update_order(conn, order.id, status="payment_failed", **values)


def unfreeze(conn, state):
    """Open a frozen cart again; it moves to the catalog's current prices (kept while it was being paid).
    The cart's new state (the caller fails its awaiting orders)."""
    records.set_cart(conn, state.id, **records.OPEN)
    opened = replace(state, status="open")
    return pricing.reprice_locked(conn, opened) or opened


def _forget_payment_intent(conn, state):
    """The cart lets go of its PaymentIntent (paid, cancelled or unknown to Stripe) and is open."""
    records.set_cart(conn, state.id, **records.NO_PAYMENT_INTENT, **records.OPEN)
    return replace(state, status="open", payment_intent_id=None, pi_amount=None, pi_status=None)


def apply_payment_intent(shop, pi, observed_at=None):
    """Bring orders and the cart in line with a PaymentIntent's current state (webhook, reconcile, sync)."""
    outcome = domain.payment_outcome(pi.status, pi.payment_error is not None)
    # How a processing or succeeded payment was paid is asked once per payment, with no transaction open.
    wanted = outcome == "succeeded" or pi.status == "processing"
    with shop.uow() as uow:
        claim = attempts.claim_of(uow.conn, pi, shop.gateway.store_id)
        taken, known = False, False
        if claim is not None and claim.cart_id is not None:
            taken, known = records.cart_and_method(uow.conn, claim.cart_id, pi.id)
        uow.commit()
    if not taken:
        _unclaimed(shop, pi, claim)
        return
    method = shop.gateway.payment_method_of(pi) if wanted and not known else None
    with shop.uow() as uow:
        refund = _apply(uow, shop, pi, claim, outcome, method, observed_at)
        uow.commit()
    if refund:
        refund_excess(shop, *refund)


def _unclaimed(shop, pi, claim):
    """No cart of ours takes the payment (metadata can be copied or edited: our records decide). A succeeded
    payment of ours is refunded, so no money ends nowhere."""
    if claim is not None and pi.status == "succeeded":
        refund_unmatched(shop, pi)
    else:
        log.warning("PaymentIntent %s is no payment of this store's carts; ignored", pi.id)


def _apply(uow, shop, pi, claim, outcome, method, observed_at):
    """The PaymentIntent's state written under the cart's lock, its pushes after the commit; a refund owed."""
    conn, cart_id = uow.conn, claim.cart_id
    state = records.locked_state(conn, cart_id)
    changed, refund = [], None
    if outcome == "succeeded":
        state, changed, refund = _fulfil(conn, state, pi, claim.version, method, matched=not claim.review)
    elif pi.status == "processing":
        changed = _note_method(conn, pi, method)
    elif outcome == "canceled" or (
        outcome == "failed" and domain.failure_is_current(observed_at, records.checkout_of(conn, cart_id).frozen_at)
    ):
        state, changed = _fail(conn, state, pi, outcome)
    if state.payment_intent_id == pi.id:  # still held (a paid or cancelled one was let go of above)
        records.mirror_status(conn, cart_id, pi.id, pi.status)
        state = replace(state, pi_status=pi.status)
    for order in changed:
        history.record(
            conn,
            "stripe",
            f"PaymentIntent {pi.status}; received {money(pi.amount_received, pi.currency)}; order is {order.status}",
            cart_id=cart_id,
            order_id=order.id,
            payment_intent_id=pi.id,
        )
    view, pushes = state.view(), [order_push(order) for order in changed]
    uow.after_commit(lambda: _publish(shop, cart_id, view, pushes, sync=bool(changed)))
    return refund


def _publish(shop, cart_id, view, pushes, *, sync):
    shop.publish.cart(view)
    if sync:
        shop.schedule_sync(cart_id)  # a cart opened again may be at new prices: its PaymentIntent follows
    for push in pushes:
        shop.publish.order(cart_id, push)


def _note_method(conn, pi, method):
    """A bank debit can take days: the awaiting orders say which method is on its way."""
    if not method:
        return []
    return records.update_orders(conn, pi.id, "awaiting_payment", payment_method=method)


def _fulfil(conn, state, pi, version, method, *, matched):
    """Settle the order of the version paid; the cart's new state (the paid lines leave it), the orders
    changed, and the refund owed ((order id, PaymentIntent id, amount) or None)."""
    orders = records.orders_of(conn, pi.id)
    order = next((o for o in orders if o.cart_version == version), None)
    if order is not None and order.status in domain.SETTLED_ORDER_STATUSES:
        return state, [], None
    if order is None:
        order = _order_from_snapshot(conn, state.id, pi, version)
    status, refund_due = domain.settlement(order.amount, pi.amount_received, matched=matched)
    if not stock.sell(conn, order.id, order.items):
        status = "needs_review"  # paid without the handshake, for stock that is gone: a person decides
        log.warning("order %s was paid but its stock is gone; it needs review", order.id)
        history.record(
            conn,
            "stock",
            "paid, but its stock is gone: nothing sold, needs review",
            cart_id=state.id,
            order_id=order.id,
            payment_intent_id=pi.id,
        )
    order = records.update_order(
        conn,
        order.id,
        status=status,
        refund_due=refund_due,
        amount_received=pi.amount_received,
        payment_method=method or order.payment_method,
    )
    superseded = [fail_order(conn, o) for o in orders if o.id != order.id and o.status == "awaiting_payment"]
    if state.payment_intent_id == pi.id:
        state = _forget_payment_intent(conn, state)
    state = repository.write_lines(conn, state, without_snapshot(state.quantities, order.items))
    log.info(
        "order %s for cart %s v%s is %s (received %s of %s)",
        order.id,
        state.id,
        version,
        order.status,
        pi.amount_received,
        order.amount,
    )
    refund = (order.id, pi.id, order.refund_due) if order.refund_due else None
    return state, [order, *superseded], refund


def _order_from_snapshot(conn, cart_id, pi, version):
    """A payment confirmed without the handshake: the order is the snapshot its metadata names."""
    snapshot = records.snapshot(conn, cart_id, version)
    return records.add_order(
        conn,
        cart_id=cart_id,
        payment_intent_id=pi.id,
        cart_version=version,
        status="awaiting_payment",
        amount=snapshot.total if snapshot else 0,
        currency=pi.currency,
        items=snapshot.items if snapshot else [],
    )


def _fail(conn, state, pi, outcome):
    """The payment will not come: its awaiting orders fail, and a cart holding it opens again."""
    reason = (pi.payment_error_message or "")[:255] or None
    awaiting = records.orders_of(conn, pi.id, status="awaiting_payment")
    failed = [fail_order(conn, order, failure_reason=reason) for order in awaiting]
    if state.payment_intent_id == pi.id:
        state = unfreeze(conn, state)
        if outcome == "canceled":
            state = _forget_payment_intent(conn, state)
    return state, failed


def forget_missing_payment(shop, cart_id, pi_id):
    """Stripe does not know the cart's PaymentIntent, so no money can move on it: the cart opens, its awaiting
    orders fail (their stock goes back) and the next checkout creates a new PaymentIntent."""
    with shop.uow() as uow:
        conn = uow.conn
        state = records.locked_state(conn, cart_id)
        if state.payment_intent_id != pi_id:
            return
        failed = [fail_order(conn, order) for order in records.orders_of(conn, pi_id, status="awaiting_payment")]
        if state.status == "frozen":
            state = unfreeze(conn, state)
        state = _forget_payment_intent(conn, state)
        for order in failed:
            history.record(
                conn,
                "stripe",
                "PaymentIntent unknown to Stripe; order is payment_failed",
                cart_id=cart_id,
                order_id=order.id,
                payment_intent_id=pi_id,
            )
        view, pushes = state.view(), [order_push(order) for order in failed]
        uow.after_commit(lambda: _publish(shop, cart_id, view, pushes, sync=False))
        uow.commit()
    log.warning("cart %s: PaymentIntent %s is unknown to Stripe; forgotten, the cart is open", cart_id, pi_id)


def refund_excess(shop, order_id, pi_id, amount):
    """Refund what a payment received beyond its order; retried by reconciliation if Stripe is down."""
    try:
        shop.gateway.refund(pi_id, amount, reason_key=f"order-{order_id}-excess-{amount}")
    except PaymentError as err:
        log.warning("order %s: refund of %s on %s failed (%s); reconciliation will retry", order_id, amount, pi_id, err)
        return False
    with shop.uow() as uow:
        order = records.order(uow.conn, order_id, lock=True)
        if amount > order.amount_refunded:
            records.update_order(uow.conn, order_id, amount_refunded=amount)
        history.record(
            uow.conn,
            "refund",
            f"excess of {money(amount, order.currency)} refunded",
            cart_id=order.cart_id,
            order_id=order_id,
            payment_intent_id=pi_id,
        )
        uow.commit()
    return True


def refund_unmatched(shop, pi):
    """A payment this store created that no cart of ours can take goes back whole.

    Stripe unavailable: GatewayUnavailable goes up, so the recorded webhook event is tried again after its
    backoff (and reconciliation leaves it for its next pass). A payment refunded in full already (by hand,
    or by an earlier try whose answer was lost) is done.
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
    with shop.uow() as uow:
        attempts.close(uow.conn, pi.id, "refunded")
        uow.commit()
    return True


def record_refunds(shop, pi_id, amount_refunded):
    """Mirror Stripe's refunded total onto the PaymentIntent's settled orders (never decreasing)."""
    with shop.uow() as uow:
        changed = []
        for order in records.orders_of(uow.conn, pi_id):
            if order.status in domain.SETTLED_ORDER_STATUSES and amount_refunded > order.amount_refunded:
                status = domain.refund_outcome(order.status, order.amount_received, amount_refunded, order.refund_due)
                order = records.update_order(uow.conn, order.id, amount_refunded=amount_refunded, status=status)
                changed.append((order.cart_id, order_push(order)))
        uow.after_commit(lambda: _publish_orders(shop, changed))
        uow.commit()


def _publish_orders(shop, changed):
    for cart_id, push in changed:
        shop.publish.order(cart_id, push)
