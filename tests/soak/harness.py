"""The soak's stage: the Stripe sandbox in its own process with faults on, the storefront serving its webhook
over HTTP, shoppers in a thread pool, then quiet, `flask reconcile`, and the invariant checker."""

import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import requests
import stripe
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from storefront import create_app
from storefront.extensions import db, socketio
from storefront.models import Cart
from storefront.payments.reconcile import reconcile
from storefront.wiring import current_shop
from tests.conftest import store_config
from tests.soak import checker
from tests.soak.shoppers import Shopper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAULTS = {
    "latency": {"median_ms": 15, "p99_ms": 150},
    "error_rate": 0.03,
    "hang_rate": 0.002,
    "hang_seconds": 3,
    "lock_timeout": {"wait_ms": 0},
    "rate_limit": {"per_endpoint_rps": 15},
    "webhook_delay_ms": 150,
    "webhook_duplicate_rate": 0.15,
    "webhook_drop_rate": 0.05,
    "webhook_reorder": {"window": 4, "hold_ms": 150},
}
WEBHOOK_ENDPOINTS = 3
STORE = {
    "STRIPE_TIMEOUT": 2,
    "STRIPE_MAX_RETRIES": 3,
    "FREEZE_SECONDS": 1,
    "SYNC_LEASE_SECONDS": 5,
    "SYNC_COALESCE_SECONDS": 0.05,
    "CART_RATE_LIMIT": "20 per second; 600 per hour",
    "LOG_LEVEL": "ERROR",
    "ADMIN_PASSWORD": "soak-merchant",
    # Shoppers pay by card and by SEPA Debit, which takes eur only (as on Stripe): the soak's store sells in eur.
    "CURRENCY": "eur",
}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:soak-merchant").decode()}
# Stock the merchant sets once, before the shoppers: the checker holds these to an exact ledger.
LEDGER_STOCK = {7: 12, 8: 20}
# Stock the merchant keeps setting while shoppers pay (never negative, never below what is reserved).
MOVING_STOCK = 6


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(condition, timeout, interval=0.05):
    """Poll until condition() is truthy; its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Soak:
    """One soak run: `Soak(...).run()` returns (summary line, violations)."""

    def __init__(self, tmp_path, shoppers, actions, workers=24, seed=1, database_url=None):
        self.tmp_path, self.shoppers, self.actions, self.workers, self.seed = tmp_path, shoppers, actions, workers, seed
        self.database_url = database_url or f"sqlite:///{tmp_path / 'soak.sqlite3'}"
        self.wait = wait
        self.publishable_key = "pk_test_sandbox"
        self.crashes = []
        self.merchant_answers = Counter()

    # --- the stage --------------------------------------------------------------------------------

    def start(self):
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.sandbox_log = open(self.tmp_path / "sandbox.log", "w")  # noqa: SIM115 - the child writes to it
        self.sandbox = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stripe_sandbox",
                "--port",
                str(port),
                "--quiet",
                "--seed",
                str(self.seed),
                "--sepa-delay",
                "0.5",
                "--webhook-retry-base",
                "0.25",
                "--webhook-max-attempts",
                "6",
            ],
            cwd=ROOT,
            stdout=self.sandbox_log,
            stderr=subprocess.STDOUT,
        )
        assert wait(self._sandbox_up, 20), "the sandbox did not start"
        sandbox = SimpleNamespace(
            url=self.sandbox_url, secret_key="sk_test_sandbox", publishable_key=self.publishable_key
        )
        self.app = create_app(store_config(self.database_url, sandbox, **STORE))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        # Stripe delivers concurrently; the sandbox delivers each endpoint's events one at a time. Three endpoints
        # on one URL deliver in parallel, and every event arrives three times, often at the same moment.
        for _ in range(WEBHOOK_ENDPOINTS):
            self.control(
                "POST",
                "/webhook_endpoints",
                {
                    "url": f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe",
                    "secret": self.app.config["STRIPE_WEBHOOK_SECRET"],
                },
            )
        self.control("POST", "/faults", {**FAULTS, "seed": self.seed})
        self.stripe = stripe.StripeClient(
            "sk_test_sandbox", base_addresses={"api": self.sandbox_url}, max_network_retries=5
        )

    def _sandbox_up(self):
        try:
            return requests.get(f"{self.sandbox_url}/_sandbox/state", timeout=1).ok
        except requests.RequestException:
            return False

    def control(self, method, path, body=None):
        answer = requests.request(method, f"{self.sandbox_url}/_sandbox{path}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def tab(self, client):
        return socketio.test_client(self.app, flask_test_client=client)

    def stop(self):
        self.server.shutdown()
        self.sandbox.terminate()
        self.sandbox.wait(10)
        self.sandbox_log.close()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    # --- the run ----------------------------------------------------------------------------------

    def shopper(self, index, actions):
        try:
            return Shopper(self, index).run(actions)
        except Exception:  # noqa: BLE001 - a crashed shopper is a finding, reported with its traceback
            self.crashes.append(traceback.format_exc())
            return None

    def periodic_reconcile(self, stop):
        """What PeriodicReconcile does in the server, every 5 s, racing shoppers and webhooks."""
        while not stop.wait(5):
            with self.app.app_context():
                try:
                    reconcile(current_shop(), older_than_seconds=5)
                except Exception:  # noqa: BLE001 - as PeriodicReconcile does: log and go on
                    self.crashes.append("periodic reconcile: " + traceback.format_exc())
                finally:
                    db.session.remove()

    def merchant_call(self, client, product_id, **changes):
        answer = client.patch(f"/admin/api/products/{product_id}", json=changes, headers=ADMIN)
        code = (answer.get_json(silent=True) or {}).get("error", {}).get("code", "")
        self.merchant_answers[f"{answer.status_code}{' ' + code if code else ''}"] += 1
        if answer.status_code >= 500 or answer.status_code not in (200, 409):
            self.crashes.append(f"merchant: {changes} on product {product_id} answered {answer.status_code} {code}")
        return answer

    def stock_up(self):
        """Before the shoppers: the ledger products and the moving one get their first stock."""
        client = self.app.test_client()
        for product_id, units in {**LEDGER_STOCK, MOVING_STOCK: 4}.items():
            assert self.merchant_call(client, product_id, stock=units).status_code == 200

    def merchant(self, stop):
        """The merchant at work while shoppers pay: prices up and down, one product's stock set again and again."""
        rng, client = random.Random(self.seed * 7919), self.app.test_client()
        base = {p["id"]: p["unit_amount"] for p in client.get("/admin/api/products", headers=ADMIN).get_json()}
        while not stop.wait(rng.uniform(0.1, 0.5)):
            try:
                if rng.random() < 0.7:
                    product_id = rng.choice(sorted(base))
                    price = base[product_id] * rng.choice((8, 9, 10, 11)) // 10
                    self.merchant_call(client, product_id, unit_amount=price)
                else:
                    self.merchant_call(client, MOVING_STOCK, stock=rng.randint(0, 6))
            except Exception:  # noqa: BLE001 - a crash is a finding
                self.crashes.append("merchant: " + traceback.format_exc())

    def quiet(self, timeout=300):
        """Wait until Stripe has nothing in flight: no SEPA processing, no webhook pending, no sync running.

        Returns "" once quiet, else what was still busy at the deadline."""
        busy = [""]

        def calm():
            busy[0] = self.busy()
            return not busy[0]

        wait(calm, timeout, interval=0.5)
        return busy[0]

    def busy(self):
        state = self.control("GET", "/state")
        if state["payment_intent_statuses"].get("processing"):
            return f"{state['payment_intent_statuses']['processing']} payments processing"
        deliveries = self.control("GET", "/deliveries")["data"]
        last = {}
        for d in deliveries:
            last[(d["event_id"], d["endpoint"], d["duplicate"])] = d
        undelivered = state["events"] * WEBHOOK_ENDPOINTS - len({(d["event_id"], d["endpoint"]) for d in deliveries})
        if undelivered:
            return f"{undelivered} events never attempted"
        retrying = [d for d in last.values() if d["retry_in"] is not None]
        if retrying:
            return f"{len(retrying)} deliveries awaiting a retry, e.g. {retrying[0]}"
        with self.app.app_context():
            syncing = db.session.execute(select(func.count()).where(Cart.sync_owner.is_not(None))).scalar()
            db.session.remove()
        return f"{syncing} PaymentIntent syncs holding a lease" if syncing else ""

    def reconcile_command(self):
        result = self.app.test_cli_runner().invoke(args=["reconcile", "--older-than", "0"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    def run(self):
        self.start()
        try:
            return self._run()
        finally:
            self.stop()

    def _run(self):
        began = time.monotonic()
        stop = threading.Event()
        reconciler = threading.Thread(target=self.periodic_reconcile, args=(stop,), daemon=True)
        reconciler.start()
        self.stock_up()
        merchant = threading.Thread(target=self.merchant, args=(stop,), daemon=True)
        merchant.start()
        plan = [(i, max(1, round(self.actions * (0.5 + i % 11 / 10)))) for i in range(self.shoppers)]
        with ThreadPoolExecutor(self.workers) as pool:
            traces = [t for t in pool.map(lambda p: self.shopper(*p), plan) if t is not None]
        timings = {"shopping": time.monotonic() - began}
        stop.set()
        reconciler.join(60)
        merchant.join(60)
        calm = self.quiet()
        faults = self.control("GET", "/faults/stats")
        self.control("DELETE", "/faults")
        final = [self.reconcile_command()]
        self.quiet()
        final.append(self.reconcile_command())
        self.quiet()
        intents = [pi.to_dict() for pi in self.stripe.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()]
        refunds = [r.to_dict() for r in self.stripe.v1.refunds.list(params={"limit": 100}).auto_paging_iter()]
        violations, orders = checker.check(self.app, traces, intents, refunds, ledger=LEDGER_STOCK)
        loud = [f"Stripe never went quiet after the shoppers: {calm}"] if calm else []
        violations = self.crashes + loud + violations
        timings["total"] = time.monotonic() - began
        line = summary(traces, intents, refunds, orders, faults, final, timings, violations)
        return f"{line}; merchant answers {counted(self.merchant_answers)}", violations


def counted(counter):
    return "{" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) + "}"


def summary(traces, intents, refunds, orders, faults, final, timings, violations):
    """The one-line report of a run."""
    kinds, answers, methods = Counter(), Counter(), Counter()
    for trace in traces:
        kinds.update(trace.kinds)
        methods.update(trace.payments)
        for (_, status, code), count in trace.statuses.items():
            answers[f"{status}{' ' + code if code else ''}"] += count
    operations = sum(kinds.values())
    applied = sum(s["payments_applied"] + s["orders_checked"] for s in final)
    return (
        f"soak: {len(traces)} shoppers, {operations} operations {counted(kinds)} in {timings['shopping']:.0f}s "
        f"({operations / timings['shopping']:.0f}/s, {timings['total']:.0f}s with settling and checking); "
        f"paid with {counted(methods)}; PaymentIntents {counted(Counter(pi['status'] for pi in intents))}; "
        f"orders {counted(Counter(o['status'] for o in orders))}; refunds {len(refunds)}; "
        f"faults injected {counted(faults)}; storefront answers {counted(answers)}; "
        f"final reconcile applied {applied}; violations {len(violations)}"
    )
