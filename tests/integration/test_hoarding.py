"""No client can hoard stock (issue 23, point 7): per-client reservation limits, reservations that lapse
unless their payment starts, handshake rate limits, and the metric of reserved units; over real HTTP
against the app and the Stripe sandbox, on SQLite and PostgreSQL where the database decides."""

import contextlib
import logging
import time

import pytest

from storefront.config import Config
from storefront.extensions import db
from storefront.models import Product, StockReservation
from tests.conftest import NO_HOLD_LIMITS, wait_for
from tests.integration.test_merchant import GRINDER, PASSWORD, Merchant, available, basic, checkout
from tests.reliability.test_concurrency import http_shopper, race
from tests.shopping import browser_confirm, control, fill, order_status, orders_snapshot, start_and_confirm

pytestmark = pytest.mark.timeout(90)

A = 1  # seeded beans: stock not tracked
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SEPA = {"payment_method_data[type]": "sepa_debit", "payment_method_data[sepa_debit][iban]": "AT611904300234573201"}


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'hoarding.sqlite3'}"


def limited_store(make_store, sandbox, database_url=None, **limits):
    """A store with the handshake's per-client limits as given (all others off) and the grinder stocked."""
    store = make_store(
        sandbox=sandbox, database_url=database_url, ADMIN_PASSWORD=PASSWORD, **{**NO_HOLD_LIMITS, **limits}
    )
    Merchant(store).patch(GRINDER, stock=10)
    return store


def from_address(client, address):
    """The shopper's requests come from `address` (request.remote_addr)."""
    client.environ_base["REMOTE_ADDR"] = address
    return client


def reservations(store):
    with store.app.app_context():
        rows = sorted((r.order_id, r.product_id, r.quantity) for r in db.session.query(StockReservation))
        stock = db.session.get(Product, GRINDER).stock
        db.session.remove()
    return rows, stock


@contextlib.contextmanager
def logged(name):
    """The messages `name` logs meanwhile (the app's Alembic run replaces the root handlers caplog uses)."""
    lines, handler = [], logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def handshake(client):
    """Start checkout and ask for the handshake on the cart as it is: the answer."""
    checkout(client)
    return client.post("/api/checkout/confirm", json={"cart_version": client.get("/api/cart").get_json()["version"]})


def assert_refused_changing_nothing(store, client, answer, scope, kind, before):
    """A refused handshake: 409 reservation_limit naming the limit, the cart still open at its version, and
    no order, reservation or stock changed."""
    body = answer.get_json()
    assert answer.status_code == 409, body
    assert body["error"]["code"] == "reservation_limit" and body["limit"]["scope"] == scope, body
    assert body["limit"]["kind"] == kind and body["cart"]["status"] == "open", body
    cart = client.get("/api/cart").get_json()
    assert cart["status"] == "open" and cart["version"] == body["cart"]["version"]
    assert (orders_snapshot(store.app), reservations(store)) == before


def test_the_default_limits_stop_the_issues_hoarder(make_store, sandbox):
    """The issue's reproduction: a session is its cookie, so one client makes as many as it likes (a frozen
    cart refuses changes, so each further hold is a further cookie), and two handshakes (99 + 1 units)
    held all the stock. With the default limits the session's 99 are refused, and the address's sessions
    together stop at RESERVE_UNITS_PER_ADDRESS while another shopper still buys."""
    defaults = Config({})
    store = limited_store(
        make_store, sandbox, **{name: getattr(defaults, name) for name in NO_HOLD_LIMITS if "RESERVE" in name}
    )
    Merchant(store).patch(GRINDER, stock=100)
    hoarder = [store.client() for _ in range(3)]
    fill(hoarder[0], (GRINDER, 99))
    assert handshake(hoarder[0]).get_json()["limit"] == {"scope": "session", "kind": "units", "max": 10}
    hoarder[0].put(f"/api/cart/items/{GRINDER}", json={"quantity": 10})
    assert handshake(hoarder[0]).status_code == 200
    start_and_confirm(hoarder[1], (GRINDER, 10))
    fill(hoarder[2], (GRINDER, 1))
    assert handshake(hoarder[2]).get_json()["limit"] == {"scope": "address", "kind": "units", "max": 20}

    other = from_address(store.client(), "10.0.0.9")
    assert available(other, GRINDER) == 80
    start_and_confirm(other, (GRINDER, 10))


