"""Reconciliation: ask Stripe about what the webhooks should have told us, and apply it."""

import dataclasses
import logging
import time
from datetime import timedelta

from sqlalchemy import select

from ..checkout import attempts
from ..checkout.cancel import release_unpaid_freeze
from ..checkout.domain import REUSABLE_PI_STATUSES
from ..checkout.fulfilment import apply_payment_intent, refund_excess
from ..checkout.service import release_expired_freeze
from ..models import Cart, Order, WebhookEvent
from ..webhooks.routes import HANDLERS, _mark_processed, _record
from .gateway import AmountLocked, GatewayUnavailable, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)


# PaymentIntents the sweep asks Stripe about per pass (each costs up to four paced requests).
SWEEP_PER_PASS = 10


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


def _awaiting_orders(shop, older_than_seconds, summary):
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    pi_ids = (
        shop.session.execute(
            select(Order.payment_intent_id)
            .where(Order.status == "awaiting_payment", Order.updated_at <= cutoff)
            .distinct()
        )
        .scalars()
        .all()
    )
    shop.session.commit()
    for pi_id in pi_ids:
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
                types=sorted(HANDLERS), created_since=since, undelivered_only=undelivered_only, starting_after=after
            )
        except PaymentError as err:
            summary["errors"] += 1
            log.warning("reconcile: listing Stripe's events failed: %s", err)
            return
        summary["events_checked"] += len(events)
        for event in _unprocessed(shop.session, events):
            if not _apply_missed_event(shop, event, summary):
                return
        if not more or not events:
            return
        after = events[-1]["id"]


def _unprocessed(session, events):
    """The events with no processed record here, in one query."""
    ids = [event["id"] for event in events]
    done = (
        set(
            session.execute(
                select(WebhookEvent.id).where(WebhookEvent.id.in_(ids), WebhookEvent.processed_at.is_not(None))
            ).scalars()
        )
        if ids
        else set()
    )
    session.commit()
    return [event for event in events if event["id"] not in done]


def _apply_missed_event(shop, event, summary):
    """Process one event as its webhook would have; False when Stripe is unavailable (the pass stops). An event
    Stripe refuses to help with is counted and left unprocessed, for the next pass."""
    if not _record(shop.session, event["id"], event["type"], acted_on=True):
        return True  # a delivery processed it meanwhile
    try:
        HANDLERS[event["type"]](shop, event)
    except GatewayUnavailable as err:
        shop.session.rollback()
        summary["errors"] += 1
        log.warning(
            "reconcile: Stripe unavailable at event %s (%s); the rest waits for the next pass", event["id"], err
        )
        return False
    except PaymentError as err:  # refused for this event alone (e.g. a charge we may not read): left for later
        shop.session.rollback()
        summary["errors"] += 1
        log.warning("reconcile: event %s not applied: %s", event["id"], err)
        return True
    except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as err:
        shop.session.rollback()
        log.warning("reconcile: event %s is malformed (%s); ignored", event["id"], err)
    _mark_processed(shop.session, event["id"])
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
    for pi_id in attempts.unsettled(shop.session, cutoff, limit):
        summary["payments_swept"] += 1
        try:
            _settle_attempt(shop, pi_id)
        except GatewayUnavailable as err:
            shop.session.rollback()
            summary["errors"] += 1
            log.warning(
                "reconcile: Stripe unavailable at PaymentIntent %s (%s); the rest waits for the next pass", pi_id, err
            )
            return
        except PaymentError as err:
            shop.session.rollback()
            summary["errors"] += 1
            log.warning("reconcile: PaymentIntent %s not settled: %s", pi_id, err)


def _settle_attempt(shop, pi_id):
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentIntentMissing:
        log.warning("reconcile: PaymentIntent %s of ours is unknown to Stripe; no money can move on it", pi_id)
        attempts.close(shop.session, pi_id, "missing")
        shop.session.commit()
        return
    if pi.status in REUSABLE_PI_STATUSES:  # no cart holds it: nobody was given it to pay
        try:
            pi = shop.gateway.cancel(pi_id)
        except AmountLocked as err:
            pi = err.payment_intent
    apply_payment_intent(shop, pi)
    if pi.status == "canceled":
        attempts.close(shop.session, pi_id, "canceled")
        shop.session.commit()


def _expired_freezes(shop, summary):
    cutoff = shop.now() - timedelta(seconds=shop.freeze_seconds)
    cart_ids = (
        shop.session.execute(select(Cart.id).where(Cart.status == "frozen", Cart.frozen_at <= cutoff)).scalars().all()
    )
    shop.session.commit()
    for cart_id in cart_ids:
        if release_expired_freeze(shop, cart_id):
            summary["freezes_released"] += 1


def _unpaid_freezes(shop, older_than_seconds, summary):
    """Freezes past the reconcile delay whose PaymentIntent holds no payment: a handshake that broke half-way."""
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    cart_ids = (
        shop.session.execute(select(Cart.id).where(Cart.status == "frozen", Cart.frozen_at <= cutoff)).scalars().all()
    )
    shop.session.commit()
    for cart_id in cart_ids:
        if release_unpaid_freeze(shop, cart_id, cutoff):
            summary["freezes_released"] += 1


def _owed_refunds(shop, summary):
    owed = shop.session.execute(
        select(Order.id, Order.payment_intent_id, Order.refund_due).where(Order.refund_due > Order.amount_refunded)
    ).all()
    shop.session.commit()
    for order_id, pi_id, amount in owed:
        if refund_excess(shop, order_id, pi_id, amount):
            summary["refunds_retried"] += 1


def _stale_payment_intents(shop, summary):
    cart_ids = (
        shop.session.execute(
            select(Cart.id).where(
                Cart.payment_intent_id.is_not(None),
                Cart.pi_status.in_(REUSABLE_PI_STATUSES),
                Cart.pi_version != Cart.version,
            )
        )
        .scalars()
        .all()
    )
    shop.session.commit()
    for cart_id in cart_ids:
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
    return reconcile(shop, **options)
