"""Checkout use cases: start, the confirm handshake, and turning a PaymentIntent's state into orders."""

import logging
from dataclasses import replace

from sqlalchemy.exc import DBAPIError

from .. import shopper_words
from ..cart import repository
from ..cart.domain import money
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
from ..payments.gateway import GatewayUnavailable, IdempotencyConflict, PaymentError, PaymentRefused
from . import attempts, domain, holds, records
from .cancel import RELEASED, release_freeze
from .fulfilment import fail_order, order_push, unfreeze

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
    with shop.uow() as uow:
        order = records.order(uow.conn, order_id)
        uow.commit()
    if order is None or order.cart_id != cart_id:
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    # The shopper reads why a payment failed in the shop's words, never the gateway's (the admin keeps those).
    return {**order_view(order), "failure_reason": shopper_words.failure_reason(order.failure_reason)}


def checkout_answer(state, client_secret):
    return {
        "payment_intent_id": state.payment_intent_id,
        "client_secret": client_secret,
        "amount": state.pi_amount,
        "currency": state.currency,
        "cart_version": state.version,
    }


def start_checkout(shop, cart_id):
    """The cart's live PaymentIntent, created for the current version if it has none.

    The client secret is never stored (Stripe: it must not be): a new PaymentIntent's comes with Stripe's
    answer, and a cart that has one already asks Stripe for it, once, after its unit of work."""
    for _ in range(3):
        with shop.uow() as uow:
            state = records.locked_state(uow.conn, cart_id)
            if state.total <= 0:
                raise InvalidInput("Your cart is empty.", code="cart_empty")
            if _live_payment_intent(state):
                uow.after_commit(lambda: shop.schedule_sync(cart_id))
                uow.commit()
                return checkout_answer(state, _client_secret(shop, state.payment_intent_id))
            # The attempt is recorded before Stripe is asked, and committed: no transaction (on SQLite, the
            # write lock) is held across the Stripe call.
            attempt = attempts.for_checkout(uow.conn, state)
            uow.commit()
        try:
            pi = shop.gateway.create_payment_intent(
                cart_id=cart_id,
                version=attempt.cart_version,
                amount=attempt.amount,
                currency=attempt.currency,
                attempt=attempt.token,
            )
        except IdempotencyConflict:
            _abandon(shop, attempt.token)
            log.warning("cart %s: Stripe refused attempt %s again; starting a new one", cart_id, attempt.token)
            continue
        except GatewayUnavailable as err:  # its answer may have been lost: the next checkout asks again
            raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
        except PaymentError as err:  # refused: nothing was created, so the next checkout starts a new attempt
            _abandon(shop, attempt.token)
            log.warning("cart %s: Stripe refused attempt %s (%s)", cart_id, attempt.token, err)
            if isinstance(err, PaymentRefused):
                raise InvalidInput(
                    f"The payment provider can't take this cart as it is: {err}", code="payment_refused"
                ) from err
            raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
        state = _attach(shop, cart_id, attempt.token, pi)
        if state.payment_intent_id == pi.id:  # the cart holds what was just created: its secret is at hand
            shop.schedule_sync(cart_id)
            return checkout_answer(state, pi.client_secret)
    raise PaymentUnavailable("Checkout could not start; please try again.")


def _client_secret(shop, pi_id):
    """The PaymentIntent's client secret, as Stripe holds it now (never from our database)."""
    try:
        return shop.gateway.retrieve(pi_id).client_secret
    except PaymentError as err:
        log.warning("PaymentIntent %s: client secret not read (%s)", pi_id, err)
        raise PaymentUnavailable("The payment provider is not answering; please try again.") from err


def _abandon(shop, token):
    with shop.uow() as uow:
        attempts.abandon(uow.conn, token)
        uow.commit()


def _attach(shop, cart_id, token, pi):
    """The cart takes the PaymentIntent its attempt made (its state afterwards); it lags behind the cart if
    the cart changed since, and the sync scheduled next brings it up to date."""
    with shop.uow() as uow:
        state = records.locked_state(uow.conn, cart_id)
        if attempts.record_created(uow.conn, token, pi.id) and not _live_payment_intent(state):
            records.attach_payment_intent(uow.conn, cart_id, pi)
            state = replace(state, payment_intent_id=pi.id, pi_amount=pi.amount, pi_status=pi.status)
            log.info("cart %s v%s: PaymentIntent %s created for %s", cart_id, pi.cart_ref[1], pi.id, pi.amount)
        view = state.view()
        uow.after_commit(lambda: shop.publish.cart(view))
        uow.commit()
    return state


def _live_payment_intent(state):
    return bool(state.payment_intent_id) and state.pi_status not in ("succeeded", "canceled")


