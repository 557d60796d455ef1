"""The worker as its own process: a web process at WORKER=off calls Stripe on no cart change, and the
worker, started late, brings every lagging PaymentIntent to its cart and pushes it through Redis."""

import secrets
import signal
import subprocess
import time
import uuid

import pytest

from bench.stack import ServerProcess, free_port, store_env
from tests.conftest import wait_for
from tests.multiprocess.conftest import Shopper, worker_process

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture
def web_env(postgres_url, redis_url, metered_sandbox):
    """One store process's environment, its background work off."""
    return store_env(
        port=free_port(),
        database_url=postgres_url,
        sandbox_port=metered_sandbox.port,
        webhook_secret="whsec_" + secrets.token_hex(16),
        secret_key="test-" + secrets.token_hex(16),
        queue=redis_url,
        channel=f"storefront-test-{uuid.uuid4().hex}",
        SYNC_COALESCE_SECONDS="0.01",
        WORKER="off",
        WORKER_POLL_SECONDS="0.1",
        RECONCILE_INTERVAL_SECONDS="0",
    )


def charges(cart):
    return lambda pushed: (
        pushed["version"] == cart["version"] and (pushed["payment"] or {}).get("amount") == cart["total"]
    )


def test_changes_call_no_stripe_until_the_worker_starts_and_brings_the_payment_intent(
    web_env, metered_sandbox, tmp_path
):
    meter = metered_sandbox.meter
    web = ServerProcess.store("web", web_env, tmp_path).wait_ready()
    shopper = Shopper()
    try:
        shopper.change(web, 1, 1)
        status, started = shopper.call(web, "POST", "/api/checkout")
        assert status == 200, started
        tab = shopper.tab(web)
        meter.reset()
        for quantity in (2, 3, 4):
            cart = shopper.change(web, 1, quantity)
        # Longer than a coalesced sync takes: an embedded worker would have updated Stripe by now.
        time.sleep(1.5)
        assert meter.snapshot()["calls"] == {}, "a web process with WORKER=off called Stripe on a cart change"
        assert shopper.cart(web)["payment"]["amount"] != cart["total"]

        worker = worker_process(web_env, tmp_path)  # the poll finds the cart left lagging while it was down
        try:
            tab.wait_for_cart(charges(cart), "the worker's push: the PaymentIntent charges the latest total")
            assert metered_sandbox.state.payment_intents[started["payment_intent_id"]]["amount"] == cart["total"]
            assert [u["cart_version"] for u in meter.snapshot()["updates"]] == [str(cart["version"])]
            cart = shopper.change(web, 2, 1)
            tab.wait_for_cart(charges(cart), "the running worker following the next change")
        finally:
            worker.stop()
        assert worker.process.returncode == 0, worker.log_tail()
    finally:
        for tab in shopper.tabs:
            tab.close()
        web.stop()


def worker_children(pid):
    """Process ids of `flask … worker` processes whose parent is `pid`."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "flask" in line and line.rstrip().endswith("worker")]


def alive(pid):
    return subprocess.run(["ps", "-p", str(pid)], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    ("start", "worker"),
    [(ServerProcess.store, ""), (ServerProcess.production, "process")],
    ids=["wsgi.py", "gunicorn"],
)
def test_the_server_starts_its_worker_beside_itself_and_sigterm_stops_both(web_env, tmp_path, start, worker):
    # The demo with a message queue and no WORKER runs the worker as its own process; gunicorn only when
    # asked (WORKER=process): in production the worker is its own supervised service.
    env = {**web_env, "WORKER": worker}
    web = start("web", env, tmp_path).wait_ready()
    try:
        worker_pids = wait_for(lambda: worker_children(web.process.pid), timeout=20, message="the worker process")
        assert len(worker_pids) == 1
        web.process.send_signal(signal.SIGTERM)
        assert web.process.wait(40) == 0
        wait_for(lambda: not any(alive(pid) for pid in worker_pids), timeout=10, message="the worker to stop too")
    finally:
        web.stop()


def test_gunicorn_starts_no_worker_unless_asked(web_env, tmp_path):
    web = ServerProcess.production("web", {**web_env, "WORKER": ""}, tmp_path).wait_ready()
    try:
        time.sleep(2)  # a worker child would have been started before the web worker booted
        assert worker_children(web.process.pid) == []
    finally:
        web.stop()
