"""The webhook inbox: an event is recorded as received, acknowledged, and processed later by the worker.

The webhook only records what the handler needs (the object the event names, when Stripe created it);
`process_due` claims due events one at a time, oldest first, asks Stripe about their object outside any
unit of work, applies the answer and marks them processed. Any failure (Stripe unavailable or refusing,
the database, a bug in a handler) leaves the event due again after a backoff with its error recorded:
this retry replaces Stripe's redelivery, which an acknowledged event never gets. Past ATTENTION_ATTEMPTS
the event shows in the merchant's admin, and is still retried. Reconciliation records the events the
webhook missed here too, and takes over the events a worker should have processed by now.
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..models import WebhookEvent
from ..payments.gateway import GatewayUnavailable, PaymentError
from .handlers import is_stripe_id, on_charge_refunded, on_dispute, on_payment_intent, on_refund

log = logging.getLogger(__name__)

# How long a worker holds the event it processes: one that dies mid-event leaves it claimed this long, then
# another takes it. Longer than a handler usually takes; one that runs past it (Stripe slow through all the
# SDK's retries) may meet a second try of the same event, which is harmless: handlers apply Stripe's
# current state under the cart's row lock, so a second application changes nothing.
CLAIM_SECONDS = 30
# A failed event is tried again after this, doubling per attempt up to RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 5
RETRY_MAX_SECONDS = 3600
# After this many tries an unprocessed event (and its payment) is shown to the merchant as needing
# attention, with its last error; it is still retried, at most RETRY_MAX_SECONDS apart.
ATTENTION_ATTEMPTS = 5
# The longest error text kept on the event's row (the column's size).
ERROR_LENGTH = 500

# What a malformed event's shape raises at receipt (only there: a handler's failure is never a shape).
MALFORMED = (AttributeError, KeyError, OverflowError, OSError, TypeError, ValueError)


HANDLERS = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "payment_intent.requires_action": on_payment_intent,
    "payment_intent.amount_capturable_updated": on_payment_intent,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute,
    "charge.dispute.updated": on_dispute,
    "charge.dispute.closed": on_dispute,
    # A card refund that fails after it succeeded: Stripe sends both (refund.failed since 2024).
    "charge.refund.updated": on_refund,
    "refund.failed": on_refund,
}


def object_kind(event_type):
    """What kind of Stripe object an event of this type names: payment_intent, charge, dispute or refund."""
    if event_type.startswith("charge.dispute."):
        return "dispute"
    if event_type == "charge.refund.updated" or event_type.startswith("refund."):
        return "refund"
    return event_type.split(".", 1)[0]


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
# Free: never claimed, or its claim ran out by `free_at` (now: lapsed; reconciliation passes a later time
# to take over a claim taken before its delay).
_FREE = or_(_events.c.claimed_until.is_(None), _events.c.claimed_until <= bindparam("free_at"))
_WAITING = (_events.c.processed_at.is_(None), _events.c.due_at <= bindparam("now"))


def _claim(ids):
    return (
        update(_events)
        .where(_events.c.id.in_(ids), _events.c.processed_at.is_(None), _FREE)
        .values(claimed_until=bindparam("until"), attempts=_events.c.attempts + 1)
        .returning(*_RETURNED)
    )


# Events are claimed one at a time, each just before it is handled: a worker that cannot go on (the
# database stopped under it, so even recording the failure fails) holds only the event in flight, and
# there is nothing to release afterwards, which would need the database that just failed. One short
# UPDATE per event, next to the handler's own units of work and its Stripe read.
# Several workers claim at once: SKIP LOCKED hands each a different row (SQLite, one writer, ignores it).
# MATERIALIZED: PostgreSQL would otherwise scan the subquery again per row it updates, locking more rows.
_NEXT = (
    select(_events.c.id)
    .where(*_WAITING, _FREE)
    .order_by(_events.c.due_at)
    .limit(1)
    .with_for_update(skip_locked=True)
    .cte("next_due")
    .prefix_with("MATERIALIZED")
)
_CLAIM_NEXT = _claim(select(_NEXT.c.id))
_CLAIM_ONE = _claim([bindparam("event_id")])


def _take(shop, statement, free_at=None, **params):
    """The one event a claim statement took (committed at once), or None."""
    now = shop.now()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    with shop.uow(statements=True) as uow:
        rows = uow.conn.execute(statement, {"now": now, "until": until, "free_at": free_at or now, **params})
        claimed = rows.all()
        uow.commit()
    return claimed[0] if claimed else None


def process_due(shop, *, limit):
    """Process up to `limit` recorded events that are due, oldest first, each claimed as its turn comes;
    how many were handled. An exception (the database gone) ends the pass with only its event claimed."""
    handled = 0
    while handled < limit and (event := _take(shop, _CLAIM_NEXT)) is not None:
        handle(shop, event)
        handled += 1
    return handled


def claim_event(shop, event_id, free_at=None):
    """Claim one recorded event whatever its backoff; None when it is processed or another process holds
    it (a claim that runs out by `free_at`, default now, counts as let go)."""
    return _take(shop, _CLAIM_ONE, free_at, event_id=event_id)


_OVERDUE = (
    select(_events.c.id)
    .where(*_WAITING, _events.c.received_at <= bindparam("received_before"), _FREE)
    .order_by(_events.c.due_at)
    .limit(bindparam("limit"))
)


def overdue(conn, now, received_before, free_at, limit):
    """Events recorded before `received_before`, due and still unprocessed, whose claim (if any) was taken
    before `free_at`: what a worker should have done by now (reconciliation's net under the worker)."""
    params = {"now": now, "received_before": received_before, "free_at": free_at, "limit": limit}
    return conn.execute(_OVERDUE, params).scalars().all()


def handle(shop, event):
    """Run a claimed event's handler and settle it: `processed`, or `unavailable`, `refused` or `failed`,
    each due again after a backoff with its error on the row. Nothing that goes wrong in a handler drops the
    event: shapes were checked at receipt, so a failure here is a fault or a bug, and a payment may hang on it."""
    try:
        HANDLERS[event.type](shop, event)
    except GatewayUnavailable as err:
        log.warning("event %s: Stripe unavailable (%s); tried again later", event.id, err)
        return _retry_later(shop, event, "unavailable", err)
    except PaymentError as err:  # refused (a revoked key, a permission): not done, so tried again later
        log.error("event %s: Stripe refused what it needs (%s); tried again later", event.id, err)
        return _retry_later(shop, event, "refused", err)
    except Exception as err:  # a bug, the database, a socket: the rest of the batch goes on
        log.exception("event %s (%s of %s): handler failed; tried again later", event.id, event.type, event.object_id)
        return _retry_later(shop, event, "failed", err)
    _settle(shop, event.id, processed_at=shop.now(), due_at=None)
    return "processed"


def describe(err):
    """An exception as the merchant and the log see it: its type and message, bounded."""
    return f"{type(err).__name__}: {err}"[:ERROR_LENGTH]


def _retry_later(shop, event, outcome, err):
    delay = min(RETRY_FIRST_SECONDS * 2 ** max(event.attempts - 1, 0), RETRY_MAX_SECONDS)
    error = describe(err)
    _settle(shop, event.id, due_at=shop.now() + timedelta(seconds=delay), last_error=error)
    if event.attempts == ATTENTION_ATTEMPTS:
        log.error(
            "event %s (%s) of payment %s failed %s times and needs attention: %s; still retried every %ss at most",
            event.id,
            event.type,
            event.object_id,
            event.attempts,
            error,
            RETRY_MAX_SECONDS,
        )
    return outcome


def _settle(shop, event_id, **values):
    with shop.uow(statements=True) as uow:
        uow.conn.execute(
            update(_events).where(_events.c.id == event_id).values(claimed_until=None, **values),
        )
        uow.commit()


_ATTENTION = (
    select(_events)
    .where(_events.c.processed_at.is_(None), _events.c.attempts >= ATTENTION_ATTEMPTS)
    .order_by(_events.c.received_at, _events.c.id)
)


def needs_attention(conn, limit=100):
    """Unprocessed events tried ATTENTION_ATTEMPTS times or more, oldest first: the merchant's to look at."""
    return conn.execute(_ATTENTION.limit(limit)).all()


_PROCESSED = select(_events.c.id).where(_events.c.id.in_(bindparam("ids", expanding=True)))


def processed_among(conn, ids):
    """The ids among `ids` this store has processed."""
    if not ids:
        return set()
    return set(conn.execute(_PROCESSED.where(_events.c.processed_at.is_not(None)), {"ids": ids}).scalars())
