"""POST /webhooks/stripe: verify, record the event in the inbox, acknowledge; the worker processes it."""

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from ..errors import error_body
from ..payments.gateway import InvalidSignature
from ..wiring import current_shop
from . import inbox

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Stripe events carry whole objects and can outgrow the 16 KiB the shopper-facing routes accept.
WEBHOOK_MAX_BYTES = 512 * 1024


@bp.before_request
def _allow_larger_events():
    request.max_content_length = WEBHOOK_MAX_BYTES


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
    row = inbox.receipt(event, shop.now())
    if row is None:
        return jsonify(error_body("invalid_event", "The event has no id or type.")), 400
    try:
        with shop.uow(statements=True) as uow:
            if not inbox.record(uow.conn, row):
                return jsonify({"received": True, "duplicate": True})
            if row["due_at"] is not None:
                uow.after_commit(_wake_worker)
            uow.commit()
    except SQLAlchemyError as err:
        # Not recorded: a 5xx makes Stripe deliver it again.
        log.warning("webhook: the database failed recording event %s (%s); asking for redelivery", row["id"], err)
        return jsonify(error_body("store_unavailable", "The store could not record the event; deliver again.")), 503
    return jsonify({"received": True})


def _wake_worker():
    current_app.extensions["worker"].wake()