class _CatalogMoved(Exception):
    """The handshake waited on a product lock for a price change or withdrawal: its freeze is rolled back."""


def confirm(shop, cart_id, shown_version, sync_now, client=None):
    """The handshake: freeze the cart at the version the page shows and record the order awaiting payment.

    `client` (holds.Client): who asks, so that no client holds more than `shop.hold_limits` allow."""
    try:
        with shop.uow() as uow:
            view, order_id = _freeze(uow.conn, shop, cart_id, shown_version, client)
            uow.after_commit(lambda: shop.publish.cart({**view, "order_id": order_id}))  # other tabs link to it
            uow.commit()
    except _CatalogMoved:
        raise CartChanged(
            "A price in your cart just changed; please review the new amount before paying.",
            extra={"cart": pricing.follow_catalog(shop, cart_id)},
        ) from None
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


def _freeze(conn, shop, cart_id, shown_version, client):
    """Freeze the locked cart, record its order awaiting payment and reserve its stock: the frozen cart's
    view and the order's id (raises, writing nothing, when the cart can't be paid as shown or the client
    would hold more than its limits)."""
    state = records.locked_state(conn, cart_id)
    view = state.view()
    try:
        domain.check_handshake(
            shown_version=shown_version,
            version=state.version,
            status=state.status,
            total=state.total,
            has_payment_intent=bool(state.payment_intent_id),
        )
    except Conflict as err:
        err.extra = {"cart": view}
        raise
    stamp = client.stamp() if client is not None else {}
    records.set_cart(conn, cart_id, status="frozen", frozen_at=shop.now(), **stamp)
    order_id = _awaiting_order(conn, state)
    # The products' locks may have waited for a merchant's price change or withdrawal: never freeze old prices.
    if pricing.catalog_moved(conn, view["items"]):
        raise _CatalogMoved
    try:
        held = stock.reserve(conn, order_id, view["items"])  # in the transaction that freezes
        holds.check(conn, cart_id, client, shop.hold_limits)  # counts this freeze: stamped and reserved
    except (OutOfStock, holds.HoldLimitReached) as err:
        err.extra = {**err.extra, "cart": view}
        raise
    history.record(
        conn,
        "handshake",
        f"cart v{state.version} frozen at {money(state.total, state.currency)}"
        + (f"; reserved {_units(held)}" if held else ""),
        cart_id=cart_id,
        order_id=order_id,
        payment_intent_id=state.payment_intent_id,
    )
    return replace(state, status="frozen").view(), order_id


def _units(held):
    return ", ".join(f"{units} of product {pid}" for pid, units in sorted(held.items()))


def _awaiting_order(conn, state):
    """The id of the order of the cart's version under its PaymentIntent, awaiting payment (a payment that
    failed is tried again in the same order)."""
    order = records.order_of_version(conn, state.payment_intent_id, state.version)
    if order is not None:
        return records.update_order(conn, order.id, status="awaiting_payment").id
    return records.add_order(
        conn,
        cart_id=state.id,
        payment_intent_id=state.payment_intent_id,
        cart_version=state.version,
        status="awaiting_payment",
        amount=state.total,
        currency=state.currency,
        items=state.view()["items"],
    ).id


def _refresh(shop, cart_id, order_id, synced):
    """The cart after the handshake's sync, and whether a failed sync released it (no payment went through)."""
    with shop.uow() as uow:
        if synced:  # nothing to release: the cart as it now is
            state = repository.read(uow.conn, cart_id)[0]
            uow.commit()
            return state.view(), False
        state = records.locked_state(uow.conn, cart_id)
        order = records.order(uow.conn, order_id)
        release = (
            state.status == "frozen"
            and state.pi_status in domain.REUSABLE_PI_STATUSES
            and order.status == "awaiting_payment"
        )
        if release:
            order = fail_order(uow.conn, order)
            state = unfreeze(uow.conn, state)
            view, push = state.view(), order_push(order)
            uow.after_commit(lambda: _publish_release(shop, cart_id, view, push))
        uow.commit()
    return state.view(), release


def _publish_release(shop, cart_id, view, push):
    shop.publish.cart(view)
    shop.publish.order(cart_id, push)
    shop.schedule_sync(cart_id)


def _release_broken_handshake(shop, cart_id, order_id):
    """The database failed after the freeze committed: undo it, as a failed sync would (the page was never
    told to pay). If the database is still failing, reconciliation releases the freeze later."""
    try:
        _refresh(shop, cart_id, order_id, synced=False)
    except DBAPIError as err:
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
        log.warning("cart %s: expired freeze not released; Stripe could not be asked (%s)", cart_id, err)
        return False
    return status in RELEASED
