"""A WSGI middleware in front of the Stripe sandbox that counts what the storefront asks of Stripe.

It classifies each API call, keeps every PaymentIntent update (which PaymentIntent, which cart
version, when it started and ended, its status) and the largest number of updates of one
PaymentIntent ever in flight at once. An optional gate holds updates until it is opened, so a
test can make changes while an update is known to be in flight.
"""

import io
import json
import re
import threading
import time
from collections import Counter
from urllib.parse import parse_qsl

UPDATE = re.compile(r"^/v1/payment_intents/(pi_[A-Za-z0-9]+)$")
ROUTES = [
    (re.compile(r"^/v1/payment_intents/pi_[A-Za-z0-9]+/confirm$"), "confirm"),
    (re.compile(r"^/v1/payment_intents/pi_[A-Za-z0-9]+/\w+$"), "payment_intent_action"),
    (re.compile(r"^/v1/payment_intents$"), "payment_intent_list_or_create"),
    (re.compile(r"^/v1/refunds"), "refund"),
]
METER_PATH = "/_bench/meter"


def route_kind(method, path):
    """A short name for one Stripe API call."""
    if UPDATE.match(path):
        return "update" if method == "POST" else "retrieve"
    for pattern, kind in ROUTES:
        if pattern.match(path):
            if kind == "payment_intent_list_or_create":
                return "create" if method == "POST" else "list"
            return kind
    return "other"


class StripeMeter:
    """Counts Stripe API calls passing through to the wrapped sandbox app."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.reset()

    def reset(self):
        """Forget everything counted so far (the gate stays as it is)."""
        with self.lock:
            self.calls = Counter()
            self.statuses = Counter()
            self.updates = []
            self.log = []
            self.in_flight = Counter()
            self.max_in_flight = 0

    def hold_updates(self):
        """From now on, PaymentIntent updates wait at the door until `release_updates()`."""
        self.gate.clear()

    def release_updates(self):
        self.gate.set()

    def snapshot(self):
        """Counters and the update log, as plain data."""
        with self.lock:
            return {
                "calls": dict(self.calls),
                "statuses": {f"{kind} {status}": n for (kind, status), n in self.statuses.items()},
                "updates": [dict(u) for u in self.updates],
                "log": list(self.log),
                "in_flight": sum(self.in_flight.values()),
                "max_in_flight_per_payment_intent": self.max_in_flight,
            }

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == METER_PATH:
            return self._serve_meter(method, start_response)
        if not path.startswith("/v1/"):
            return self.app(environ, start_response)
        kind, started = route_kind(method, path), time.monotonic()
        update = self._begin_update(environ, path) if kind == "update" else None
        status_holder = {}

        def recording_start_response(status, headers, exc_info=None):
            status_holder["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        try:
            body = list(self.app(environ, recording_start_response))
        finally:
            self._finish(kind, started, update, status_holder.get("status", 0))
        return body

    def _begin_update(self, environ, path):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        form = dict(parse_qsl(raw.decode()))
        pi_id = UPDATE.match(path).group(1)
        with self.lock:
            self.in_flight[pi_id] += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight[pi_id])
            entry = {
                "payment_intent": pi_id,
                "cart_version": form.get("metadata[cart_version]"),
                "amount": int(form["amount"]) if form.get("amount", "").isdigit() else None,
                "started": time.monotonic(),
            }
            self.updates.append(entry)
        self.gate.wait()
        return entry

    def _finish(self, kind, started, update, status):
        with self.lock:
            self.calls[kind] += 1
            self.log.append((kind, started, status))
            self.statuses[(kind, status)] += 1
            if update is not None:
                self.in_flight[update["payment_intent"]] -= 1
                update["ended"] = time.monotonic()
                update["status"] = status

    def _serve_meter(self, method, start_response):
        if method == "DELETE":
            self.reset()
        body = json.dumps(self.snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