def test_one_session_cannot_reserve_more_units_than_its_limit(make_store, sandbox):
    store = limited_store(make_store, sandbox, RESERVE_UNITS_PER_SESSION=3)
    shopper = store.client()
    fill(shopper, (GRINDER, 4), (A, 5))  # untracked units hold no stock and do not count
    before = (orders_snapshot(store.app), reservations(store))
    with logged("storefront.checkout.holds") as lines:
        answer = handshake(shopper)
    assert_refused_changing_nothing(store, shopper, answer, "session", "units", before)
    assert "at most 3 items" in answer.get_json()["error"]["message"]
    cart_id = shopper.get("/api/cart").get_json()["id"]
    refusal = [line for line in lines if "handshake refused" in line]
    assert refusal and f"cart {cart_id}:" in refusal[0] and "127.0.0.1" in refusal[0], refusal

    shopper.put(f"/api/cart/items/{GRINDER}", json={"quantity": 3})
    assert handshake(shopper).status_code == 200
    assert reservations(store)[0][0][1:] == (GRINDER, 3)


def test_two_sessions_from_one_address_cannot_hold_more_than_the_address_limit(make_store, sandbox, database_url):
    store = limited_store(make_store, sandbox, database_url, RESERVE_UNITS_PER_ADDRESS=5, RESERVE_FREEZES_PER_ADDRESS=2)
    first, second, third = store.client(), store.client(), store.client()
    start_and_confirm(first, (GRINDER, 4))

    fill(second, (GRINDER, 2))
    before = (orders_snapshot(store.app), reservations(store))
    assert_refused_changing_nothing(store, second, handshake(second), "address", "units", before)
    second.put(f"/api/cart/items/{GRINDER}", json={"quantity": 1})
    assert handshake(second).status_code == 200  # 5 units from the address: at the limit, not over

    fill(third, (A, 1))  # no stock held, but a third concurrent freeze
    before = (orders_snapshot(store.app), reservations(store))
    answer = handshake(third)
    assert_refused_changing_nothing(store, third, answer, "address", "freezes", before)
    assert answer.get_json()["error"]["message"].startswith("You already have 2 checkouts waiting for payment")

    elsewhere = from_address(store.client(), "10.0.0.7")  # another client is not held back
    start_and_confirm(elsewhere, (GRINDER, 5))
    assert available(elsewhere, GRINDER) == 0


def test_a_cancelled_freeze_no_longer_counts_against_the_address(make_store, sandbox):
    store = limited_store(make_store, sandbox, RESERVE_FREEZES_PER_ADDRESS=1)
    first, second = store.client(), store.client()
    start_and_confirm(first, (GRINDER, 1))
    fill(second, (GRINDER, 1))
    assert handshake(second).get_json()["error"]["code"] == "reservation_limit"
    assert first.post("/api/checkout/cancel").status_code == 200
    assert handshake(second).status_code == 200


def test_two_sessions_of_one_address_racing_for_the_last_allowed_units_one_wins(make_store, sandbox, database_url):
    store = limited_store(make_store, sandbox, database_url, RESERVE_UNITS_PER_ADDRESS=3)
    shoppers = [http_shopper(store) for _ in range(2)]
    versions = []
    for http in shoppers:
        http.post(f"{store.url}/api/cart/items", json={"product_id": GRINDER, "quantity": 2}, timeout=10)
        versions.append(http.post(f"{store.url}/api/checkout", timeout=10).json()["cart_version"])
    answers = race(
        *[
            (
                lambda h=http, v=version: h.post(
                    f"{store.url}/api/checkout/confirm", json={"cart_version": v}, timeout=30
                )
            )
            for http, version in zip(shoppers, versions, strict=True)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    assert next(a for a in answers if a.status_code == 409).json()["error"]["code"] == "reservation_limit"
    assert [row[1:] for row in reservations(store)[0]] == [(GRINDER, 2)]


def test_a_reservation_whose_payment_never_starts_lapses_and_another_shopper_buys(make_store, sandbox):
    store = limited_store(make_store, sandbox, RESERVATION_SECONDS=2, FREEZE_SWEEP_SECONDS=0.2)
    Merchant(store).patch(GRINDER, stock=1)
    idle, buyer = store.client(), from_address(store.client(), "10.0.0.8")
    started_at = time.monotonic()
    _, started, order_id = start_and_confirm(idle, (GRINDER, 1))  # and never pays
    assert available(buyer, GRINDER) == 0
    store.app.extensions["worker"].start()  # its freeze sweep

    wait_for(lambda: available(buyer, GRINDER) == 1, timeout=20, message="the reservation to lapse")
    assert time.monotonic() - started_at >= 2  # not before RESERVATION_SECONDS
    assert idle.get(f"/api/orders/{order_id}").get_json()["status"] == "payment_failed"
    assert idle.get("/api/cart").get_json()["status"] == "open"
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started)[0] >= 400  # cancelled

    _, bought, bought_order = start_and_confirm(buyer, (GRINDER, 1))
    assert browser_confirm(store.sandbox.url, store.sandbox.publishable_key, bought)[0] == 200
    order_status(buyer, bought_order, "paid")
    assert reservations(store) == ([], 0)


@pytest.mark.parametrize("progress", ["requires_action", "processing"])
def test_a_payment_in_progress_keeps_its_reservation_past_reservation_seconds(make_store, sandbox, progress):
    # SEPA debits euros only: this store sells in euros.
    store = limited_store(make_store, sandbox, RESERVATION_SECONDS=1, FREEZE_SWEEP_SECONDS=0.2, CURRENCY="eur")
    paying, idle = store.client(), store.client()
    _, started, order_id = start_and_confirm(paying, (GRINDER, 2))
    _, _, idle_order = start_and_confirm(idle, (GRINDER, 1))
    # Its webhook lost, the store still sees the payment as unconfirmed: the sweep must ask Stripe.
    control(store.sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})
    payment = {"payment_method": "pm_card_authenticationRequired"} if progress == "requires_action" else SEPA
    status, pi = browser_confirm(store.sandbox.url, store.sandbox.publishable_key, started, **payment)
    assert status == 200 and pi["status"] == progress
    assert paying.get("/api/cart").get_json()["payment"]["status"] == "requires_payment_method"
    store.app.extensions["worker"].start()

    # The idle freeze lapsing shows the sweep ran past RESERVATION_SECONDS; then a few more of its turns.
    order_status(idle, idle_order, "payment_failed")
    wait_for(
        lambda: paying.get("/api/cart").get_json()["payment"]["status"] == progress,
        message="the sweep to learn the payment's progress from Stripe",
    )
    time.sleep(1)
    assert paying.get("/api/cart").get_json()["status"] == "frozen"
    assert paying.get(f"/api/orders/{order_id}").get_json()["status"] == "awaiting_payment"
    assert [row[1:] for row in reservations(store)[0]] == [(GRINDER, 2)]

    control(store.sandbox.url, "DELETE", "/faults")
    pi_path = f"/payment_intents/{started['payment_intent_id']}"
    if progress == "requires_action":
        control(
            store.sandbox.url,
            "POST",
            f"{pi_path}/authenticate",
            {"outcome": "complete", "client_secret": started["client_secret"]},
        )
    else:
        control(store.sandbox.url, "POST", f"{pi_path}/settle")
    order_status(paying, order_id, "paid")
    assert reservations(store) == ([], 8)


