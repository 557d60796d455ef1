"""The sandbox's in-memory state: settings, objects, locks, and transactions on PaymentIntents."""

from __future__ import annotations

import copy
import os
import secrets
import string
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import errors
from .faults import Faults
from .idempotency import IdempotencyStore

API_VERSION = "2026-10-28.endive"
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id such as `pi_3Pq...`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class Settings:
    """Everything configurable at start (CLI flags, env, SandboxServer kwargs)."""

    host: str = "127.0.0.1"
    port: int = 12111
    secret_key: str = "sk_test_sandbox"
    publishable_key: str = "pk_test_sandbox"
    webhooks: list = field(default_factory=list)  # [(url, secret)] or [(url, secret, events)]
    sepa_delay: float = 3.0
    # How long after the payment a test card's dispute opens, and a test card's refund fails.
    dispute_delay: float = 1.0
    refund_failure_delay: float = 1.0
    webhook_retry_base: float = 1.0
    webhook_max_attempts: int = 6
    webhook_timeout: float = 10.0
    faults: dict = field(default_factory=dict)
    seed: int | None = None


class Transaction:
    """A working copy of one PaymentIntent (and its charges); committed atomically.

    Readers never lock: they see either the old or the new object, never a half-made one.
    Events are emitted only after the commit, so a webhook receiver that retrieves the
    PaymentIntent always sees at least the state the event describes.
    """

    def __init__(self, state: SandboxState, pi: dict, automatic: bool = False):
        self.state = state
        # Events of a change no API request made (a timer, a control call) carry no request id.
        self.automatic = automatic
        self.pi = copy.deepcopy(pi)
        self.charges: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.disputes: list[dict] = []
        self.events: list[tuple[str, dict]] = []

    def charge(self, charge_id: str) -> dict:
        if charge_id not in self.charges:
            self.charges[charge_id] = copy.deepcopy(self.state.charges[charge_id])
        return self.charges[charge_id]

    def emit(self, event_type: str, obj: dict) -> None:
        self.events.append((event_type, copy.deepcopy(obj)))


class SandboxState:
    """All objects, the store lock, one lock per PaymentIntent, faults and webhooks."""

    def __init__(self, settings: Settings | None = None):
        from .webhooks import Dispatcher

        self.settings = settings or Settings()
        self.lock = threading.RLock()
        self.faults = Faults(self.settings.faults, self.settings.seed)
        self.idempotency = IdempotencyStore()
        self.webhooks = Dispatcher(self)
        for entry in self.settings.webhooks:
            self.webhooks.add_endpoint(*entry)
        self.base_url = f"http://{self.settings.host}:{self.settings.port}"
        self.generation = 0
        self._clear()

    def _clear(self) -> None:
        self.payment_intents: dict[str, dict] = {}
        self.payment_methods: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.events: list[dict] = []
        self.events_by_id: dict[str, dict] = {}
        self.pi_locks: dict[str, threading.Lock] = {}
        self.timers: list[threading.Timer] = []

    def reset(self) -> None:
        """Forget every object, event, delivery and key; keep settings and endpoints."""
        with self.lock:
            self.generation += 1
            for timer in self.timers:
                timer.cancel()
            self._clear()
            self.idempotency.clear()
            self.faults.reset()
            self.webhooks.reset()

    # Stripe names a missing PaymentIntent of the URL by the path parameter, `intent`: {"code":
    # "resource_missing", "message": "No such payment_intent: 'pi_...'", "param": "intent"} (Stripe's answer
    # quoted in stripe/stripe-terminal-js-demo#72 and stripe/stripe-ios#4531).
    def get_pi(self, pi_id: str, param: str = "intent", status: int = 404) -> dict:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            raise errors.no_such("payment_intent", pi_id, param, status)
        return pi

    def add_pi(self, pi: dict) -> None:
        with self.lock:
            self.payment_intents[pi["id"]] = pi
            self.pi_locks[pi["id"]] = threading.Lock()

    @contextmanager
    def pi_transaction(self, pi_id: str, param: str = "intent", status: int = 404, internal: bool = False):
        """Lock one PaymentIntent for a write, yield a Transaction, commit on exit.

        With the `lock_timeout` fault on, an overlapping API write is refused with 429
        `lock_timeout` instead of waiting, as Stripe does under contention. Internal
        writes (timers, sandbox control calls) always wait and see no injected latency.
        """
        self.get_pi(pi_id, param, status)
        lock = self.pi_locks[pi_id]
        if internal:
            lock.acquire()
        elif not self.faults.acquire(lock):
            raise errors.StripeError(
                429,
                "This object cannot be accessed right now because another API request or "
                "Stripe process is currently accessing it. If you see this error "
                "intermittently, retry the request.",
                code="lock_timeout",
                headers={"Stripe-Should-Retry": "true"},
                before_execution=True,
            )
        try:
            if not internal:
                self.faults.sleep_latency()
            txn = Transaction(self, self.payment_intents[pi_id], automatic=internal)
            try:
                yield txn
            except errors.StripeError:
                self._commit(txn)
                raise
            self._commit(txn)
        finally:
            lock.release()

    def _commit(self, txn: Transaction) -> None:
        with self.lock:
            if txn.pi["id"] not in self.payment_intents:
                return  # reset while the write was in flight
            self.payment_intents[txn.pi["id"]] = txn.pi
            self.charges.update(txn.charges)
            for refund in txn.refunds:
                self.refunds[refund["id"]] = refund
            for dispute in txn.disputes:
                self.disputes[dispute["id"]] = dispute
        for event_type, obj in txn.events:
            self.emit(event_type, obj, automatic=txn.automatic)

    def emit(self, event_type: str, obj: dict, automatic: bool = False) -> dict:
        """Record an event and hand it to the webhook dispatcher."""
        from .events import build_event

        event = build_event(self, event_type, obj, automatic)
        with self.lock:
            self.events.append(event)
            self.events_by_id[event["id"]] = event
        self.webhooks.publish(event)
        return event

    def acknowledged(self, event_id: str) -> None:
        """One more endpoint took the event with a 2xx: Stripe's `pending_webhooks` counts one fewer."""
        with self.lock:
            event = self.events_by_id.get(event_id)
            if event is not None and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1

    def later(self, seconds: float, fn, *args) -> None:
        """Run fn(*args) after a delay unless the sandbox is reset first."""
        generation = self.generation

        def run():
            if generation == self.generation:
                fn(*args)

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        with self.lock:
            self.timers.append(timer)
        timer.start()

    def summary(self) -> dict:
        """Counts of objects, for GET /_sandbox/state."""
        with self.lock:
            statuses: dict[str, int] = {}
            for pi in self.payment_intents.values():
                statuses[pi["status"]] = statuses.get(pi["status"], 0) + 1
            return {
                "payment_intents": len(self.payment_intents),
                "payment_intent_statuses": statuses,
                "charges": len(self.charges),
                "refunds": len(self.refunds),
                "disputes": len(self.disputes),
                "events": len(self.events),
                "webhook_endpoints": len(self.webhooks.endpoints),
                "settings": {
                    "sepa_delay": self.settings.sepa_delay,
                    "webhook_retry_base": self.settings.webhook_retry_base,
                    "webhook_max_attempts": self.settings.webhook_max_attempts,
                },
                "api_version": API_VERSION,
                "pid": os.getpid(),  # lets a launcher tell its own sandbox from another one
                "time": int(time.time()),
            }
