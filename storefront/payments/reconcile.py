"""Reconciliation: ask Stripe about what the webhooks should have told us, and apply it."""

import logging
import time
from datetime import timedelta

from sqlalchemy import select

from ..cart.cleanup import CleanupSchedule
from ..checkout.domain import REUSABLE_PI_STATUSES, SETTLED_ORDER_STATUSES
from ..checkout.fulfilment import apply_payment_intent, refund_excess
from ..checkout.service import release_expired_freeze
from ..models import Cart, Order
from .gateway import GatewayUnavailable, PaymentError, PaymentIntentMissing

log = logging.getLogger(__name__)


def reconcile(shop, *, older_than_seconds, lookback_seconds=86400):
    """Apply Stripe's view to stale orders, unreported payments, expired freezes and owed refunds."""
    summary = {"orders_checked": 0, "payments_applied": 0, "freezes_released": 0, "refunds_retried": 0,
               "syncs_requested": 0, "errors": 0}
    _awaiting_orders(shop, older_than_seconds, summary)
    _recent_payments(shop, lookback_seconds, summary)
    _expired_freezes(shop, summary)
    _owed_refunds(shop, summary)
    _stale_payment_intents(shop, summary)
    log.info("reconcile: %s", summary)
    return summary


def _awaiting_orders(shop, older_than_seconds, summary):
    cutoff = shop.now() - timedelta(seconds=older_than_seconds)
    pi_ids = shop.session.execute(
        select(Order.payment_intent_id).where(Order.status == "awaiting_payment", Order.updated_at <= cutoff).distinct()
    ).scalars().all()
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
            log.warning("reconcile: Stripe unavailable at PaymentIntent %s (%s); the rest waits for the next pass",
                        pi_id, err)
            return
        except PaymentError as err:
            summary["errors"] += 1
            log.warning("reconcile: PaymentIntent %s not checked: %s", pi_id, err)


def _recent_payments(shop, lookback_seconds, summary):
    """Succeeded PaymentIntents with no settled order: payments whose webhook never came."""
    try:
        intents = shop.gateway.recent_payment_intents(int(time.time() - lookback_seconds))
    except PaymentError as err:
        summary["errors"] += 1
        log.warning("reconcile: listing PaymentIntents failed: %s", err)
        return
    for pi in intents:
        if pi.status != "succeeded" or pi.cart_ref is None:
            continue
        settled = shop.session.execute(
            select(Order.id).where(
                Order.payment_intent_id == pi.id,
                Order.cart_version == pi.cart_ref[1],
                Order.status.in_(SETTLED_ORDER_STATUSES),
            )
        ).first()
        shop.session.commit()
        if settled is None:
            apply_payment_intent(shop, pi)
            summary["payments_applied"] += 1


def _expired_freezes(shop, summary):
    cutoff = shop.now() - timedelta(seconds=shop.freeze_seconds)
    cart_ids = shop.session.execute(
        select(Cart.id).where(Cart.status == "frozen", Cart.frozen_at <= cutoff)
    ).scalars().all()
    shop.session.commit()
    for cart_id in cart_ids:
        if release_expired_freeze(shop, cart_id):
            summary["freezes_released"] += 1


def _owed_refunds(shop, summary):
    owed = shop.session.execute(
        select(Order.id, Order.payment_intent_id, Order.refund_due).where(
            Order.refund_due > Order.amount_refunded
        )
    ).all()
    shop.session.commit()
    for order_id, pi_id, amount in owed:
        if refund_excess(shop, order_id, pi_id, amount):
            summary["refunds_retried"] += 1


def _stale_payment_intents(shop, summary):
    cart_ids = shop.session.execute(
        select(Cart.id).where(
            Cart.payment_intent_id.is_not(None),
            Cart.pi_status.in_(REUSABLE_PI_STATUSES),
            Cart.pi_version != Cart.version,
        )
    ).scalars().all()
    shop.session.commit()
    for cart_id in cart_ids:
        shop.schedule_sync(cart_id)
        summary["syncs_requested"] += 1


class PeriodicReconcile:
    """Runs reconciliation every few minutes in the server process (each process may; it is idempotent)."""

    def __init__(self, app, start_task, sleep, shop_factory):
        self._app, self._start_task, self._sleep, self._shop_factory = app, start_task, sleep, shop_factory
        self._running = False
        self._cleanup = CleanupSchedule(app.config, time.monotonic)

    def start(self):
        """Start the periodic job (unless RECONCILE_INTERVAL_SECONDS is 0)."""
        interval = self._app.config["RECONCILE_INTERVAL_SECONDS"]
        if interval > 0 and not self._running:
            self._running = True
            self._start_task(self._loop, interval)

    def stop(self):
        """Stop after the current round."""
        self._running = False

    def _loop(self, interval):
        while True:
            self._sleep(interval)
            if not self._running:
                return
            with self._app.app_context():
                shop = self._shop_factory()
                try:
                    reconcile(shop, older_than_seconds=self._app.config["RECONCILE_AFTER_SECONDS"])
                except Exception:
                    log.exception("periodic reconcile failed")
                try:
                    self._cleanup.run_if_due(shop)
                except Exception:
                    log.exception("periodic cart cleanup failed")
                finally:
                    shop.session.remove()
