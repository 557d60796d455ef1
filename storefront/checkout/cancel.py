"""Ways out of a freeze: the shopper's cancel, and reconciliation's release of a freeze that holds no payment."""

import logging

from ..cart.service import cart_view, lock_cart, read_cart
from ..errors import PaymentInFlight, PaymentUnavailable
from ..models import Cart
from ..payments.gateway import AmountLocked, PaymentError
from . import domain
from .fulfilment import apply_payment_intent, order_push, orders_of, unfreeze

log = logging.getLogger(__name__)


def cancel_checkout(shop, cart_id):
    """Cancel the frozen cart's PaymentIntent at Stripe unless money is moving on it, and reopen the cart.

    Stripe decides: a PaymentIntent that is processing, authorised or paid is not cancelled (409
    `payment_in_flight`), and a cancel that loses the race to a payment is refused by Stripe the same way.
    """
    cart = read_cart(shop, cart_id)
    if cart["status"] != "frozen" or not cart["payment"]:
        return cart
    pi_id = cart["payment"]["payment_intent_id"]
    try:
        pi = shop.gateway.retrieve(pi_id)
        if domain.may_release_freeze(pi.status) and pi.status != "canceled":
            pi = shop.gateway.cancel(pi_id)
    except AmountLocked as err:
        pi = err.payment_intent
    except PaymentError as err:
        raise PaymentUnavailable("The payment provider is not answering; please try again.") from err
    apply_payment_intent(shop, pi)
    cart = read_cart(shop, cart_id)
    if not domain.may_release_freeze(pi.status):
        raise PaymentInFlight("This payment is already going through; it can't be cancelled.", extra={"cart": cart})
    log.info("cart %s: checkout cancelled by the shopper (PaymentIntent %s is %s)", cart_id, pi_id, pi.status)
    return cart


def release_unpaid_freeze(shop, cart_id):
    """Release a freeze whose PaymentIntent holds no payment (a handshake that broke half-way); True if released."""
    cart = shop.session.get(Cart, cart_id, populate_existing=True)
    pi_id = cart.payment_intent_id if cart is not None and cart.status == "frozen" else None
    shop.session.commit()
    if not pi_id:
        return False
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentError as err:
        log.warning("cart %s: PaymentIntent %s not checked (%s)", cart_id, pi_id, err)
        return False
    apply_payment_intent(shop, pi)
    if pi.status not in domain.UNPAID_PI_STATUSES:
        return False
    cart = lock_cart(shop.session, cart_id)
    if cart.status != "frozen" or cart.payment_intent_id != pi_id:
        shop.session.commit()
        return cart.status == "open"
    awaiting = orders_of(shop.session, pi_id, status="awaiting_payment")
    unfreeze(cart, awaiting)
    view = cart_view(cart)
    shop.session.commit()
    log.info("cart %s: freeze released (PaymentIntent %s is %s, nothing was paid)", cart_id, pi_id, pi.status)
    shop.publish.cart(view)
    for order in awaiting:
        shop.publish.order(cart_id, order_push(order))
    return True
