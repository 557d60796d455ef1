"""What the inbox does with each type of event: read the object's current state from Stripe, apply it."""

import logging

from ..checkout.fulfilment import apply_payment_intent, record_refunds
from ..merchant import alerts
from ..payments.gateway import PaymentIntentMissing

log = logging.getLogger(__name__)


def is_stripe_id(value):
    """Stripe ids are short printable ASCII; nothing else can name an event or object of ours."""
    return isinstance(value, str) and 0 < len(value) <= 255 and value.isascii() and value.isprintable()


def on_payment_intent(shop, event):
    """Whatever the event says, act on the PaymentIntent's current state."""
    try:
        pi = shop.gateway.retrieve(event.object_id)
    except PaymentIntentMissing:
        log.warning("event %s names an unknown PaymentIntent; ignored", event.id)
        return
    apply_payment_intent(shop, pi, observed_at=event.created_at)


def on_charge_refunded(shop, event):
    """Whatever the event says was refunded, mirror the refunds Stripe holds for the charge when asked."""
    charge = shop.gateway.retrieve_charge(event.object_id)
    if charge is None or not is_stripe_id(charge.payment_intent):
        log.warning("event %s names a charge Stripe does not know; ignored", event.id)
        return
    record_refunds(shop, charge.payment_intent, charge.amount_refunded)


def on_dispute(shop, event):
    """A dispute opened, changed or closed: put it, as Stripe says it is now, on the payment's orders."""
    dispute = shop.gateway.retrieve_dispute(event.object_id)
    if dispute is None or not is_stripe_id(dispute.payment_intent):
        log.warning("event %s names a dispute Stripe does not know, or of no PaymentIntent; ignored", event.id)
        return
    _on_settled_orders(shop, event, dispute.payment_intent, lambda: alerts.record_dispute(shop, dispute))


def on_refund(shop, event):
    """A refund changed: when Stripe says it failed, the merchant must know (the shopper was not refunded)."""
    refund = shop.gateway.retrieve_refund(event.object_id)
    if refund is None or not is_stripe_id(refund.payment_intent):
        log.warning("event %s names a refund Stripe does not know, or of no PaymentIntent; ignored", event.id)
        return
    if refund.status == "failed":
        _on_settled_orders(shop, event, refund.payment_intent, lambda: alerts.record_refund_failure(shop, refund))


def _on_settled_orders(shop, event, pi_id, record):
    """Record on the payment's settled orders; when it has none yet (this event overtook the payment's own),
    apply the PaymentIntent's current state first, then record."""
    if record():
        return
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentIntentMissing:
        pi = None
    if pi is None:
        log.warning("event %s is about PaymentIntent %s, which Stripe does not know; ignored", event.id, pi_id)
        return
    apply_payment_intent(shop, pi, observed_at=event.created_at)
    if not record():
        log.warning("event %s: PaymentIntent %s has no settled order here; ignored", event.id, pi_id)
