"""Two store processes (the eventlet demo server, then the gunicorn/gevent production server) on PostgreSQL
and a Redis message queue serve one store."""

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]


def version_is(cart):
    return lambda pushed: pushed["version"] == cart["version"] and pushed["total"] == cart["total"]


def charges_total(cart):
    """A push of this version whose PaymentIntent amount is the total: Stripe has the change."""
    return lambda pushed: version_is(cart)(pushed) and (pushed["payment"] or {}).get("amount") == cart["total"]


def test_a_change_through_one_process_reaches_tabs_on_the_other(cluster, shoppers):
    shopper, stranger = shoppers(), shoppers()
    first = shopper.cart(cluster[0])
    stranger.cart(cluster[1])
    websocket_tab, polling_tab = shopper.tab(cluster[1], "websocket"), shopper.tab(cluster[1], "polling")
    home_tab, spy = shopper.tab(cluster[0]), stranger.tab(cluster[1])
    for tab in (websocket_tab, polling_tab, home_tab):
        tab.wait_for_cart(version_is(first), "the cart sent on connect")

    cart = shopper.change(cluster[0], 1, 2)
    for tab in (websocket_tab, polling_tab, home_tab):
        tab.wait_for_cart(version_is(cart), "the change made through process 1")
    cart = shopper.change(cluster[1], 2, 1)
    for tab in (websocket_tab, polling_tab, home_tab):
        tab.wait_for_cart(version_is(cart), "the change made through process 2")

    spied = {pushed["id"] for pushed in spy.pushes("cart")}
    assert len(spied) == 1 and cart["id"] not in spied


def test_a_tab_reconnecting_to_either_process_starts_from_the_latest_cart(cluster, shoppers):
    shopper = shoppers()
    shopper.cart(cluster[0])
    tab = shopper.tab(cluster[1])
    tab.close()
    cart = shopper.change(cluster[0], 5, 3)  # pushed while the tab was away
    for process in cluster.processes:
        shopper.tab(process).wait_for_cart(version_is(cart), f"the latest cart on reconnecting to {process.name}")


def test_a_burst_through_both_processes_gives_one_payment_intent_update_at_a_time(cluster, shoppers):
    sandbox, meter = cluster.sandbox, cluster.sandbox.meter
    shopper = shoppers()
    shopper.change(cluster[0], 1, 1)
    status, started = shopper.call(cluster[0], "POST", "/api/checkout")
    assert status == 200, started
    pi_id = started["payment_intent_id"]
    tab = shopper.tab(cluster[1])

    for burst, (first, other) in enumerate([(0, 1), (1, 0)]):
        wait_for(lambda: meter.snapshot()["in_flight"] == 0, message="no update in flight")
        meter.reset()
        meter.hold_updates()
        opening = shopper.change(cluster[first], 2, burst + 1)
        wait_for(lambda: meter.snapshot()["in_flight"] == 1, message="the burst's first update to reach Stripe")
        for step in range(10):
            cart = shopper.change(cluster[(first, other)[step % 2]], 3, 10 * burst + step + 1)
        meter.release_updates()

        tab.wait_for_cart(charges_total(cart), "a push saying the PaymentIntent charges the final total")
        for process in cluster.processes:
            assert shopper.cart(process)["payment"]["amount"] == cart["total"]
        pi = sandbox.state.payment_intents[pi_id]
        assert pi["amount"] == cart["total"] and pi["metadata"]["cart_version"] == str(cart["version"])
        log = meter.snapshot()
        updates = [(u["cart_version"], u["status"]) for u in log["updates"] if u["payment_intent"] == pi_id]
        # The update in flight during the burst, then one update carrying all ten later changes.
        assert updates == [(str(opening["version"]), 200), (str(cart["version"]), 200)]
        assert log["max_in_flight_per_payment_intent"] == 1
    assert sandbox.state.faults.snapshot()["stats"].get("lock_timeout", 0) == 0


