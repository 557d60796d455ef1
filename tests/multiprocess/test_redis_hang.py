"""A Redis that hangs (SIGSTOP) rather than refusing: the store keeps answering, serving and taking payments.

The store runs as a deployment does: the production server (gunicorn, gevent) and the demo server
(eventlet) on one PostgreSQL database, with a separate `flask worker`, all on a Redis of the test's own
(the shared one is never stopped) that carries the pushes, the update budget and the rate limits.
"""

import json
import signal
import statistics
import subprocess
import sys
import time
import uuid

import pytest
import requests

from bench.stack import ServerProcess, free_port, store_env
from tests.conftest import wait_for
from tests.multiprocess.conftest import Shopper

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(150)]

HANG_SECONDS = 20
SKIPPED = "going on without it"
BACK = "answers again"


@pytest.fixture
def store(postgres_url, own_redis, metered_sandbox, tmp_path):
    """Two web processes (gunicorn/gevent and eventlet) and a worker, on the test's Redis."""
    _, url = own_redis
    secret = "whsec_" + uuid.uuid4().hex
    common = {
        "database_url": postgres_url,
        "sandbox_port": metered_sandbox.port,
        "webhook_secret": secret,
        "secret_key": "test-" + uuid.uuid4().hex,
        "queue": url,
        "channel": f"storefront-test-{uuid.uuid4().hex}",
        "RATELIMIT_STORAGE_URI": url,  # the limiter's counts in Redis too: its calls must not wait either
        "CART_RATE_LIMIT": "1000 per second",
        "REDIS_RETRY_SECONDS": "2",
        "SYNC_COALESCE_SECONDS": "0.01",
        "RECONCILE_INTERVAL_SECONDS": "0",  # orders come from the worker's webhook events, not a reconcile
        "WORKER": "off",
    }
    web = [
        ServerProcess.production("store1", store_env(port=free_port(), **common), tmp_path),
        ServerProcess.store("store2", store_env(port=free_port(), **common), tmp_path),
    ]
    processes = list(web)
    try:
        for process in web:
            process.wait_ready()
        processes.append(ServerProcess.worker("worker", store_env(port=0, **common), tmp_path).wait_ready())
        metered_sandbox.add_webhook_endpoint(f"{web[0].url}/webhooks/stripe", secret)
        yield web
    finally:
        for process in processes:
            process.stop()


# Light load from a process of its own (the test process's threads, sandbox and tabs would skew its clocks):
# shoppers changing their carts through both web processes, ~10 changes a second, each change timed.
LOAD = """
import json, sys, threading, time, requests
urls, stop, timings = sys.argv[1:], threading.Event(), []
def shop(index):
    session, step = requests.Session(), 0
    while not stop.is_set():
        url = urls[(index + step) % len(urls)]
        began = time.time()
        try:
            status = session.put(url + "/api/cart/items/1", json={"quantity": step % 5 + 1}, timeout=15).status_code
        except requests.RequestException as err:
            status = repr(err)
        timings.append((url, began, time.time() - began, status))
        step += 1
        stop.wait(0.1)
threads = [threading.Thread(target=shop, args=(i,)) for i in range(2)]
for thread in threads:
    thread.start()
sys.stdin.read()
stop.set()
for thread in threads:
    thread.join()
print(json.dumps(timings))
"""


class Load:
    """The load process: started, then stopped for its (url, began, seconds, status) of every change."""

    def __init__(self, processes):
        command = [sys.executable, "-c", LOAD, *(process.url for process in processes)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self):
        output, _ = self._process.communicate("", timeout=30)
        return json.loads(output)


def handshake_and_pay(sandbox, shopper, process):
    """Fill a cart, start checkout, shake hands (timed) and pay as Stripe.js does; (order id, cart, seconds)."""
    cart = shopper.change(process, 4, 2)
    status, started = shopper.call(process, "POST", "/api/checkout")
    assert status == 200, started
    began = time.monotonic()
    status, confirmed = shopper.call(process, "POST", "/api/checkout/confirm", json={"cart_version": cart["version"]})
    handshake_seconds = time.monotonic() - began
    assert status == 200, confirmed
    paid = requests.post(
        f"{sandbox.url}/v1/payment_intents/{started['payment_intent_id']}/confirm",
        data={"client_secret": started["client_secret"], "payment_method": "pm_card_visa", "return_url": process.url},
        headers={"Authorization": f"Bearer {sandbox.publishable_key}"},
        timeout=20,
    ).json()
    assert paid.get("status") == "succeeded", paid
    return confirmed["order_id"], cart, handshake_seconds


