"""Races on a real database (SQLite and PostgreSQL): one cart, many writers; one event, many deliveries.

Every test drives the storefront over real HTTP (the LiveStore's threaded server) from real threads
that start together at a barrier; what they may observe is spelled out, and the database must end
in a state that some serial order of the same requests would have produced.
"""

import functools
import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from storefront.extensions import db
from storefront.models import CartSnapshot, Order, WebhookEvent
from storefront.payments.reconcile import reconcile
from storefront.wiring import current_shop
from tests.conftest import wait_for
from tests.shopping import browser_confirm, control, event_processed, sign, synced

pytestmark = pytest.mark.timeout(180)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'race.sqlite3'}"


def http_shopper(store):
    """A shopper over real HTTP: a requests session holding the store's session cookie."""
    http = requests.Session()
    assert http.get(f"{store.url}/api/cart", timeout=10).status_code == 200
    return http


def same_shopper(store, http):
    """Another connection (another tab's requests) of the same shopper."""
    other = requests.Session()
    other.cookies.update(http.cookies)
    return other


def race(*actions):
    """Run the actions in threads released together; their results (or raised exceptions) in order."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        barrier.wait(timeout=30)
        try:
            results[index] = action()
        except Exception as err:  # noqa: BLE001 - reported to the asserting thread
            results[index] = err

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def snapshots(app, cart_id):
    with app.app_context():
        rows = db.session.execute(select(CartSnapshot).where(CartSnapshot.cart_id == cart_id)).scalars().all()
        found = {s.version: ({i["product_id"]: i["quantity"] for i in s.items}, s.total) for s in rows}
        db.session.remove()
    return found


# --- many writers, one cart ----------------------------------------------------------------------


def owner_writes(store, http, product_id, count, seed):
    """A writer that alone touches one product, so it knows what every answer must show for it."""
    rng = random.Random(seed)
    quantity, answers = 0, []
    for _ in range(count):
        if quantity and rng.random() < 0.2:
            answer, quantity = http.delete(f"{store.url}/api/cart/items/{product_id}", timeout=30), 0
        elif quantity and rng.random() < 0.5:
            quantity = rng.choice([q for q in range(1, 10) if q != quantity])
            answer = http.put(f"{store.url}/api/cart/items/{product_id}", json={"quantity": quantity}, timeout=30)
        else:
            quantity += 1
            answer = http.post(
                f"{store.url}/api/cart/items", json={"product_id": product_id, "quantity": 1}, timeout=30
            )
        answers.append((answer.status_code, answer.json(), product_id, quantity))
    return answers


def adder_writes(store, http, product_id, count):
    """A writer that adds one of a product shared with other adders."""
    answers = []
    for _ in range(count):
        answer = http.post(f"{store.url}/api/cart/items", json={"product_id": product_id, "quantity": 1}, timeout=30)
        answers.append((answer.status_code, answer.json(), product_id, None))
    return answers


def test_many_writers_on_one_cart_lose_no_update(make_store, database_url):
    store = make_store(
        sandbox=None,
        database_url=database_url,
        STRIPE_SECRET_KEY="sk_test_unused",
        STRIPE_API_BASE="http://127.0.0.1:9",
    )
    first = http_shopper(store)
    per_writer = 25
    owners = [lambda p=p: owner_writes(store, same_shopper(store, first), p, per_writer, p) for p in range(1, 7)]
    adders = [lambda: adder_writes(store, same_shopper(store, first), 7, per_writer) for _ in range(2)]
    results = race(*owners, *adders)

    answers = [a for writer in results for a in writer]
    assert all(status == 200 for status, *_ in answers), Counter(status for status, *_ in answers)
    cart = first.get(f"{store.url}/api/cart", timeout=10).json()
    versions = sorted(body["version"] for _, body, _, _ in answers)
    assert versions == list(range(2, 2 + len(answers))), "each change must take exactly the next version"
    assert cart["version"] == 1 + len(answers)

    history = snapshots(store.app, cart["id"])
    assert sorted(history) == list(range(1, cart["version"] + 1))
    for _, body, product_id, expected in answers:
        lines = {i["product_id"]: i["quantity"] for i in body["items"]}
        assert (lines, body["total"]) == history[body["version"]], "an answer differs from its version's snapshot"
        if expected is not None:
            assert lines.get(product_id, 0) == expected, "a writer's own line was overwritten by another writer"
    final = {i["product_id"]: i["quantity"] for i in cart["items"]}
    for writer in results[:6]:
        _, _, product_id, quantity = writer[-1]
        assert final.get(product_id, 0) == quantity
    assert final[7] == 2 * per_writer, "concurrent adds to one line were lost"


# --- one event, many deliveries ------------------------------------------------------------------


def pay(store, http, *, handshake, drop_webhooks=True):
    """Fill a cart, start checkout and pay with the test card; returns (PaymentIntent id, order id or None)."""
    if drop_webhooks:
        control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    for product_id, quantity in ((1, 2), (4, 1)):
        http.post(f"{store.url}/api/cart/items", json={"product_id": product_id, "quantity": quantity}, timeout=10)
    started = http.post(f"{store.url}/api/checkout", timeout=10).json()
    cart = synced(_Client(store, http))
    order_id = None
    if handshake:
        answer = http.post(f"{store.url}/api/checkout/confirm", json={"cart_version": cart["version"]}, timeout=30)
        assert answer.status_code == 200, answer.text
        order_id = answer.json()["order_id"]
    status, pi = browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)
    assert status == 200 and pi["status"] == "succeeded", pi
    return started["payment_intent_id"], order_id, cart


class _Client:
    """Just enough of a Flask test client over a requests session for the `synced` helper."""

    def __init__(self, store, http):
        self._store, self._http = store, http

    def get(self, path):
        answer = self._http.get(f"{self._store.url}{path}", timeout=10)
        answer.get_json = answer.json
        return answer


def deliver(store, payload):
    secret = store.app.config["STRIPE_WEBHOOK_SECRET"]
    answer = requests.post(
        f"{store.url}/webhooks/stripe",
        data=payload,
        timeout=60,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload, secret)},
    )
    return answer.status_code, answer.json()


def reconcile_now(store):
    with store.app.app_context():
        try:
            return reconcile(current_shop(), older_than_seconds=0)
        finally:
            db.session.remove()


@pytest.mark.parametrize("handshake", [True, False], ids=["handshake", "no-handshake"])
def test_simultaneous_deliveries_of_one_event_have_exactly_one_effect(
    make_store, sandbox, stripe_client, database_url, handshake
):
    store = make_store(sandbox=sandbox, database_url=database_url)
    http = http_shopper(store)
    pi_id, order_id, cart = pay(store, http, handshake=handshake)
    events = stripe_client.v1.events.list(params={"type": "payment_intent.succeeded"}).data
    payload = json.dumps(next(e.to_dict() for e in events if e.data.object.id == pi_id))

    results = race(*[lambda: deliver(store, payload)] * 6, lambda: reconcile_now(store), lambda: reconcile_now(store))
    for status, body in results[:6]:
        assert status == 200, body
    wait_for(
        lambda: event_processed(store, json.loads(payload)["id"]), message="the acknowledged event to be processed"
    )

    with store.app.app_context():
        orders = db.session.execute(select(Order).where(Order.payment_intent_id == pi_id)).scalars().all()
        recorded = db.session.execute(select(WebhookEvent).where(WebhookEvent.id == json.loads(payload)["id"]))
        assert len(recorded.scalars().all()) == 1
        assert [(o.status, o.amount, o.amount_received, o.refund_due) for o in orders] == [
            ("paid", cart["total"], cart["total"], 0)
        ]
        assert order_id in (None, orders[0].id)
        db.session.remove()
    after = http.get(f"{store.url}/api/cart", timeout=10).json()
    assert after["items"] == [] and after["version"] == cart["version"] + 1, "the paid snapshot left more than once"
    assert stripe_client.v1.refunds.list(params={"payment_intent": pi_id}).data == []


# --- the handshake racing a mutation -------------------------------------------------------------


def test_a_handshake_racing_a_mutation_is_never_half_applied(make_store, sandbox, stripe_client, database_url):
    store = make_store(sandbox=sandbox, database_url=database_url)
    outcomes = Counter()
    for _ in range(8):
        http = http_shopper(store)
        tab = same_shopper(store, http)
        http.post(f"{store.url}/api/cart/items", json={"product_id": 2, "quantity": 1}, timeout=10)
        started = http.post(f"{store.url}/api/checkout", timeout=10).json()
        cart = synced(_Client(store, http))
        confirm = functools.partial(
            http.post, f"{store.url}/api/checkout/confirm", json={"cart_version": cart["version"]}, timeout=60
        )
        change = functools.partial(
            tab.post, f"{store.url}/api/cart/items", json={"product_id": 3, "quantity": 1}, timeout=60
        )
        handshake, change = race(confirm, change)
        after = http.get(f"{store.url}/api/cart", timeout=10).json()
        outcome = (handshake.status_code, change.status_code)
        outcomes[outcome] += 1
        if outcome == (200, 409):
            assert change.json()["error"]["code"] == "checkout_in_progress"
            assert after["status"] == "frozen" and after["version"] == cart["version"]
            order = http.get(f"{store.url}/api/orders/{handshake.json()['order_id']}", timeout=10).json()
            assert order["status"] == "awaiting_payment" and order["cart_version"] == cart["version"]
            assert order["items"] == cart["items"] and order["amount"] == cart["total"]
            pi = stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"])
            assert pi.amount == order["amount"] and pi.metadata["cart_version"] == str(cart["version"])
        elif outcome == (409, 200):
            assert handshake.json()["error"]["code"] == "cart_changed"
            assert handshake.json()["cart"]["version"] == cart["version"] + 1
            assert after["status"] == "open" and after["version"] == cart["version"] + 1
            assert {i["product_id"] for i in after["items"]} == {2, 3}
        else:
            pytest.fail(
                f"handshake {handshake.status_code} {handshake.text} / change {change.status_code} {change.text}"
            )
    print(f"handshake-vs-mutation outcomes on {database_url.split(':')[0]}: {dict(outcomes)}")


# --- the PostgreSQL driver under eventlet --------------------------------------------------------

GREEN_PROBE = """
import json, sys, time
if sys.argv[2] == "wsgi":
    import wsgi  # noqa: F401 - monkey-patches and makes psycopg's wait green, exactly as the server does
