"""The worker's periodic jobs, each once per store whatever the number of workers (lease.py's turns)."""

import logging
import time
import uuid

from ..cart.cleanup import remove_abandoned_carts
from ..payments.lease import end_turn, take_turn
from ..payments.reconcile import reconcile_paced, release_expired_freezes

log = logging.getLogger(__name__)

# How long a run may hold the store's turn; a worker that dies mid-run delays the next one at most this much.
TURN_HOLD_SECONDS = 300


class PeriodicJob:
    """`run(shop)` every `every_seconds` for the store: this process asks for the turn at most once an interval."""

    def __init__(self, name, every_seconds, run, clock=time.monotonic, hold_seconds=TURN_HOLD_SECONDS):
        self.name, self.every_seconds, self._run, self._clock = name, every_seconds, run, clock
        self.hold_seconds = hold_seconds
        self._holder = uuid.uuid4().hex
        self._asked = None

    def run_if_due(self, shop):
        """Run the job if it is this store's turn; its result, or None when not due here."""
        now = self._clock()
        if self.every_seconds <= 0 or (self._asked is not None and now - self._asked < self.every_seconds):
            return None  # no write on every tick of the loop
        self._asked = now
        hold = max(self.every_seconds, self.hold_seconds)
        if not take_turn(shop.session, self.name, self._holder, now=shop.now(), hold_seconds=hold):
            return None
        try:
            return self._run(shop)
        finally:
            end_turn(shop.session, self.name, self._holder, now=shop.now(), every_seconds=self.every_seconds)


def periodic_jobs(config, reconcile_budget):
    """Reconciliation, the release of expired freezes and cart cleanup, at their configured intervals."""

    def reconcile(shop):
        return reconcile_paced(shop, reconcile_budget, config)

    def cleanup(shop):
        return remove_abandoned_carts(shop, shop.now(), config["ABANDONED_CART_SECONDS"])

    return [
        PeriodicJob("reconcile", config["RECONCILE_INTERVAL_SECONDS"], reconcile),
        # Its own short turn: a freeze past FREEZE_SECONDS is released within seconds, not at the next pass.
        # A pass is at most SWEEP_PER_PASS carts: a worker that dies in one delays the next by 30 s, not 5 min.
        PeriodicJob("expired_freezes", config["FREEZE_SWEEP_SECONDS"], release_expired_freezes, hold_seconds=30),
        PeriodicJob("cart_cleanup", config["CART_CLEANUP_INTERVAL_SECONDS"], cleanup),
    ]
