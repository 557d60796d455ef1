"""PaymentIntent syncs on a bounded pool: a queue of carts, at most `size` tasks; the lease covers other processes.

A repricing storm (one price change reaching 1,500 open checkouts) is a queue of 1,500 cart ids here, worked
through by a few tasks at the pace of the update budget, not 1,500 tasks each waiting for its slot (each a
thread, with its stack and, in turn, a database connection).
"""

import logging
import math
import threading
import time
import uuid
from collections import deque

from ..payments.sync import FAILED, sync_cart

log = logging.getLogger(__name__)

# A cart whose sync failed (Stripe refused, or is down) is not picked up by the poll again before this.
FAILED_REST_SECONDS = 30.0
# What one sync takes when nothing waits: Stripe's answer to an update (about 0.3-0.5 s) and two statements.
TYPICAL_SYNC_SECONDS = 0.5
# Never fewer tasks than this (one slow Stripe answer must not hold up every cart), nor more than this
# (each task's statements need a connection of the database pool, shared with requests and sockets).
MIN_TASKS, MAX_TASKS = 4, 16


def pool_size(config):
    """Syncs one process runs at once: SYNC_CONCURRENCY, or what keeps the update budget busy.

    By Little's law, syncs in flight = updates per second x seconds per sync: at 20 updates/s and 0.5 s a
    sync, 10 tasks send an update in every slot of the budget; more would only wait for slots. Unpaced
    (STRIPE_UPDATES_PER_SECOND=0) takes the cap. Unset, it is also at most half the process's database
    connections (DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW): the other half stays the requests' and sockets'.
    """
    if config.get("SYNC_CONCURRENCY"):
        return max(1, int(config["SYNC_CONCURRENCY"]))
    per_second = config.get("STRIPE_UPDATES_PER_SECOND") or 0
    wanted = MAX_TASKS if per_second <= 0 else max(MIN_TASKS, math.ceil(per_second * TYPICAL_SYNC_SECONDS))
    connections = (config.get("DATABASE_POOL_SIZE") or 2 * MAX_TASKS) + (config.get("DATABASE_MAX_OVERFLOW") or 0)
    return max(1, min(MAX_TASKS, wanted, connections // 2))


def _check_fits(config, size):
    """Say so when an explicit SYNC_CONCURRENCY exceeds the process's database connections."""
    connections = (config.get("DATABASE_POOL_SIZE") or 0) + (config.get("DATABASE_MAX_OVERFLOW") or 0)
    if connections and size > connections:
        log.warning(
            "SYNC_CONCURRENCY=%s is more than this process's %s database connections (DATABASE_POOL_SIZE + "
            "DATABASE_MAX_OVERFLOW): the extra syncs only wait for a connection; see docs/production.md",
            size,
            connections,
        )


class CartSyncs:
    """A FIFO queue of carts to sync, each at most once in it, worked by at most `size` background tasks.

    A burst of changes coalesces: a cart changed while it waits stays where it is (its sync reads the latest
    version), and a cart changed while it is being synced is queued once more when that sync ends. Tasks
    are started with the app's start_task only while there is work, so the process is back to its own
    threads (or greenlets) when the queue is empty; they share plain data under a threading.Lock, which
    eventlet's and gevent's monkey-patching make green.
    """

    def __init__(self, app, start_task, shop_factory, budget=None, sleep=time.sleep):
        self._app, self._start_task, self._shop_factory, self._budget = app, start_task, shop_factory, budget
        self._sleep = sleep
        self.size = pool_size(app.config)
        _check_fits(app.config, self.size)
        self._waiting, self._queued = deque(), set()
        self._running, self._again, self._resting = set(), set(), {}
        self._tasks = 0
        self._lock = threading.Lock()
        self.coalesce_seconds = app.config["SYNC_COALESCE_SECONDS"]
        self.lease_seconds = app.config["SYNC_LEASE_SECONDS"]

    def schedule(self, cart_id):
        """Ask for the cart's PaymentIntent to follow its latest version, soon and in the background."""
        with self._lock:
            self._resting.pop(cart_id, None)  # a new change is worth a new try
            if cart_id in self._running:
                # The running sync may already have made its last look: the cart is queued again when it ends.
                self._again.add(cart_id)
                return
            start = self._enqueue(cart_id)
        if start:
            self._start_task(self._work)

    def found(self, cart_id):
        """A cart the poll found lagging: queue it unless it is queued or synced here or its last sync failed lately."""
        with self._lock:
            if cart_id in self._running or cart_id in self._queued or self._rests(cart_id):
                return False
            start = self._enqueue(cart_id)
        if start:
            self._start_task(self._work)
        return True

    def waiting(self):
        """How many carts are queued here, not yet being synced."""
        return len(self._waiting)

    def tasks(self):
        """How many sync tasks this process runs now (never more than `size`)."""
        return self._tasks

    def busy(self):
        """How many carts this process has queued or is syncing."""
        return len(self._running) + len(self._waiting)

    def let_go(self):
        """Forget the queued carts (for a shutdown): they stay lagging and unleased, so a worker's poll finds them."""
        with self._lock:
            dropped = len(self._waiting)
            self._waiting.clear()
            self._queued.clear()
        if dropped:
            log.info("worker stopping: %s queued carts left to the next worker's poll", dropped)
        return dropped

    def _rests(self, cart_id):
        """Whether the cart's last sync failed less than FAILED_REST_SECONDS ago (lock held)."""
        until = self._resting.get(cart_id)
        if until is not None and until <= time.monotonic():
            del self._resting[cart_id]
            return False
        return until is not None

    def _enqueue(self, cart_id):
        """Queue the cart once (lock held); whether a task must be started for it."""
        if cart_id not in self._queued:
            self._waiting.append(cart_id)
            self._queued.add(cart_id)
        # Tasks not syncing a cart are about to take one: start another only if the queue outnumbers them.
        if self._tasks < self.size and self._tasks - len(self._running) < len(self._waiting):
            self._tasks += 1
            return True
        return False

    def _work(self):
        """One task of the pool: sync queued carts, oldest first, until none is left."""
        cart_id, outcome = None, None
        try:
            while (cart_id := self._next(cart_id, outcome)) is not None:
                outcome = self._run(cart_id)
        except BaseException:  # killed (a greenlet at exit): give back its slot and its cart
            with self._lock:
                self._tasks -= 1
                self._running.discard(cart_id)
            raise

    def _next(self, done, outcome):
        """End the sync of `done` (if any) and take the next queued cart; None (the task ends) when none is left."""
        with self._lock:
            if done is not None:
                self._finish(done, outcome)
            if not self._waiting:
                self._tasks -= 1
                return None
            cart_id = self._waiting.popleft()
            self._queued.discard(cart_id)
            self._running.add(cart_id)
            return cart_id

    def _finish(self, cart_id, outcome):
        """A sync ended (lock held): a failed cart rests, a cart changed meanwhile goes to the back of the queue."""
        self._running.discard(cart_id)
        again = cart_id in self._again
        self._again.discard(cart_id)
        if outcome == FAILED:
            self._resting[cart_id] = time.monotonic() + FAILED_REST_SECONDS
        elif again and cart_id not in self._queued:
            self._waiting.append(cart_id)
            self._queued.add(cart_id)

    def _run(self, cart_id):
        """One cart's sync in its own app context and database session; how it ended."""
        with self._app.app_context():
            shop = self._shop_factory()
            try:
                return self._sync(shop, cart_id)
            except Exception:
                log.exception("cart %s: background PaymentIntent sync crashed", cart_id)
                return FAILED
            finally:
                shop.session.remove()

    def _sync(self, shop, cart_id):
        owner = uuid.uuid4().hex
        delay = 0.5
        outcome = FAILED
        for _ in range(4):
            self._sleep(self.coalesce_seconds)
            outcome = sync_cart(shop, cart_id, owner, self.lease_seconds, budget=self._budget)
            if outcome != FAILED:
                break
            self._sleep(delay)
            delay *= 2
        return outcome