else:
    import eventlet
    eventlet.monkey_patch()
import eventlet
import psycopg

ticks, window = [], {}

def ticker():
    while "end" not in window:
        ticks.append(time.monotonic())
        eventlet.sleep(0.02)

def query():
    with psycopg.connect(sys.argv[1]) as conn:
        window["start"] = time.monotonic()
        conn.execute("SELECT pg_sleep(1)")
        window["end"] = time.monotonic()

threads = [eventlet.spawn(ticker), eventlet.spawn(query)]
for thread in threads:
    thread.wait()
inside = [t for t in ticks if window["start"] <= t <= window["end"]]
edges = [window["start"], *inside, window["end"]]
print(json.dumps({"ticks": len(inside), "max_gap": max(b - a for a, b in zip(edges, edges[1:], strict=False))}))
"""


@pytest.mark.postgres
@pytest.mark.parametrize("setup", ["wsgi", "plain-eventlet"])
def test_the_postgresql_driver_does_not_block_eventlet(postgres_url, setup):
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", GREEN_PROBE, postgres_url, setup],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    if setup == "wsgi":
        assert probe["ticks"] >= 20 and probe["max_gap"] < 0.3, f"the ticker stalled during the query: {probe}"
    else:
        assert probe["max_gap"] >= 0.9, f"control: without the green wait the query should block: {probe}"