def pay(cluster, shopper, process):
    """Fill a cart, start checkout, shake hands and pay as the browser does; returns (order id, pi id, cart)."""
    cart = shopper.change(process, 4, 2)
    status, started = shopper.call(process, "POST", "/api/checkout")
    assert status == 200, started
    status, confirmed = shopper.call(process, "POST", "/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert status == 200, confirmed
    paid = requests.post(
        f"{cluster.sandbox.url}/v1/payment_intents/{started['payment_intent_id']}/confirm",
        data={
            "client_secret": started["client_secret"],
            "payment_method": "pm_card_visa",
            "return_url": f"{process.url}/orders/return",
        },
        headers={"Authorization": f"Bearer {cluster.sandbox.publishable_key}"},
        timeout=20,
    ).json()
    assert paid.get("status") == "succeeded", paid
    return confirmed["order_id"], started["payment_intent_id"], cart


def succeeded_deliveries(cluster, pi_id):
    """(url, status) of every delivery of the PaymentIntent's `payment_intent.succeeded` event."""
    events = [
        e["id"]
        for e in cluster.sandbox.state.events
        if e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == pi_id
    ]
    deliveries = cluster.sandbox.state.webhooks.list_deliveries()
    return [(d["url"], d["status_code"]) for d in deliveries if d["event_id"] in events]


def paid_everywhere(cluster, shopper, order_id):
    for process in cluster.processes:
        wait_for(
            lambda p=process: shopper.call(p, "GET", f"/api/orders/{order_id}")[1]["status"] == "paid",
            timeout=20,
            message=f"order {order_id} paid as seen by {process.name}",
        )


@pytest.mark.parametrize("webhook_process,shop_process", [(0, 1), (1, 0)], ids=["webhooks-on-1", "webhooks-on-2"])
def test_a_webhook_landing_on_either_process_settles_the_order(cluster, shoppers, webhook_process, shop_process):
    cluster.deliver_webhooks_to(webhook_process)
    shopper = shoppers()
    shopper.cart(cluster[shop_process])
    tab = shopper.tab(cluster[shop_process])
    order_id, pi_id, _ = pay(cluster, shopper, cluster[shop_process])

    paid_everywhere(cluster, shopper, order_id)
    wait_for(
        lambda: any(o["id"] == order_id and o["status"] == "paid" for o in tab.pushes("order")),
        timeout=20,
        message="the order push on the shopper's process",
    )
    receiver = f"{cluster[webhook_process].url}/webhooks/stripe"
    # The sandbox logs a delivery once the answer is back, a moment after the order is paid.
    wait_for(lambda: succeeded_deliveries(cluster, pi_id), timeout=20, message="the delivery to be logged")
    assert succeeded_deliveries(cluster, pi_id) == [(receiver, 200)]


def test_one_event_delivered_to_both_processes_makes_one_paid_order(cluster, shoppers, postgres_url):
    cluster.deliver_webhooks_to(0, 1)
    shopper = shoppers()
    order_id, pi_id, cart = pay(cluster, shopper, cluster[0])

    paid_everywhere(cluster, shopper, order_id)
    wait_for(lambda: len(succeeded_deliveries(cluster, pi_id)) == 2, timeout=20, message="both deliveries")
    assert {status for _, status in succeeded_deliveries(cluster, pi_id)} == {200}
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            orders = conn.execute(
                text("SELECT status, amount FROM orders WHERE payment_intent_id = :pi"), {"pi": pi_id}
            ).all()
    finally:
        engine.dispose()
    assert orders == [("paid", cart["total"])]


def test_hundreds_of_changes_at_once_on_one_process_all_succeed(cluster):
    """More requests mid-flight than redis-py's default pool allows (100): the rate limiter's Redis calls
    and the pushes through Redis wait for a connection instead of failing the change."""
    import threading

    shoppers = [requests.Session() for _ in range(300)]
    for http in shoppers:
        assert http.get(f"{cluster[0].url}/api/cart", timeout=20).status_code == 200
    barrier, statuses = threading.Barrier(len(shoppers)), []

    def change(http):
        barrier.wait(timeout=60)
        answer = http.put(f"{cluster[0].url}/api/cart/items/1", json={"quantity": 3}, timeout=60)
        statuses.append((answer.status_code, answer.json().get("version")))

    threads = [threading.Thread(target=change, args=(http,)) for http in shoppers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert sorted(statuses) == [(200, 2)] * len(shoppers)
