"""Reconciliation: ask Stripe about what the webhooks should have told us, and apply it.

Each step reads its candidates in a unit of work of its own and asks Stripe about them after it ends;
what an answer changes is written by the use case applying it (fulfilment, the freeze releases), each
in its own unit of work. Webhook events (missed at Stripe, or overdue in the inbox) are reconcile_events'.
"""

import dataclasses
import logging
from datetime import timedelta

from sqlalchemy import select

from ..checkout import attempts
from ..checkout.cancel import release_unpaid_freeze
from ..checkout.domain import IN_FLIGHT_PI_STATUSES, REUSABLE_PI_STATUSES, UNPAID_PI_STATUSES
from ..checkout.fulfilment import apply_payment_intent, refund_excess
from ..checkout.service import release_expired_freeze
from ..models import Cart, Order
from ..ops.instruments import RECONCILE_ERRORS
from .gateway import AmountLocked, PaymentIntentMissing
from .reconcile_events import isolated, missed_events, overdue_events

log = logging.getLogger(__name__)


# PaymentIntents the sweep asks Stripe about per pass (each costs up to four paced requests).
SWEEP_PER_PASS = 10

_carts, _orders = Cart.__table__, Order.__table__


def reconcile(shop, *, older_than_seconds, lookback_seconds=86400, undelivered_only=True, sweep_limit=SWEEP_PER_PASS):
    """Apply Stripe's view to stale orders, missed and overdue webhook events, unsettled payments, expired
    freezes and owed refunds. Each item is isolated: one that fails is counted (`errors` when Stripe could
    not be asked, `failures` for anything else), logged with its ids, and the pass goes on."""
    summary = {
        "orders_checked": 0,
        "events_checked": 0,
        "payments_applied": 0,
        "events_overdue": 0,
        "payments_swept": 0,
        "freezes_released": 0,
        "refunds_retried": 0,
        "syncs_requested": 0,
        "errors": 0,
        "failures": 0,
    }
    steps = (
        (_awaiting_orders, shop, older_than_seconds, summary),
        (missed_events, shop, lookback_seconds, undelivered_only, summary),
        (overdue_events, shop, older_than_seconds, summary),
        (_unsettled_payments, shop, older_than_seconds, sweep_limit, summary),
        (_expired_freezes, shop, summary),
        (_unpaid_freezes, shop, older_than_seconds, summary),
        (_owed_refunds, shop, summary),
        (_stale_payment_intents, shop, summary),
    )
    for step, *args in steps:
        # A step's own read can fail too (the database): the next step still runs.
        isolated(summary, f"the step {step.__name__}", step, *args)
    log.log(logging.ERROR if summary["failures"] else logging.INFO, "reconcile: %s", summary)
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
        if not isolated(summary, f"PaymentIntent {pi_id}", _apply_current, shop, pi_id):
            return


def _apply_current(shop, pi_id):
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentIntentMissing:
        log.warning("reconcile: PaymentIntent %s is unknown to Stripe", pi_id)
        return
    apply_payment_intent(shop, pi)


def _unsettled_payments(shop, older_than_seconds, limit, summary):
    """Every succeeded PaymentIntent this store created ends in an order or a refund, even when its event was
    acknowledged but did nothing (delivered to an older deployment), is older than the events' lookback, or
    was confirmed without the handshake while its cart still holds it.

    The store's own records name the candidates (attempts.unsettled, least recently checked first, `limit`
    a pass); one no cart holds and nobody can still be paying is cancelled, so the candidates drain, and
    those carts hold take turns.
    """
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    with shop.uow() as uow:
        candidates = attempts.unsettled(uow.conn, cutoff, limit)
    for pi_id, held in candidates:
        summary["payments_swept"] += 1
        if not isolated(summary, f"PaymentIntent {pi_id}", _settle_attempt, shop, pi_id, held):
            return


def _close_attempt(shop, pi_id, status):
    with shop.uow() as uow:
        attempts.close(uow.conn, pi_id, status)
        uow.commit()


