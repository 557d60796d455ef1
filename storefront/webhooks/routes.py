"""POST /webhooks/stripe: verify, record the event id, dispatch, acknowledge."""

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ..checkout.fulfilment import apply_payment_intent, record_refunds
from ..database import statement_connection
from ..errors import error_body
from ..models import WebhookEvent, utcnow
from ..payments.gateway import GatewayUnavailable, InvalidSignature, PaymentError, PaymentIntentMissing
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
    """Whatever the event says was refunded, mirror the refunds Stripe holds for the charge when asked."""
    charge_id = event["data"]["object"]["id"]
    if not is_stripe_id(charge_id):
        raise ValueError("the event names no charge")
    charge = shop.gateway.retrieve_charge(charge_id)
    if charge is None or not is_stripe_id(charge.payment_intent):
        log.warning("event %s names a charge Stripe does not know; ignored", event["id"])
        return
    record_refunds(shop, charge.payment_intent, charge.amount_refunded)


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
        return _receive(shop)
    except SQLAlchemyError as err:
        # Not recorded (or not processed): a 5xx makes Stripe deliver it again, and a recorded but
        # unprocessed event is processed again then.
        _forget(shop.session)
        log.warning("webhook: the database failed (%s); asking for redelivery", err)
        return jsonify(error_body("store_unavailable", "The store could not record the event; deliver again.")), 503


def _forget(session):
    try:
        session.rollback()
    except SQLAlchemyError:
        session.invalidate()


def _receive(shop):
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
    handler = HANDLERS.get(event_type)
    if not _record(shop.session, event_id, event_type, acted_on=handler is not None):
        return jsonify({"received": True, "duplicate": True})
    if handler is None:
        return jsonify({"received": True})
    try:
        handler(shop, event)
    except GatewayUnavailable as err:
        shop.session.rollback()
        log.warning("event %s: Stripe unavailable (%s); asking for redelivery", event_id, err)
        return jsonify(error_body("payment_unavailable", "Stripe is unavailable; deliver again later.")), 503
    except PaymentError as err:  # refused (a revoked key, a permission): not done, so Stripe delivers again
        shop.session.rollback()
        log.error("event %s: Stripe refused what it needs (%s); asking for redelivery", event_id, err)
        return jsonify(error_body("payment_unavailable", "Stripe refused a request; deliver again later.")), 503
    except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as err:
        shop.session.rollback()
        log.warning("event %s of type %s is malformed (%s); ignored", event_id, event_type, err)
    _mark_processed(shop.session, event_id)
    return jsonify({"received": True})


_events = WebhookEvent.__table__
_INSERT_EVENT = {
    name: dialect_insert(_events).on_conflict_do_nothing().returning(_events.c.id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_PROCESSED_AT = select(_events.c.processed_at).where(_events.c.id == bindparam("event_id"))
_MARK_PROCESSED = (
    update(_events)
    .where(_events.c.id == bindparam("event_id"), _events.c.processed_at.is_(None))
    .values(processed_at=bindparam("now"))
)


def _record(session, event_id, event_type, *, acted_on):
    """Insert the event id, already processed when no handler acts on its type (one statement either way).

    False when an earlier delivery already processed it; an event recorded but never processed (its
    delivery failed half-way) is processed again.
    """
    conn = statement_connection(session)
    try:
        row = {
            "id": event_id,
            "type": event_type[:64],
            "received_at": utcnow(),
            "processed_at": None if acted_on else utcnow(),
        }
        if conn.execute(_INSERT_EVENT[conn.dialect.name], row).first() is not None:
            return True
        return conn.execute(_PROCESSED_AT, {"event_id": event_id}).scalar() is None
    finally:
        session.commit()


def _mark_processed(session, event_id):
    # The handler committed its work; its pushes may since have re-read models (a read-only transaction).
    session.rollback()
    try:
        statement_connection(session).execute(_MARK_PROCESSED, {"event_id": event_id, "now": utcnow()})
    finally:
        session.commit()
