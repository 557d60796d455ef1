"""Reconciliation: ask Stripe about what the webhooks should have told us, and apply it.

Each step reads its candidates in a unit of work of its own and asks Stripe about them after it ends;
what an answer changes is written by the use case applying it (fulfilment, the freeze releases), each
in its own unit of work. A webhook event found missed goes into the webhook inbox and is processed
there, as a delivered one is.
"""

import dataclasses
import logging
import time
from datetime import timedelta

from sqlalchemy import select

from ..checkout import attempts
from ..checkout.cancel import release_unpaid_freeze
from ..checkout.domain import IN_FLIGHT_PI_STATUSES, REUSABLE_PI_STATUSES
from ..checkout.fulfilment import apply_payment_intent, refund_excess
from ..checkout.service import release_expired_freeze
from ..models import Cart, Order
from ..ops.instruments import RECONCILE_ERRORS
from ..webhooks import inbox
from .gateway import AmountLocked, GatewayUnavailable, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)


# PaymentIntents the sweep asks Stripe about per pass (each costs up to four paced requests).
SWEEP_PER_PASS = 10

_carts, _orders = Cart.__table__, Order.__table__


def reconcile(shop, *, older_than_seconds, lookback_seconds=86400, undelivered_only=True, sweep_limit=SWEEP_PER_PASS):
    """Apply Stripe's view to stale orders, missed webhook events, expired freezes and owed refunds."""
    summary = {
        "orders_checked": 0,
        "events_checked": 0,
        "payments_applied": 0,
        "payments_swept": 0,
        "freezes_released": 0,
        "refunds_retried": 0,
        "syncs_requested": 0,
        "errors": 0,
    }
    _awaiting_orders(shop, older_than_seconds, summary)
    _missed_events(shop, lookback_seconds, undelivered_only, summary)
    _unsettled_payments(shop, older_than_seconds, sweep_limit, summary)
    _expired_freezes(shop, summary)
    _unpaid_freezes(shop, older_than_seconds, summary)
    _owed_refunds(shop, summary)
    _stale_payment_intents(shop, summary)
    log.info("reconcile: %s", summary)
    return summary


def _read(shop, statement):
    """The rows of one query, in a unit of work that ends before Stripe is asked about them."""
    with shop.uow() as uow:
        return uow.conn.execute(statement).all()


def _awaiting_orders(shop, older_than_seconds, summary):
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    stale = select(_orders.c.payment_intent_id).where(
        _orders.c.status == "awaiting_payment", _orders.c.updated_at <= cutoff
    )
    for (pi_id,) in _read(shop, stale.distinct()):
        summary["orders_checked"] += 1
        try:
            apply_payment_intent(shop, shop.gateway.retrieve(pi_id))
        except PaymentIntentMissing:
            log.warning("reconcile: PaymentIntent %s is unknown to Stripe", pi_id)
        except GatewayUnavailable as err:
            # Rate-limited or down: asking about the rest now would only spend the budget shoppers need.
            summary["errors"] += 1
            log.warning(
                "reconcile: Stripe unavailable at PaymentIntent %s (%s); the rest waits for the next pass", pi_id, err
            )
            return
        except PaymentError as err:
            summary["errors"] += 1
            log.warning("reconcile: PaymentIntent %s not checked: %s", pi_id, err)


def _missed_events(shop, lookback_seconds, undelivered_only, summary):
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
            if event["id"] not in done and not _apply_missed_event(shop, event, summary):
                return
        if not more or not events:
            return
        after = events[-1]["id"]


def _apply_missed_event(shop, event, summary):
    """Record a missed event in the webhook inbox and process it there now, whatever its backoff; False when
    Stripe is unavailable (the pass stops). One Stripe refuses to help with is counted and left due."""
    row = inbox.receipt(event, shop.now())
    if row is None:
        return True
    with shop.uow(statements=True) as uow:
        if inbox.record(uow.conn, row):
            uow.commit()
    claimed = inbox.claim_event(shop, row["id"])
    if claimed is None:
        return True  # processed meanwhile (or being processed), or recorded as needing nothing
    outcome = inbox.handle(shop, claimed)
    if outcome in ("unavailable", "refused"):
        summary["errors"] += 1
        log.warning("reconcile: event %s not applied (Stripe %s)", event["id"], outcome)
        return outcome == "refused"
    summary["payments_applied"] += 1
    log.info("reconcile: applied event %s (%s), whose webhook this store never processed", event["id"], event["type"])
    return True


