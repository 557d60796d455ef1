"""The store-wide budget for PaymentIntent updates (issue 6: at most ~20/s, whatever the number of carts).

Stripe allows about 25 write requests a second per endpoint; a store that updates a PaymentIntent
for every cart change runs out of it at a few dozen busy shoppers. Every background update reserves
a slot (payments.domain.next_update_slot) and sleeps until it: syncs that wait pile up more changes,
so a busy store absorbs more changes per update instead of collecting 429s. With Redis the timeline
is one key shared by every process; without it, each process keeps its own.
"""

import logging
import threading
import time

from ..ops.instruments import BUDGET_WAIT_SECONDS
from .domain import next_update_slot

log = logging.getLogger(__name__)

# next_update_slot, run inside Redis so that reserving a slot is atomic across processes (Redis's clock).
RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, free_at)
local interval = tonumber(ARGV[1])
local keep_ms = math.ceil((slot - now + interval) * 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.6f', slot + interval), 'PX', keep_ms)
return string.format('%.6f', slot - now)
"""


class LocalBudget:
    """Slots on this process's own timeline."""

    def __init__(self, per_second, sleep, clock=time.monotonic):
        self._interval, self._sleep, self._clock = 1.0 / per_second, sleep, clock
        self._free_at = 0.0
        self._lock = threading.Lock()

    def reserve(self):
        """Seconds to wait before this update may start."""
        with self._lock:
            now = self._clock()
            slot, self._free_at = next_update_slot(now, self._free_at, self._interval)
        return slot - now

    def wait(self):
        """Sleep until this update's slot; returns the seconds waited.

        A process too busy to wake on time would send its late updates together, in a burst Stripe
        answers with 429s: a slot missed by more than two intervals is given up for a new one (twice at most).
        """
        waited = 0.0
        for _ in range(3):
            seconds = self.reserve()
            due = self._clock() + seconds
            if seconds > 0:
                self._sleep(seconds)
            waited += seconds
            if self._clock() - due <= 2 * self._interval:
                break
        BUDGET_WAIT_SECONDS.observe(max(waited, 0.0))
        return waited


class RedisBudget(LocalBudget):
    """Slots on one timeline in Redis, shared by every process of the store; this process's own if Redis fails."""

    def __init__(self, client, key, per_second, sleep):
        super().__init__(per_second, sleep)
        self._key = key
        self._script = client.register_script(RESERVE_SLOT)

    def reserve(self):
        import redis

        try:
            return float(self._script(keys=[self._key], args=[self._interval]))
        except redis.RedisError as err:
            log.warning("Stripe update budget: Redis unavailable (%s); pacing this process alone", err)
            return super().reserve()


def update_budget(config, sleep):
    """The budget the configuration asks for, or None when updates are not paced (0 per second)."""
    return _budget(config, sleep, config.get("STRIPE_UPDATES_PER_SECOND") or 0, "stripe-update-slots")


def reconcile_budget(config, sleep):
    """Reconciliation's own pace for its Stripe calls, beside the updates' (None when not paced)."""
    return _budget(config, sleep, config.get("RECONCILE_REQUESTS_PER_SECOND") or 0, "stripe-reconcile-slots")


def _budget(config, sleep, per_second, name):
    if per_second <= 0:
        return None
    if config.get("REDIS_URL"):
        from ..redis_pools import fail_fast_client

        # Fail fast: a sync waiting on a Redis outage would rather pace itself locally.
        client = fail_fast_client(config["REDIS_URL"])
        key = f"{config.get('SOCKETIO_CHANNEL', 'storefront')}:{name}"
        return RedisBudget(client, key, per_second, sleep)
    return LocalBudget(per_second, sleep)