def _figures(timings):
    """Median, p95 and max of some sorted durations, in ms."""
    p95 = statistics.quantiles(timings, n=20)[-1] if len(timings) > 1 else timings[-1]
    return (
        f"median {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms"
    )


def _log(process):
    return process.log_path.read_text(errors="replace")


def order_status(shopper, process, order_id):
    return shopper.call(process, "GET", f"/api/orders/{order_id}")[1]["status"]


def test_a_hung_redis_holds_nothing_and_pushes_catch_up(own_redis, store, metered_sandbox):
    redis_process, _ = own_redis
    gevent_store, eventlet_store = store
    payer, watcher = Shopper(), Shopper()
    payer.cart(gevent_store)
    remote_tab = payer.tab(eventlet_store)  # the payer's tab on the other process: its pushes cross Redis
    before = payer.change(gevent_store, 2, 1)
    remote_tab.wait_for_cart(lambda c: c["version"] == before["version"], "a push across processes before the hang")
    load = Load(store)
    time.sleep(3)

    redis_process.send_signal(signal.SIGSTOP)
    stopped_at = time.time()
    try:
        # New tabs connect, on both servers, and get their cart.
        for process in store:
            watcher.cart(process)
            watcher.tab(process).wait_for_cart(lambda c: True, f"the cart of a tab opened on {process.name}")
        # The handshake answers, and the payment becomes an order, while Redis is still stopped.
        order_id, during, handshake_seconds = handshake_and_pay(metered_sandbox, payer, gevent_store)
        paid = lambda: order_status(payer, gevent_store, order_id) == "paid"  # noqa: E731
        wait_for(paid, timeout=stopped_at + HANG_SECONDS - 1 - time.time(), message="the order, Redis still stopped")
        assert order_status(payer, eventlet_store, order_id) == "paid"
        time.sleep(max(0.0, stopped_at + HANG_SECONDS - time.time()))
        hung_for = time.time() - stopped_at
        missed = [c for c in remote_tab.pushes("cart") if c["version"] >= during["version"]]
    finally:
        redis_process.send_signal(signal.SIGCONT)
    resumed_at = time.time()
    changes = load.stop()

    assert hung_for < HANG_SECONDS + 2, "the steps above took the whole hang: it proved nothing"
    assert missed == [], "pushes crossed processes while Redis was stopped: it was not hung"
    assert all(status == 200 for *_, status in changes), [c for c in changes if c[-1] != 200][:5]
    timings = sorted(seconds for _, began, seconds, _ in changes if stopped_at <= began < resumed_at)
    assert len(timings) > 100, len(timings)
    healthy = sorted(seconds for _, began, seconds, _ in changes if began < stopped_at)
    figures = f"while hung: {_figures(timings)}; healthy, just before: {_figures(healthy)}"
    # The bound is a change answered under 100 ms. The typical change meets it here; the slow tail
    # is the test machine's (2 cores shared with other suites: a healthy store's p95 just before the hang
    # is ~100 ms, changes around the payment wait for CPU), hence a generous 250 ms at p95. A change that
    # waited on Redis would take its whole hang (it took 10 s before the deadline), hence 2 s at most.
    assert statistics.median(timings) < 0.1, figures
    assert statistics.quantiles(timings, n=20)[-1] < 0.25, figures
    assert timings[-1] < 2.0, figures
    assert handshake_seconds < 2.0, handshake_seconds  # it took 10 s when the handshake waited on Redis

    # Redis is back: what the other process's tab missed arrives, and later pushes flow as before.
    remote_tab.wait_for_cart(lambda c: c["version"] >= during["version"], "the hang's last cart, caught up")
    wait_for(
        lambda: any(o["id"] == order_id and o["status"] == "paid" for o in remote_tab.pushes("order")),
        timeout=20,
        message="the order's push from the worker, caught up",
    )
    watcher_tab = watcher.tabs[1]  # on the eventlet process
    after = watcher.change(gevent_store, 3, 2)
    watcher_tab.wait_for_cart(lambda c: c["version"] == after["version"], "a push across processes after the hang")
    for process in store:
        # A process meets Redis again on its next push, or on its sender's retry (REDIS_RETRY_SECONDS).
        wait_for(lambda p=process: BACK in _log(p), timeout=10, message=f"{process.name} to find Redis again")
        # One line when Redis starts being skipped, one when it answers again: not one per call.
        assert _log(process).count(SKIPPED) == 1 and _log(process).count(BACK) == 1, process.log_tail()
    for tab in payer.tabs + watcher.tabs:
        tab.close()