def _settle_attempt(shop, pi_id, held):
    """Ask Stripe about one of our PaymentIntents and apply what it says, through the one sink."""
    try:
        pi = shop.gateway.retrieve(pi_id)
    except PaymentIntentMissing:
        log.warning("reconcile: PaymentIntent %s of ours is unknown to Stripe; no money can move on it", pi_id)
        _close_attempt(shop, pi_id, "missing")
        return
    with shop.uow() as uow:  # asked: the next pass asks about the others first
        attempts.checked(uow.conn, pi_id, shop.now())
        uow.commit()
    if pi.status in REUSABLE_PI_STATUSES:
        if held:  # its cart's shopper may still pay it: the sweep only looks
            return
        try:  # no cart holds it: nobody was given it to pay
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
    """Release freezes past FREEZE_SECONDS, and reservations past RESERVATION_SECONDS whose payment has not
    started, oldest first, at most `limit` a pass; how many were released.

    A freeze whose PaymentIntent is known to be moving money (processing, authorised, paid) is not asked
    about again and again: its webhook, or reconciliation's look at awaiting orders, settles it. A lapsed
    reservation is released only if Stripe says its PaymentIntent is still unconfirmed (cancelled at Stripe
    first, as every release is): one Stripe says needs authentication or moves money keeps its freeze, and
    its mirrored status keeps it out of the next pass.
    """
    now = shop.now()
    expired = (
        select(_carts.c.id)
        .where(
            _carts.c.status == "frozen",
            _carts.c.frozen_at <= now - timedelta(seconds=shop.freeze_seconds),
            _carts.c.pi_status.is_(None) | _carts.c.pi_status.not_in(sorted(IN_FLIGHT_PI_STATUSES)),
        )
        .order_by(_carts.c.frozen_at)
        .limit(limit)
    )
    released = sum(1 for (cart_id,) in _read(shop, expired) if release_expired_freeze(shop, cart_id))
    return released + _release_lapsed_reservations(shop, now, limit)


def _release_lapsed_reservations(shop, now, limit):
    """Freezes older than RESERVATION_SECONDS whose PaymentIntent, as last seen, never started paying."""
    cutoff = now - timedelta(seconds=shop.reservation_seconds)
    lapsed = (
        select(_carts.c.id)
        .where(
            _carts.c.status == "frozen",
            _carts.c.frozen_at <= cutoff,
            _carts.c.pi_status.is_(None) | _carts.c.pi_status.in_(sorted(UNPAID_PI_STATUSES)),
        )
        .order_by(_carts.c.frozen_at)
        .limit(limit)
    )
    released = 0
    for (cart_id,) in _read(shop, lapsed):
        if release_unpaid_freeze(shop, cart_id, cutoff):
            released += 1
            log.info("cart %s: reservation lapsed (no payment started within RESERVATION_SECONDS); released", cart_id)
    return released


def _expired_freezes(shop, summary):
    summary["freezes_released"] += release_expired_freezes(shop)


def _counted(summary, counter, apply, *args):
    if apply(*args):
        summary[counter] += 1


def _unpaid_freezes(shop, older_than_seconds, summary):
    """Freezes past the reconcile delay whose PaymentIntent holds no payment: a handshake that broke half-way."""
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    for cart_id in _frozen_carts(shop, cutoff):
        counted = (summary, "freezes_released", release_unpaid_freeze, shop, cart_id, cutoff)
        if not isolated(summary, f"frozen cart {cart_id}", _counted, *counted):
            return


def _owed_refunds(shop, summary):
    owed = select(_orders.c.id, _orders.c.payment_intent_id, _orders.c.refund_due).where(
        _orders.c.refund_due > _orders.c.amount_refunded
    )
    for order_id, pi_id, amount in _read(shop, owed):
        counted = (summary, "refunds_retried", refund_excess, shop, order_id, pi_id, amount)
        if not isolated(summary, f"order {order_id} (PaymentIntent {pi_id})", _counted, *counted):
            return


def _stale_payment_intents(shop, summary):
    lagging = select(_carts.c.id).where(
        _carts.c.payment_intent_id.is_not(None),
        _carts.c.pi_status.in_(REUSABLE_PI_STATUSES),
        _carts.c.pi_version != _carts.c.version,
    )
    for (cart_id,) in _read(shop, lagging):
        isolated(summary, f"cart {cart_id}", shop.schedule_sync, cart_id)
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
    RECONCILE_ERRORS.inc(summary["errors"] + summary["failures"])
    return summary
