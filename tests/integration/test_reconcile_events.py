"""Reconciliation at scale: missed webhooks come from Stripe's events, one pass per store, paced, and a
`flask reconcile` that could not ask Stripe says so with its exit code."""

import json
import threading
import time

import pytest

from storefront.extensions import db
from storefront.payments.lease import take_turn
from storefront.payments.reconcile import PacedGateway
from tests.conftest import wait_for
from tests.shopping import browser_confirm, control, order_status, start_and_confirm

pytestmark = pytest.mark.timeout(60)


def reconcile_cli(store, *args):
    result = store.app.test_cli_runner().invoke(args=["reconcile", *args])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_a_dropped_webhook_is_found_in_stripes_events_and_applied_once(store):
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (1, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    wait_for(lambda: control(store.sandbox.url, "GET", "/deliveries")["data"], message="the dropped delivery")

    # Orders awaiting payment are not looked at (--older-than): only the events can tell.
    status, summary = reconcile_cli(store, "--older-than", "99999")
    assert status == 0, summary
    assert summary["orders_checked"] == 0 and summary["payments_applied"] == 1
    assert shopper.get(f"/api/orders/{order_id}").get_json()["status"] == "paid"
    status, again = reconcile_cli(store, "--older-than", "99999")
    assert (status, again["events_checked"] >= 1, again["payments_applied"]) == (0, True, 0)


def test_a_store_whose_webhooks_arrive_reads_no_events(store):
    shopper = store.client()
    _, started, order_id = start_and_confirm(shopper, (2, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] == 200
    order_status(shopper, order_id, "paid")
    wait_for(
        lambda: all(d["status_code"] == 200 for d in control(store.sandbox.url, "GET", "/deliveries")["data"]),
        message="every delivery acknowledged",
    )
    status, summary = reconcile_cli(store, "--older-than", "99999")
    assert (status, summary["events_checked"], summary["payments_applied"]) == (0, 0, 0)


def test_reconcile_exits_non_zero_when_stripe_cannot_be_reached(make_store):
    store = make_store(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_MAX_RETRIES=0, STRIPE_TIMEOUT=2)
    status, summary = reconcile_cli(store, "--older-than", "0")
    assert status == 1 and summary["errors"] >= 1


def test_reconcile_exits_non_zero_when_stripe_answers_errors(store):
    control(store.sandbox.url, "POST", "/faults", {"error_rate": 1.0})
    status, summary = reconcile_cli(store, "--older-than", "0")
    assert status == 1 and summary["errors"] >= 1


@pytest.mark.postgres
def test_two_stores_on_one_database_take_turns_reconciling(make_store, sandbox, postgres_url):
    interval = 1.0
    stores = [
        make_store(sandbox=sandbox, database_url=postgres_url, RECONCILE_INTERVAL_SECONDS=interval) for _ in range(2)
    ]
    passes, lock = [], threading.Lock()
    for index, store in enumerate(stores):
        gateway = store.app.extensions["gateway"]
        list_events = gateway.list_events

        def counted(*args, _index=index, _list=list_events, **kwargs):
            with lock:
                passes.append((time.monotonic(), _index))
            return _list(*args, **kwargs)

        gateway.list_events = counted
        store.app.extensions["worker"].start()
    wait_for(lambda: len(passes) >= 4, timeout=30, message="four reconciliation passes")
    for store in stores:
        store.app.extensions["worker"].stop()
    with lock:
        starts = [at for at, _ in passes]
    # One pass per interval for the store, whichever process runs it: never two within one interval.
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= interval * 0.95, gaps


@pytest.mark.postgres
def test_only_one_process_gets_the_turn(make_store, postgres_url):
    first, second = (make_store(database_url=postgres_url, STRIPE_SECRET_KEY="sk_test_unused") for _ in range(2))
    with first.app.app_context():
        now = db.session.execute(db.text("SELECT LOCALTIMESTAMP")).scalar()
        db.session.commit()
    outcomes = []
    for holder, store in (("one", first), ("two", second)):
        with store.app.app_context():
            outcomes.append(take_turn(db.session, "reconcile-test", holder, now=now, hold_seconds=60))
            db.session.remove()
    assert outcomes == [True, False]


class RecordingBudget:
    def __init__(self, log):
        self.log = log

    def wait(self):
        self.log.append("wait")


class StubGateway:
    def __init__(self, log):
        self.log = log

    def retrieve(self, pi_id):
        self.log.append(f"retrieve {pi_id}")

    def verify_event(self, payload, signature, secret):
        self.log.append("verify")


def test_every_stripe_call_of_a_pass_waits_for_its_slot_first():
    log = []
    paced = PacedGateway(StubGateway(log), RecordingBudget(log))
    paced.retrieve("pi_1")
    paced.retrieve("pi_2")
    paced.verify_event(b"{}", "sig", "whsec")  # local: no request to Stripe, no slot
    assert log == ["wait", "retrieve pi_1", "wait", "retrieve pi_2", "verify"]


def test_the_command_keeps_to_the_reconciliation_budget(make_store, sandbox):
    store = make_store(sandbox=sandbox, RECONCILE_REQUESTS_PER_SECOND=4)
    shoppers = [store.client() for _ in range(3)]
    for shopper in shoppers:
        start_and_confirm(shopper, (1, 1))
    calls = []
    gateway = store.app.extensions["gateway"]

    def record():  # the pass's calls; webhooks its cancels cause are served (unpaced) by the server's threads
        if threading.current_thread() is threading.main_thread():
            calls.append(time.monotonic())

    for name in ("retrieve", "list_events", "cancel"):
        real = getattr(gateway, name)
        setattr(gateway, name, lambda *a, _real=real, **k: (record(), _real(*a, **k))[1])
    status, summary = reconcile_cli(store, "--older-than", "0")
    assert status == 0 and summary["orders_checked"] == 3 and len(calls) >= 4
    gaps = [later - earlier for earlier, later in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.25 * 0.9, gaps
