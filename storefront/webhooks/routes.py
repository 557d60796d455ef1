"""POST /webhooks/stripe: verify, record the event id, dispatch, acknowledge."""

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from ..checkout.fulfilment import apply_payment_intent, record_refunds
from ..errors import error_body
from ..models import WebhookEvent, utcnow
from ..payments.gateway import GatewayUnavailable, InvalidSignature, PaymentIntentMissing
from ..wiring import current_shop

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Stripe events carry whole objects and can outgrow the 16 KiB the shopper-facing routes accept.
WEBHOOK_MAX_BYTES = 512 * 1024


@bp.before_request
def _allow_larger_events():
    request.max_content_length = WEBHOOK_MAX_BYTES


def on_payment_intent(shop, event):
    """Whatever the event says, act on the PaymentIntent's current state."""
    try:
        pi = shop.gateway.retrieve(event["data"]["object"]["id"])
    except PaymentIntentMissing:
        log.warning("event %s names an unknown PaymentIntent; ignored", event["id"])
        return
    observed_at = datetime.fromtimestamp(event["created"], UTC).replace(tzinfo=None)
    apply_payment_intent(shop, pi, observed_at=observed_at)


def is_stripe_id(value):
    """Stripe ids are short printable ASCII; nothing else can name an event or object of ours."""
    return isinstance(value, str) and 0 < len(value) <= 255 and value.isascii() and value.isprintable()


def on_charge_refunded(shop, event):
    charge = event["data"]["object"]
    if is_stripe_id(charge.get("payment_intent")):
        record_refunds(shop, charge["payment_intent"], int(charge.get("amount_refunded") or 0))


HANDLERS = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "payment_intent.requires_action": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "charge.refunded": on_charge_refunded,
}


@bp.post("/webhooks/stripe")
def stripe_webhook():
    shop = current_shop()
    try:
        event = shop.gateway.verify_event(
            request.get_data(), request.headers.get("Stripe-Signature"), current_app.config["STRIPE_WEBHOOK_SECRET"]
        )
    except InvalidSignature as err:
        log.warning("webhook refused: %s", err)
        return jsonify(error_body("invalid_signature", "The Stripe-Signature header does not verify.")), 400
    event_id, event_type = event.get("id"), event.get("type")
    if not is_stripe_id(event_id) or not is_stripe_id(event_type):
        return jsonify(error_body("invalid_event", "The event has no id or type.")), 400
    if not _record(shop.session, event_id, event_type):
        return jsonify({"received": True, "duplicate": True})
    handler = HANDLERS.get(event_type)
    try:
        if handler:
            handler(shop, event)
    except GatewayUnavailable as err:
        shop.session.rollback()
        log.warning("event %s: Stripe unavailable (%s); asking for redelivery", event_id, err)
        return jsonify(error_body("payment_unavailable", "Stripe is unavailable; deliver again later.")), 503
    except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as err:
        shop.session.rollback()
        log.warning("event %s of type %s is malformed (%s); ignored", event_id, event_type, err)
    _mark_processed(shop.session, event_id)
    return jsonify({"received": True})


def _record(session, event_id, event_type):
    """Insert the event id; False when an earlier delivery already processed it."""
    session.add(WebhookEvent(id=event_id, type=event_type[:64]))
    try:
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
    seen = session.get(WebhookEvent, event_id)
    processed = seen is not None and seen.processed_at is not None
    session.commit()
    return not processed


def _mark_processed(session, event_id):
    seen = session.get(WebhookEvent, event_id)
    if seen is not None and seen.processed_at is None:
        seen.processed_at = utcnow()
    session.commit()
