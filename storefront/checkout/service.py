"""Checkout use cases: start, the confirm handshake, and turning a PaymentIntent's state into orders."""

import logging

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from ..cart.domain import money
from ..cart.service import cart_view, lock_cart
from ..errors import (
    CartChanged,
    CheckoutInProgress,
    Conflict,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentUnavailable,
    StoreUnavailable,
)
from ..merchant import history, pricing, stock
from ..models import Order
from ..payments.gateway import GatewayUnavailable, IdempotencyConflict, PaymentError, PaymentRefused
from . import attempts, domain
from .cancel import RELEASED, release_freeze
from .fulfilment import order_push, unfreeze

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
        "created_at": order.created_at.replace(microsecond=0).isoformat() + "Z",
        "payment_method": order.payment_method,
        "failure_reason": order.failure_reason,
    }


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
        if _live_payment_intent(cart):
            answer = checkout_answer(cart)
            shop.session.commit()
            shop.schedule_sync(cart_id)
            return answer
        # The attempt is recorded before Stripe is asked, and read as values: touching `cart` after the commit
        # would open a transaction (on SQLite, the write lock) and hold it for the whole Stripe call.
        attempt = attempts.for_checkout(shop.session, cart, cart_view(cart)["total"])
        shop.session.commit()
        try:
            pi = shop.gateway.create_payment_intent(
                cart_id=cart_id,
                version=attempt.cart_version,
                amount=attempt.amount,
                currency=attempt.currency,
                attempt=attempt.token,
            )
        except IdempotencyConflict:
            attempts.abandon(shop.session, attempt.token)
            shop.session.commit()
            log.warning("cart %s: Stripe refused attempt %s again; starting a new one", cart_id, attempt.token)
            continue
        except GatewayUnavailable as err:  # its answer may have been lost: the next checkout asks again
            raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
        except PaymentError as err:  # refused: nothing was created, so the next checkout starts a new attempt
            attempts.abandon(shop.session, attempt.token)
            shop.session.commit()
            log.warning("cart %s: Stripe refused attempt %s (%s)", cart_id, attempt.token, err)
            if isinstance(err, PaymentRefused):
                raise InvalidInput(
                    f"The payment provider can't take this cart as it is: {err}", code="payment_refused"
                ) from err
            raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
        _attach(shop, cart_id, attempt.token, pi)
    raise PaymentUnavailable("Checkout could not start; please try again.")


def _attach(shop, cart_id, token, pi):
    """The cart takes the PaymentIntent its attempt made; it lags behind the cart if the cart changed since,
    and the sync that the next look schedules brings it up to date."""
    cart = lock_cart(shop.session, cart_id)
    if attempts.record_created(shop.session, token, pi.id) and not _live_payment_intent(cart):
        cart.payment_intent_id, cart.client_secret = pi.id, pi.client_secret
        cart.pi_amount, cart.pi_status = pi.amount, pi.status
        cart.pi_version = pi.cart_ref[1]
        cart.checkout_count += 1
        log.info("cart %s v%s: PaymentIntent %s created for %s", cart_id, cart.pi_version, pi.id, pi.amount)
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart(view)


def _live_payment_intent(cart):
    return bool(cart.payment_intent_id) and cart.pi_status not in ("succeeded", "canceled")


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
    order_id = order.id
    # The products' locks may have waited for a merchant's price change or withdrawal: never freeze old prices.
    if pricing.catalog_moved(shop.session.connection(), view["items"]):
        shop.session.rollback()
        raise CartChanged(
            "A price in your cart just changed; please review the new amount before paying.",
            extra={"cart": pricing.follow_catalog(shop, cart_id)},
        )
    try:
        held = stock.reserve(shop.session.connection(), order.id, view["items"])  # in the transaction that freezes
    except OutOfStock as err:
        shop.session.rollback()
        err.extra = {**err.extra, "cart": view}
        raise
    history.record(
        shop.session.connection(),
        "handshake",
        f"cart v{cart.version} frozen at {money(view['total'], cart.currency)}"
        + (f"; reserved {_units(held)}" if held else ""),
        cart_id=cart_id,
        order_id=order.id,
        payment_intent_id=cart.payment_intent_id,
    )
    view = cart_view(cart)
    shop.session.commit()
    shop.publish.cart({**view, "order_id": order_id})  # other tabs link to the order being paid
    try:
        synced = sync_now(cart_id)
        fresh, released = _refresh(shop, cart_id, order_id, synced)
    except DBAPIError as err:
        _release_broken_handshake(shop, cart_id, order_id)
        raise StoreUnavailable("The store could not finish this; please try again.") from err
    if released:
        raise PaymentUnavailable("The payment provider is not answering; please try again.")
    if not synced or fresh["status"] != "frozen" or fresh["version"] != view["version"]:
        raise CheckoutInProgress("This cart's payment already went through.", extra={"cart": fresh})
    log.info("cart %s v%s frozen for order %s", cart_id, view["version"], order_id)
    return {"order_id": order_id, "amount": view["total"], "cart_version": view["version"]}


def _units(held):
    return ", ".join(f"{units} of product {pid}" for pid, units in sorted(held.items()))


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
        unfreeze(cart, [order])
    view, push = cart_view(cart), order_push(order)
    shop.session.commit()
    if release:
        shop.publish.cart(view)
        shop.publish.order(cart_id, push)
        shop.schedule_sync(cart_id)
    return view, release


def _release_broken_handshake(shop, cart_id, order_id):
    """The database failed after the freeze committed: undo it, as a failed sync would (the page was never
    told to pay). If the database is still failing, reconciliation releases the freeze later."""
    try:
        shop.session.rollback()
        _refresh(shop, cart_id, order_id, synced=False)
    except DBAPIError as err:
        shop.session.rollback()
        log.warning(
            "cart %s: handshake for order %s failed and could not be undone (%s); reconcile will",
            cart_id,
            order_id,
            err,
        )


def release_expired_freeze(shop, cart_id):
    """Release a freeze past its time limit by cancelling its PaymentIntent, unless Stripe says the money moves
    (or refuses the cancel because it started to); True if released."""
    try:
        status = release_freeze(
            shop,
            cart_id,
            domain.may_release_freeze,
            due=lambda frozen_at: domain.freeze_expired(frozen_at, shop.now(), shop.freeze_seconds),
        )
    except PaymentError as err:
        shop.session.rollback()
        log.warning("cart %s: expired freeze not released; Stripe could not be asked (%s)", cart_id, err)
        return False
    return status in RELEASED
