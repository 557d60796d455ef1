"""Reconciliation's look at webhook events: those Stripe has as undelivered, and those this store recorded
that no worker processed in time. Both go through the webhook inbox's own handlers.

`isolated` runs one item of a pass (every step of reconcile.py uses it): one that fails is counted and
logged with its ids, and the pass goes on.
"""

import logging
import time
from datetime import timedelta

from ..webhooks import inbox
from .gateway import GatewayUnavailable, PaymentError

# The pass's own logger: every line of a reconcile pass reads (and is filtered) as one.
log = logging.getLogger("storefront.payments.reconcile")

# Recorded events a pass takes over at most (each costs a paced Stripe read); the rest wait for the next.
EVENTS_PER_PASS = 20


class EventFailed(Exception):
    """An inbox event's handler failed (logged with its traceback by the inbox, retried there)."""


def isolated(summary, what, apply, *args):
    """Run one item of a pass; False when Stripe is unavailable (asking about the rest now would only spend
    the budget shoppers need: the step's rest waits for the next pass). Any other failure is counted and
    logged with `what` (the item's ids), and the pass goes on."""
    try:
        apply(*args)
    except GatewayUnavailable as err:
        summary["errors"] += 1
        log.warning("reconcile: Stripe unavailable at %s (%s); the rest waits for the next pass", what, err)
        return False
    except PaymentError as err:
        summary["errors"] += 1
        log.warning("reconcile: %s not settled: %s", what, err)
    except EventFailed as err:  # its traceback is in the inbox's log line
        summary["failures"] += 1
        log.error("reconcile: %s; the pass goes on", err)
    except Exception:  # a bug or the database: this item waits for the next pass, the others go on
        summary["failures"] += 1
        log.exception("reconcile: %s failed; the pass goes on", what)
    return True


def missed_events(shop, lookback_seconds, undelivered_only, summary):
    """Events of the types the webhook acts on that this store never processed: webhooks it missed.

    Stripe's Events API is the record of what the webhooks should have said; with `undelivered_only`
    it returns only events some endpoint has not acknowledged, so a healthy store reads one short page.
    """
    since, after = int(time.time() - lookback_seconds), None
    while True:
        try:
            events, more = shop.gateway.list_events(
                types=sorted(inbox.HANDLERS),
                created_since=since,
                undelivered_only=undelivered_only,
                starting_after=after,
            )
        except PaymentError as err:
            summary["errors"] += 1
            log.warning("reconcile: listing Stripe's events failed: %s", err)
            return
        summary["events_checked"] += len(events)
        with shop.uow() as uow:
            done = inbox.processed_among(uow.conn, [event["id"] for event in events])
        for event in events:
            if event["id"] in done:
                continue
            what = f"event {event['id']}"
            if not isolated(summary, what, _apply_missed_event, shop, event, summary):
                return
        if not more or not events:
            return
        after = events[-1]["id"]


def _apply_missed_event(shop, event, summary):
    """Record a missed event in the webhook inbox and process it there now, whatever its backoff."""
    row = inbox.receipt(event, shop.now())
    if row is None:
        return
    with shop.uow(statements=True) as uow:
        if inbox.record(uow.conn, row):
            uow.commit()
    claimed = inbox.claim_event(shop, row["id"])
    if claimed is None:
        return  # processed meanwhile (or being processed), or recorded as needing nothing
    _handle(shop, claimed, summary, "payments_applied")
    log.info("reconcile: applied event %s (%s), whose webhook this store never processed", event["id"], event["type"])


def overdue_events(shop, older_than_seconds, summary):
    """Events this store recorded that a worker should have processed by now: none running (WORKER=off and
    no worker process), or one that stopped mid-event (its claim older than the delay is taken over: a
    second application of an event changes nothing)."""
    now = shop.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    # A claim taken before the cutoff (claimed_until is when it was taken, plus CLAIM_SECONDS) is stale: at
    # the default delay it has lapsed long ago; `--older-than 0` takes over every claim, running or not.
    free_at = cutoff + timedelta(seconds=inbox.CLAIM_SECONDS)
    with shop.uow() as uow:
        overdue = inbox.overdue(uow.conn, now, cutoff, free_at, EVENTS_PER_PASS)
    for event_id in overdue:
        claimed = inbox.claim_event(shop, event_id, free_at)
        if claimed is None:
            continue  # processed meanwhile, or claimed since the cutoff
        if not isolated(summary, f"event {event_id}", _handle, shop, claimed, summary, "events_overdue"):
            return


def _handle(shop, claimed, summary, counter):
    """Process a claimed inbox event; a failure is raised as the pass counts it (the inbox retries it)."""
    outcome = inbox.handle(shop, claimed)
    if outcome == "unavailable":
        raise GatewayUnavailable(f"Stripe unavailable for event {claimed.id}")
    if outcome == "refused":
        raise PaymentError(f"Stripe refused what event {claimed.id} needs")
    if outcome == "failed":
        raise EventFailed(f"event {claimed.id} ({claimed.type} of {claimed.object_id}): its handler failed")
    summary[counter] += 1
