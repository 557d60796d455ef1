"""Webhook endpoints, Stripe-Signature signing, and delivery with retries in background threads."""

from __future__ import annotations

import heapq
import hmac
import itertools
import json
import threading
import time
from hashlib import sha256

import requests

from .state import new_id


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value: `t=<ts>,v1=<hex hmac-sha256 of "t.payload">`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _subscribed(enabled_events: list, event_type: str) -> bool:
    for pattern in enabled_events:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class Endpoint:
    """One registered URL with its signing secret and its own delivery thread."""

    def __init__(self, dispatcher: Dispatcher, url: str, secret: str, enabled_events=None, **fields):
        self.dispatcher = dispatcher
        self.id = new_id("we")
        self.url, self.secret = url, secret
        self.enabled_events = list(enabled_events or ["*"])
        # Set by POST /v1/webhook_endpoints (None from the control API): echoed, as Stripe does.
        self.api_version = fields.get("api_version")
        self.description = fields.get("description")
        self.metadata = fields.get("metadata") or {}
        self.created = int(time.time())
        self.queue: list = []
        self.cond = threading.Condition()
        self.stopped = False
        self.session = requests.Session()
        self.thread = threading.Thread(target=self._run, name=f"webhooks-{self.id}", daemon=True)
        self.thread.start()

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "livemode": False,
            "metadata": self.metadata,
            "secret": self.secret,
            "status": "enabled",
            "url": self.url,
        }

    def schedule(self, delivery: dict, delay: float) -> None:
        with self.cond:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.dispatcher.seq), delivery))
            self.cond.notify()

    def clear(self) -> None:
        with self.cond:
            self.queue.clear()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _next(self) -> dict | None:
        with self.cond:
            while not self.stopped:
                if self.queue:
                    wait = self.queue[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self.queue)[2]
                    self.cond.wait(wait)
                else:
                    self.cond.wait()
        return None

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            self._attempt(delivery)

    def _post(self, payload: str) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, self.secret),
        }
        try:
            resp = self.session.post(
                self.url, data=payload.encode(), headers=headers, timeout=self.dispatcher.settings.webhook_timeout
            )
            return resp.status_code, None
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _attempt(self, delivery: dict) -> None:
        settings = self.dispatcher.settings
        attempt = delivery["attempt"]
        status, error = self._post(delivery["payload"])
        ok = status is not None and 200 <= status < 300
        retry_in = None
        if not ok and attempt < settings.webhook_max_attempts:
            retry_in = settings.webhook_retry_base * 2 ** (attempt - 1)
        self.dispatcher.record(delivery, self, status=status, error=error, retry_in=retry_in)
        if retry_in is not None and delivery["generation"] == self.dispatcher.generation:
            self.schedule({**delivery, "attempt": attempt + 1}, retry_in)


class Dispatcher:
    """Fans events out to endpoints, applying the webhook faults on the way."""

    def __init__(self, state):
        self.state = state
        self.settings = state.settings
        self.lock = threading.Lock()
        self.endpoints: dict[str, Endpoint] = {}
        self.seq = itertools.count()
        self.generation = 0
        self.deliveries: list[dict] = []
        self.acked: set[tuple[str, str]] = set()  # (event id, endpoint id) that answered 2xx
        self.held: list[tuple[dict, dict]] = []
        self.hold_timer: threading.Timer | None = None

    def add_endpoint(self, url: str, secret: str, enabled_events=None, **fields) -> Endpoint:
        endpoint = Endpoint(self, url, secret, enabled_events, **fields)
        with self.lock:
            self.endpoints[endpoint.id] = endpoint
        return endpoint

    def remove_endpoint(self, endpoint_id: str) -> bool:
        with self.lock:
            endpoint = self.endpoints.pop(endpoint_id, None)
        if endpoint:
            endpoint.stop()
        return endpoint is not None

    def count_subscribers(self, event_type: str) -> int:
        with self.lock:
            return sum(_subscribed(e.enabled_events, event_type) for e in self.endpoints.values())

    def publish(self, event: dict) -> None:
        """Queue an event for every subscribed endpoint; never blocks on the network."""
        plan = self.state.faults.webhook_plan()
        if plan["drop"]:
            self._fan_out(event, plan)
            return
        if not plan["reorder"]:
            self._fan_out(event, plan)
            return
        window, hold = self.state.faults.reorder_window()
        with self.lock:
            self.held.append((event, plan))
            full = len(self.held) >= window
            if not full and self.hold_timer is None:
                self.hold_timer = threading.Timer(hold, self._flush)
                self.hold_timer.daemon = True
                self.hold_timer.start()
        if full:
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            held, self.held = self.held, []
            if self.hold_timer is not None:
                self.hold_timer.cancel()
                self.hold_timer = None
        for event, plan in self.state.faults.shuffle(held) if held else []:
            self._fan_out(event, plan)

    def _fan_out(self, event: dict, plan: dict) -> None:
        payload = json.dumps(event, indent=2)
        with self.lock:
            targets = [e for e in self.endpoints.values() if _subscribed(e.enabled_events, event["type"])]
        for endpoint in targets:
            delivery = {
                "event_id": event["id"],
                "event_type": event["type"],
                "payload": payload,
                "attempt": 1,
                "duplicate": False,
                "generation": self.generation,
            }
            if plan["drop"]:
                self.record(delivery, endpoint, status=None, error="dropped by fault", retry_in=None)
                continue
            endpoint.schedule(delivery, plan["delay"])
            if plan["duplicate"]:
                endpoint.schedule({**delivery, "duplicate": True}, plan["delay"] + 0.05)

    def record(self, delivery: dict, endpoint: Endpoint, *, status, error, retry_in) -> None:
        """Log one attempt for GET /_sandbox/deliveries."""
        entry = {
            "id": new_id("whatt", 16),
            "event_id": delivery["event_id"],
            "event_type": delivery["event_type"],
            "endpoint": endpoint.id,
            "url": endpoint.url,
            "attempt": delivery["attempt"],
            "status_code": status,
            "error": error,
            "duplicate": delivery["duplicate"],
            "dropped": error == "dropped by fault",
            "retry_in": retry_in,
            "at": time.time(),
        }
        first_ack = False
        with self.lock:
            if delivery["generation"] == self.generation:
                self.deliveries.append(entry)
                if status is not None and 200 <= status < 300 and (delivery["event_id"], endpoint.id) not in self.acked:
                    self.acked.add((delivery["event_id"], endpoint.id))
                    first_ack = True
        if first_ack:
            self.state.acknowledged(delivery["event_id"])

    def list_deliveries(self, event_id: str | None = None) -> list[dict]:
        with self.lock:
            return [d for d in self.deliveries if event_id in (None, d["event_id"])]

    def reset(self) -> None:
        """Forget queued deliveries and the log; keep the endpoints."""
        with self.lock:
            self.generation += 1
            self.deliveries.clear()
            self.acked.clear()
            self.held.clear()
            endpoints = list(self.endpoints.values())
        for endpoint in endpoints:
            endpoint.clear()

    def stop(self) -> None:
        with self.lock:
            endpoints = list(self.endpoints.values())
        for endpoint in endpoints:
            endpoint.stop()
