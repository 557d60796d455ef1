"""PaymentIntent syncs as background tasks: at most one task per cart in this process; the lease covers others."""

import logging
import threading
import time
import uuid

from ..payments.sync import FAILED, sync_cart

log = logging.getLogger(__name__)

# A cart whose sync failed (Stripe refused, or is down) is not picked up by the poll again before this.
FAILED_REST_SECONDS = 30.0


class CartSyncs:
    """Schedules one background sync task per cart; a burst of changes coalesces into one update."""

    def __init__(self, app, start_task, shop_factory, budget=None):
        self._app, self._start_task, self._shop_factory, self._budget = app, start_task, shop_factory, budget
        self._running, self._again, self._resting = set(), set(), {}
        self._lock = threading.Lock()
        self.coalesce_seconds = app.config["SYNC_COALESCE_SECONDS"]
        self.lease_seconds = app.config["SYNC_LEASE_SECONDS"]

    def schedule(self, cart_id):
        """Ask for the cart's PaymentIntent to follow its latest version, soon and in the background."""
        with self._lock:
            self._resting.pop(cart_id, None)  # a new change is worth a new try
            if cart_id in self._running:
                # The running task may already have made its last look: it runs once more when it ends.
                self._again.add(cart_id)
                return
            self._running.add(cart_id)
        self._start_task(self._run, cart_id)

    def found(self, cart_id):
        """A cart the poll found lagging: sync it unless it is being synced here or its last sync failed lately."""
        with self._lock:
            if cart_id in self._running or self._resting.get(cart_id, 0) > time.monotonic():
                return False
            self._running.add(cart_id)
        self._start_task(self._run, cart_id)
        return True

    def _run(self, cart_id):
        with self._app.app_context():
            shop = self._shop_factory()
            outcome = FAILED
            try:
                outcome = self._sync(shop, cart_id)
            except Exception:
                log.exception("cart %s: background PaymentIntent sync crashed", cart_id)
            finally:
                shop.session.remove()
                with self._lock:
                    self._running.discard(cart_id)
                    again = cart_id in self._again and outcome != FAILED
                    self._again.discard(cart_id)
                    if outcome == FAILED:
                        self._resting[cart_id] = time.monotonic() + FAILED_REST_SECONDS
        if again:
            self.schedule(cart_id)

    def _sync(self, shop, cart_id):
        owner = uuid.uuid4().hex
        delay = 0.5
        outcome = FAILED
        for _ in range(4):
            time.sleep(self.coalesce_seconds)
            outcome = sync_cart(shop, cart_id, owner, self.lease_seconds, budget=self._budget)
            if outcome != FAILED:
                break
            time.sleep(delay)
            delay *= 2
        return outcome

    def busy(self):
        """How many carts this process is syncing now."""
        return len(self._running)
