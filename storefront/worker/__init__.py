"""The worker: all background work of the store, in its own process or embedded in a web process.

It brings lagging PaymentIntents to their carts (asked by `schedule` in its own process, and found by
polling the lagging condition, so a cart changed by a process with no worker, or while the worker was
down, is never stranded), processes recorded webhook events, and runs the periodic jobs (jobs.py).

`WORKER=embedded` (create_app's default) runs it as background tasks of the web process; `WORKER=off`
makes a web process do no background work at all (`flask --app storefront worker` does it instead).
"""

import logging
import threading

from ..ops.heartbeat import Heartbeat
from ..payments.budget import reconcile_budget, update_budget
from ..payments.sync import unclaimed_lagging
from ..webhooks import inbox
from .jobs import periodic_jobs
from .syncs import CartSyncs

log = logging.getLogger(__name__)

# `process` means a worker process runs beside this one (wsgi.py and gunicorn start it): here, as `off`.
MODES = ("embedded", "off", "process")
# Lagging carts one poll picks up: the rest are found by the next one. While this many carts wait in the
# syncs' queue the poll does not look at all: it would only find them again (a storm is worked through first).
POLL_BATCH = 100
# Recorded webhook events handled per turn of the loop.
EVENTS_PER_TURN = 100


class Worker:
    """The store's background work; with `active=False` (WORKER=off) every call is a no-op."""

    def __init__(self, app, *, start_task, sleep, shop_factory, active=True):
        self._app, self._start_task, self._sleep, self._shop_factory = app, start_task, sleep, shop_factory
        self.active = active
        self.poll_seconds = app.config["WORKER_POLL_SECONDS"]
        budget = update_budget(app.config, sleep)
        self.syncs = CartSyncs(app, start_task, shop_factory, budget=budget, sleep=sleep)
        self.jobs = periodic_jobs(app.config, reconcile_budget(app.config, sleep))
        self.heartbeat = Heartbeat()
        self._running, self._loops = False, 0
        self._draining, self._drain_again = False, False
        self._lock = threading.Lock()

    def schedule(self, cart_id):
        """Bring the cart's PaymentIntent to its latest version soon (nothing here when off: a worker polls)."""
        if self.active:
            self.syncs.schedule(cart_id)

    def wake(self):
        """Work was committed for the worker (a recorded webhook event): handle it now, not at the next turn."""
        if not self.active:
            return
        with self._lock:
            if self._draining:
                self._drain_again = True
                return
            self._draining = True
        self._start_task(self._drain)

    def start(self):
        """Start the loops as background tasks: one for lagging carts and webhook events, one for the
        periodic jobs, so a long reconcile pass (paced, or waiting on a Stripe that is down) never holds
        up a PaymentIntent update or a recorded webhook."""
        if self.active and not self._running:
            self._running = True
            self._start_task(self._loop, self.turn)
            self._start_task(self._loop, self.run_jobs)

    def stop(self):
        """Stop the loops after their current turn; syncs under way finish, queued carts are left to a poll."""
        self._running = False
        self.syncs.let_go()

    def _loop(self, turn):
        """`turn(shop)` every WORKER_POLL_SECONDS until stopped."""
        with self._lock:
            self._loops += 1
        try:
            while self._running:
                with self._app.app_context():
                    shop = self._shop_factory()
                    try:
                        turn(shop)
                    finally:
                        shop.session.remove()
                self._sleep(self.poll_seconds)
        finally:
            with self._lock:
                self._loops -= 1

    def turn(self, shop):
        """One turn of the first loop: the heartbeat (what /readyz reads), lagging carts found, due webhook events
        handled. Not the jobs' loop: a reconcile pass may rightly take minutes."""
        _run_steps(shop, (self.heartbeat.beat, self._find_lagging, _process_events))

    def run_jobs(self, shop):
        """One turn of the second loop: each periodic job run if it is due and this store's turn."""
        _run_steps(shop, [job.run_if_due for job in self.jobs])

    def wait_idle(self, timeout):
        """Wait until the loop's turn and this process's syncs are over (for an orderly shutdown); True if idle."""
        waited = 0.0
        while self._busy() and waited < timeout:
            self._sleep(0.02)
            waited += 0.02
        return not self._busy()

    def _busy(self):
        return self._loops > 0 or self._draining or self.syncs.busy() > 0

    def _find_lagging(self, shop):
        if self.syncs.waiting() >= POLL_BATCH:
            return
        for cart_id in unclaimed_lagging(shop, POLL_BATCH):
            self.syncs.found(cart_id)

    def _drain(self):
        again = True
        while again:
            with self._app.app_context():
                shop = self._shop_factory()
                try:
                    _process_events(shop)
                except Exception:
                    log.exception("worker: processing recorded webhook events failed")
                finally:
                    shop.session.remove()
            with self._lock:
                again, self._drain_again = self._drain_again, False
                self._draining = again


def _run_steps(shop, steps):
    """Each step in turn; one that fails is logged and the next still runs (its unit of work rolled back)."""
    for step in steps:
        try:
            step(shop)
        except Exception:
            log.exception("worker: %s failed", getattr(step, "__qualname__", step))


def _process_events(shop):
    """Recorded webhook events that are due."""
    return inbox.process_due(shop, limit=EVENTS_PER_TURN)