def _unsettled_payments(shop, older_than_seconds, limit, summary):
    """Every succeeded PaymentIntent this store created ends in an order or a refund, even when its event was
    acknowledged but did nothing (delivered to an older deployment) or is older than the events' lookback.

    The store's own records name the candidates (attempts.unsettled, oldest first, `limit` a pass); one no
    cart holds and nobody can still be paying is cancelled, so the candidates drain.
    """
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    with shop.uow() as uow:
        candidates = attempts.unsettled(uow.conn, cutoff, limit)
    for pi_id in candidates:
        summary["payments_swept"] += 1
        try:
            _settle_attempt(shop, pi_id)
        except GatewayUnavailable as err:
            summary["errors"] += 1
            log.warning(
                "reconcile: Stripe unavailable at PaymentIntent %s (%s); the rest waits for the next pass", pi_id, err
            )
            return
        except PaymentError as err:
            summary["errors"] += 1
            log.warning("reconcile: PaymentIntent %s not settled: %s", pi_id, err)


def _close_attempt(shop, pi_id, status):
    with shop.uow() as uow:
        attempts.close(uow.conn, pi_id, status)
        uow.commit()


def _settle_attempt(shop, pi_id):
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentIntentMissing:
        log.warning("reconcile: PaymentIntent %s of ours is unknown to Stripe; no money can move on it", pi_id)
        _close_attempt(shop, pi_id, "missing")
        return
    if pi.status in REUSABLE_PI_STATUSES:  # no cart holds it: nobody was given it to pay
        try:
            pi = shop.gateway.cancel(pi_id)
        except AmountLocked as err:
            pi = err.payment_intent
    apply_payment_intent(shop, pi)
    if pi.status == "canceled":
        _close_attempt(shop, pi_id, "canceled")


def _frozen_carts(shop, frozen_before):
    frozen = select(_carts.c.id).where(_carts.c.status == "frozen", _carts.c.frozen_at <= frozen_before)
    return [cart_id for (cart_id,) in _read(shop, frozen)]


def release_expired_freezes(shop, limit=SWEEP_PER_PASS):
    """Release freezes past FREEZE_SECONDS, oldest first, at most `limit` a pass; how many were released.

    A freeze whose PaymentIntent is known to be moving money (processing, authorised, paid) is not asked
    about again and again: its webhook, or reconciliation's look at awaiting orders, settles it.
    """
    expired = (
        select(_carts.c.id)
        .where(
            _carts.c.status == "frozen",
            _carts.c.frozen_at <= shop.now() - timedelta(seconds=shop.freeze_seconds),
            _carts.c.pi_status.is_(None) | _carts.c.pi_status.not_in(sorted(IN_FLIGHT_PI_STATUSES)),
        )
        .order_by(_carts.c.frozen_at)
        .limit(limit)
    )
    return sum(1 for (cart_id,) in _read(shop, expired) if release_expired_freeze(shop, cart_id))


def _expired_freezes(shop, summary):
    summary["freezes_released"] += release_expired_freezes(shop)


def _unpaid_freezes(shop, older_than_seconds, summary):
    """Freezes past the reconcile delay whose PaymentIntent holds no payment: a handshake that broke half-way."""
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    for cart_id in _frozen_carts(shop, cutoff):
        if release_unpaid_freeze(shop, cart_id, cutoff):
            summary["freezes_released"] += 1


def _owed_refunds(shop, summary):
    owed = select(_orders.c.id, _orders.c.payment_intent_id, _orders.c.refund_due).where(
        _orders.c.refund_due > _orders.c.amount_refunded
    )
    for order_id, pi_id, amount in _read(shop, owed):
        if refund_excess(shop, order_id, pi_id, amount):
            summary["refunds_retried"] += 1


def _stale_payment_intents(shop, summary):
    lagging = select(_carts.c.id).where(
        _carts.c.payment_intent_id.is_not(None),
        _carts.c.pi_status.in_(REUSABLE_PI_STATUSES),
        _carts.c.pi_version != _carts.c.version,
    )
    for (cart_id,) in _read(shop, lagging):
        shop.schedule_sync(cart_id)
        summary["syncs_requested"] += 1


class PacedGateway:
    """The gateway with every Stripe call first waiting for a slot of reconciliation's budget."""

    LOCAL = frozenset({"verify_event"})  # no request to Stripe

    def __init__(self, gateway, budget):
        self._gateway, self._budget = gateway, budget

    def __getattr__(self, name):
        call = getattr(self._gateway, name)
        if name in self.LOCAL or not callable(call):
            return call

        def paced(*args, **kwargs):
            self._budget.wait()
            return call(*args, **kwargs)

        return paced


def reconcile_paced(shop, budget, config, **options):
    """One reconciliation pass whose Stripe calls keep to `budget` (None: unpaced), with the configured defaults."""
    if budget is not None:
        shop = dataclasses.replace(shop, gateway=PacedGateway(shop.gateway, budget))
    options.setdefault("older_than_seconds", config["RECONCILE_AFTER_SECONDS"])
    options.setdefault("lookback_seconds", config["RECONCILE_LOOKBACK_SECONDS"])
    options.setdefault("undelivered_only", config["RECONCILE_UNDELIVERED_ONLY"])
    summary = reconcile(shop, **options)
    RECONCILE_ERRORS.inc(summary["errors"])
    return summary