def test_handshakes_are_rate_limited_per_session_and_per_address(make_store, sandbox):
    store = limited_store(make_store, sandbox, CHECKOUT_RATE_LIMIT="2 per minute")
    shopper = store.client()
    fill(shopper, (A, 1))
    stale = {"cart_version": 999}  # refused, and counted all the same
    assert [shopper.post("/api/checkout/confirm", json=stale).status_code for _ in range(2)] == [409, 409]
    limited = shopper.post("/api/checkout/confirm", json=stale)
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert "Too many payment attempts" in limited.get_json()["error"]["message"]
    assert store.client().post("/api/checkout/confirm", json=stale).status_code == 409  # another session

    store = limited_store(make_store, sandbox, CHECKOUT_ADDRESS_RATE_LIMIT="3 per minute")
    codes = [store.client().post("/api/checkout/confirm", json=stale).status_code for _ in range(4)]
    assert codes == [409, 409, 409, 429]
    elsewhere = from_address(store.client(), "10.0.0.6")
    assert elsewhere.post("/api/checkout/confirm", json=stale).status_code == 409


def test_the_merchant_sees_the_reserved_units(make_store, sandbox):
    store = limited_store(make_store, sandbox)
    merchant = Merchant(store)
    start_and_confirm(store.client(), (GRINDER, 3), (A, 2))
    start_and_confirm(from_address(store.client(), "10.0.0.5"), (GRINDER, 1))

    report = merchant.get("/reservations")
    assert report["reserved_units"] == 4 and report["frozen_carts"] == 2
    assert report["products"] == [{"id": GRINDER, "name": "Burr grinder", "reserved": 4}]
    assert report["top_addresses"] == [
        {"address": "127.0.0.1", "frozen_carts": 1, "reserved": 3},
        {"address": "10.0.0.5", "frozen_carts": 1, "reserved": 1},
    ]
    grinder = merchant.get("/products")[GRINDER - 1]
    assert (grinder["stock"], grinder["reserved"], grinder["available"]) == (10, 4, 6)
    assert merchant.get("/products")[A - 1]["reserved"] == 0

    page = merchant.client.get("/admin/products/", headers=basic()).get_data(as_text=True)
    row = page[page.index("Burr grinder") : page.index("</tr>", page.index("Burr grinder"))]
    cells = {name: cell(row, name) for name in ("stock", "reserved", "available")}
    assert "Reserved" in page and cells == {"stock": "10", "reserved": "4", "available": "6"}


def cell(row, column):
    """The text of a Flask-Admin list cell."""
    start = row.index(f'class="col-{column}">') + len(f'class="col-{column}">')
    return row[start : row.index("</td>", start)].strip()
