"""The webhook inbox: an event is recorded as received, acknowledged, and processed later by the worker.

The webhook only records what the handler needs (the object the event names, when Stripe created it);
`process_due` claims due events, oldest first, asks Stripe about their object outside any unit of
work, applies the answer and marks them processed. Stripe unavailable, or refusing what an event
needs, leaves the event due again after a backoff: this retry replaces Stripe's redelivery, which an
acknowledged event never gets. Reconciliation records the events the webhook missed here too and
processes them through the same handlers.
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..checkout.fulfilment import apply_payment_intent, record_refunds
from ..models import WebhookEvent
from ..payments.gateway import GatewayUnavailable, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)

# How long a worker holds the event it processes: one that dies mid-event leaves it claimed this long, then
# another takes it. Longer than a handler usually takes; one that runs past it (Stripe slow through all the
# SDK's retries) may meet a second try of the same event, which is harmless: handlers apply Stripe's
# current state under the cart's row lock, so a second application changes nothing.
CLAIM_SECONDS = 30
# A failed event is tried again after this, doubling per attempt up to RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 5
RETRY_MAX_SECONDS = 3600

MALFORMED = (AttributeError, KeyError, OverflowError, OSError, TypeError, ValueError)


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


HANDLERS = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "payment_intent.requires_action": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "charge.refunded": on_charge_refunded,
}


def receipt(event, now):
    """The inbox row for a verified event (a dict); None when it has no usable id or type.

    A type no handler acts on, or a malformed object, is recorded as processed already: nothing is due.
    """
    event_id, event_type = event.get("id"), event.get("type")
    if not is_stripe_id(event_id) or not is_stripe_id(event_type):
        return None
    row = {"id": event_id, "type": event_type[:64], "received_at": now, "processed_at": now}
    row.update(object_id=None, created_at=None, due_at=None, attempts=0)
    if event_type not in HANDLERS:
        return row
    try:
        object_id, created_at = _named_object(event)
    except MALFORMED as err:
        log.warning("event %s of type %s is malformed (%s); ignored", event_id, event_type, err)
        return row
    return {**row, "processed_at": None, "object_id": object_id, "created_at": created_at, "due_at": now}


def _named_object(event):
    object_id, created = event["data"]["object"]["id"], event["created"]
    if not is_stripe_id(object_id):
        raise ValueError("the event names no object")
    if type(created) is not int:
        raise TypeError("the event's creation time is not a Unix time")
    return object_id, datetime.fromtimestamp(created, UTC).replace(tzinfo=None)


_events = WebhookEvent.__table__
_INSERT = insert(_events)


def record(conn, row):
    """Insert a receipt; False when the event was recorded before (its statement failed: nothing written).

    A duplicate fails the insert, so it must be the unit of work's last statement.
    """
    try:
        conn.execute(_INSERT, row)
    except IntegrityError:
        return False
    return True


_RETURNED = (_events.c.id, _events.c.type, _events.c.object_id, _events.c.created_at, _events.c.attempts)
_UNCLAIMED = or_(_events.c.claimed_until.is_(None), _events.c.claimed_until <= bindparam("now"))


def _claim(ids):
    return (
        update(_events)
        .where(_events.c.id.in_(ids), _events.c.processed_at.is_(None), _UNCLAIMED)
        .values(claimed_until=bindparam("until"), attempts=_events.c.attempts + 1)
        .returning(*_RETURNED)
    )


# Several workers claim at once: SKIP LOCKED hands each different rows (SQLite, one writer, ignores it).
# MATERIALIZED: PostgreSQL would otherwise scan the subquery again per row it updates, each time locking
# the next due rows, and claim far more than `limit`.
_DUE = (
    select(_events.c.id)
    .where(_events.c.due_at <= bindparam("now"), _events.c.processed_at.is_(None), _UNCLAIMED)
    .order_by(_events.c.due_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .cte("due")
    .prefix_with("MATERIALIZED")
)
_CLAIM_DUE = _claim(select(_DUE.c.id))
_CLAIM_ONE = _claim([bindparam("event_id")])


def _claim_rows(shop, statement, **params):
    now = shop.now()
    with shop.uow(statements=True) as uow:
        rows = uow.conn.execute(statement, {"now": now, "until": now + timedelta(seconds=CLAIM_SECONDS), **params})
        claimed = rows.all()
        uow.commit()
    return claimed


def process_due(shop, *, limit):
    """Process up to `limit` recorded events that are due, oldest first; how many were handled."""
    claimed = _claim_rows(shop, _CLAIM_DUE, limit=limit)
    for event in claimed:
        handle(shop, event)
    return len(claimed)


def claim_event(shop, event_id):
    """Claim one recorded event whatever its backoff (reconciliation found it missed); None when it is
    processed or another process holds it."""
    claimed = _claim_rows(shop, _CLAIM_ONE, event_id=event_id)
    return claimed[0] if claimed else None


def handle(shop, event):
    """Run a claimed event's handler and settle it: `processed`, `malformed`, `unavailable`, `refused` or
    `failed` (the last three are due again after a backoff)."""
    try:
        HANDLERS[event.type](shop, event)
    except GatewayUnavailable as err:
        log.warning("event %s: Stripe unavailable (%s); tried again later", event.id, err)
        return _retry_later(shop, event, "unavailable")
    except PaymentError as err:  # refused (a revoked key, a permission): not done, so tried again later
        log.error("event %s: Stripe refused what it needs (%s); tried again later", event.id, err)
        return _retry_later(shop, event, "refused")
    except MALFORMED as err:
        log.error("event %s of type %s is malformed (%s); ignored", event.id, event.type, err)
        _settle(shop, event.id, processed_at=shop.now(), due_at=None)
        return "malformed"
    except Exception:  # the database, or a bug: the event is not lost, and the rest of the batch goes on
        log.exception("event %s: applying it failed; tried again later", event.id)
        return _retry_later(shop, event, "failed")
    _settle(shop, event.id, processed_at=shop.now(), due_at=None)
    return "processed"


def _retry_later(shop, event, outcome):
    delay = min(RETRY_FIRST_SECONDS * 2 ** max(event.attempts - 1, 0), RETRY_MAX_SECONDS)
    _settle(shop, event.id, due_at=shop.now() + timedelta(seconds=delay))
    return outcome


def _settle(shop, event_id, **values):
    with shop.uow(statements=True) as uow:
        uow.conn.execute(
            update(_events).where(_events.c.id == event_id).values(claimed_until=None, **values),
        )
        uow.commit()


_PROCESSED = select(_events.c.id).where(_events.c.id.in_(bindparam("ids", expanding=True)))


def processed_among(conn, ids):
    """The ids among `ids` this store has processed."""
    if not ids:
        return set()
    return set(conn.execute(_PROCESSED.where(_events.c.processed_at.is_not(None)), {"ids": ids}).scalars())
