"""Ways out of a freeze: the shopper's cancel, and reconciliation's release of a freeze that holds no payment.

Every way out cancels the PaymentIntent at Stripe first and applies what Stripe answers: a shopper who
confirms between our look and our cancel makes Stripe refuse the cancel, and the cart stays frozen while
the money moves (what the shopper saw is what they pay).
"""

import logging

from ..cart.service import read_cart
from ..errors import PaymentInFlight, PaymentUnavailable
from ..payments.gateway import AmountLocked, PaymentError, PaymentIntentMissing
from . import domain, records
from .fulfilment import apply_payment_intent, forget_missing_payment

log = logging.getLogger(__name__)

MISSING = "missing"  # Stripe does not know the PaymentIntent: no money can move on it
RELEASED = frozenset({"canceled", MISSING})


def cancel_checkout(shop, cart_id):
    """Cancel the frozen cart's PaymentIntent at Stripe unless money is moving on it, and reopen the cart.

    Stripe decides: a PaymentIntent that is processing, authorised or paid is not cancelled (409
    `payment_in_flight`), and a cancel that loses the race to a payment is refused by Stripe the same way.
    """
    if cart_id is None:  # no session cart: nothing is frozen, and nothing is written
        return read_cart(shop, cart_id)
    try:
        status = release_freeze(shop, cart_id, domain.may_release_freeze)
    except PaymentError as err:
        raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
    cart = read_cart(shop, cart_id)
    if status is not None and not domain.may_release_freeze(status):
        raise PaymentInFlight("This payment is already going through; it can't be cancelled.", extra={"cart": cart})
    if status is not None:
        log.info("cart %s: checkout cancelled by the shopper (its PaymentIntent is %s)", cart_id, status)
    return cart


def release_unpaid_freeze(shop, cart_id, frozen_before):
    """Release a freeze from before `frozen_before` whose PaymentIntent holds no payment (a handshake that broke
    half-way); True if released."""
    try:
        status = release_freeze(
            shop, cart_id, domain.UNPAID_PI_STATUSES.__contains__, due=lambda frozen_at: frozen_at <= frozen_before
        )
    except PaymentError as err:
        log.warning("cart %s: unpaid freeze not released; Stripe could not be asked (%s)", cart_id, err)
        return False
    return status in RELEASED


def release_freeze(shop, cart_id, releasable, due=None):
    """Cancel the frozen cart's PaymentIntent at Stripe if Stripe says its status is `releasable`, then apply
    what Stripe answers (a cancelled PaymentIntent opens the cart and fails its awaiting order).

    Only a freeze `due(frozen_at)` is looked at. Returns the PaymentIntent's status as Stripe last said it,
    `missing` when Stripe does not know it, or None when the cart is not frozen (nothing asked);
    PaymentError when Stripe could not be asked.
    """
    with shop.uow() as uow:
        cart = records.checkout_of(uow.conn, cart_id)
        uow.commit()
    frozen = cart is not None and cart.status == "frozen" and cart.payment_intent_id
    pi_id = cart.payment_intent_id if frozen and (due is None or due(cart.frozen_at)) else None
    if not pi_id:
        return None
    try:
        pi = shop.gateway.retrieve(pi_id)
        if releasable(pi.status) and pi.status != "canceled":
            pi = shop.gateway.cancel(pi_id)
    except AmountLocked as err:  # the shopper confirmed meanwhile: Stripe refused the cancel
        pi = err.payment_intent
    except PaymentIntentMissing:  # e.g. a sandbox restarted beside a database that was kept
        forget_missing_payment(shop, cart_id, pi_id)
        return MISSING
    apply_payment_intent(shop, pi)
    if pi.status == "canceled":
        log.info("cart %s: freeze released (PaymentIntent %s cancelled, nothing was paid)", cart_id, pi_id)
    return pi.status
