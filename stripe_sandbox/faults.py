"""Injected realism and faults: latency, rate limits, lock timeouts, 500s, hangs, webhook chaos."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter

from flask import g, has_request_context

from . import errors

KNOWN = {
    "latency",
    "rate_limit",
    "lock_timeout",
    "error_rate",
    "hang_rate",
    "hang_seconds",
    "webhook_delay_ms",
    "webhook_duplicate_rate",
    "webhook_reorder",
    "webhook_drop_rate",
    "seed",
}
_Z99 = 2.3263478740408408  # 99th percentile of the standard normal


class _Bucket:
    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Faults:
    """The current fault configuration, a seeded RNG, token buckets and counters."""

    def __init__(self, initial: dict | None = None, seed: int | None = None):
        self.initial = dict(initial or {})
        self.initial_seed = seed
        self.lock = threading.Lock()
        self.wake = threading.Event()  # set to end every hang at once
        self.reset()

    def reset(self) -> None:
        """Back to the faults configured at start; counters cleared."""
        with self.lock:
            self.config: dict = {}
            self.rng = random.Random(self.initial_seed)
            self.buckets: dict[str, _Bucket] = {}
            self.stats: Counter = Counter()
        self.release_hangs()
        self.update(self.initial)

    def release_hangs(self) -> None:
        self.wake.set()
        self.wake = threading.Event()

    def update(self, changes: dict) -> dict:
        """Merge changes into the configuration (a null value removes a fault)."""
        if not isinstance(changes, dict):
            raise errors.invalid("Faults must be a JSON object.")
        for key in changes:
            if key not in KNOWN:
                raise errors.unknown_param(key)
        with self.lock:
            if changes.get("seed") is not None:
                self.rng = random.Random(changes["seed"])
            for key, value in changes.items():
                if value is None:
                    self.config.pop(key, None)
                elif key != "seed":
                    self.config[key] = value
            if "rate_limit" in changes:
                self.buckets.clear()
            return dict(self.config)

    def clear(self) -> None:
        """Remove every fault (the start-up faults too) and end pending hangs."""
        with self.lock:
            self.config = {}
            self.buckets.clear()
        self.release_hangs()

    def snapshot(self) -> dict:
        with self.lock:
            return {"faults": dict(self.config), "stats": dict(self.stats)}

    def _chance(self, key: str) -> bool:
        rate = float(self.config.get(key) or 0)
        return rate > 0 and self.rng.random() < rate

    def count(self, kind: str) -> None:
        with self.lock:
            self.stats[kind] += 1

    # --- API faults -----------------------------------------------------------------

    def check_rate_limit(self, route: str) -> None:
        """Token bucket per method+route; past the rate, Stripe's 429 `rate_limit`."""
        with self.lock:
            spec = self.config.get("rate_limit")
            if not spec:
                return
            rps = float(spec.get("per_endpoint_rps", 25)) if isinstance(spec, dict) else float(spec)
            bucket = self.buckets.setdefault(route, _Bucket(rps))
            if bucket.take():
                return
            self.stats["rate_limit"] += 1
        raise errors.StripeError(
            429,
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            code="rate_limit",
            before_execution=True,
        )

    def check_error(self) -> None:
        """With probability `error_rate`, a 500 `api_error` before the request executes."""
        with self.lock:
            hit = self._chance("error_rate")
            if hit:
                self.stats["error"] += 1
        if hit:
            raise errors.api_error("An unknown error occurred. Please retry your request (injected by sandbox).")

    def pick_hang(self) -> bool:
        """Whether this request should hang (after executing) until the client gives up."""
        with self.lock:
            hit = self._chance("hang_rate")
            if hit:
                self.stats["hang"] += 1
        return hit

    def hang(self) -> None:
        seconds = float(self.config.get("hang_seconds", 30))
        self.wake.wait(seconds)

    def acquire(self, lock: threading.Lock) -> bool:
        """Take a PaymentIntent's lock; with `lock_timeout` on, give up instead of waiting."""
        spec = self.config.get("lock_timeout")
        if not spec:
            return lock.acquire()
        wait_ms = spec.get("wait_ms", 0) if isinstance(spec, dict) else 0
        if lock.acquire(timeout=wait_ms / 1000) if wait_ms else lock.acquire(blocking=False):
            return True
        self.count("lock_timeout")
        return False

    def latency_seconds(self) -> float:
        spec = self.config.get("latency")
        if not spec:
            return 0.0
        with self.lock:
            if "fixed_ms" in spec:
                ms = float(spec["fixed_ms"])
            elif "median_ms" in spec:
                median = float(spec["median_ms"])
                p99 = float(spec.get("p99_ms", median * 4))
                sigma = max(math.log(max(p99, median) / median), 1e-9) / _Z99
                ms = self.rng.lognormvariate(math.log(median), sigma)
            else:
                ms = self.rng.uniform(float(spec.get("min_ms", 0)), float(spec.get("max_ms", 0)))
            self.stats["latency"] += 1
        return ms / 1000

    def sleep_latency(self) -> None:
        """Sleep the configured latency once per request (no-op outside requests)."""
        if not has_request_context() or g.get("latency_done"):
            return
        g.latency_done = True
        seconds = self.latency_seconds()
        if seconds > 0:
            self.wake.wait(seconds)

    # --- webhook faults ---------------------------------------------------------------

    def webhook_plan(self) -> dict:
        """Decide the fate of one event's deliveries: delay, duplicate, drop, reorder."""
        with self.lock:
            plan = {
                "delay": float(self.config.get("webhook_delay_ms", 0)) / 1000,
                "duplicate": self._chance("webhook_duplicate_rate"),
                "drop": self._chance("webhook_drop_rate"),
                "reorder": bool(self.config.get("webhook_reorder")),
            }
            for kind in ("duplicate", "drop"):
                if plan[kind]:
                    self.stats["webhook_" + kind] += 1
            if plan["delay"]:
                self.stats["webhook_delay"] += 1
        return plan

    def reorder_window(self) -> tuple[int, float]:
        spec = self.config.get("webhook_reorder")
        if isinstance(spec, dict):
            return int(spec.get("window", 3)), float(spec.get("hold_ms", 300)) / 1000
        return 3, 0.3

    def shuffle(self, items: list) -> list:
        """Shuffle a held window so that its order really changes."""
        with self.lock:
            shuffled = list(items)
            self.rng.shuffle(shuffled)
            if len(items) > 1 and shuffled == items:
                shuffled.reverse()
            if len(items) > 1:
                self.stats["webhook_reorder"] += 1
            return shuffled
