"""No row for a visitor who has changed nothing, and abandoned carts removed, on SQLite and PostgreSQL.

A cookie-less request (reading the cart, an order, the catalog page, or opening a socket) writes no
cart and no snapshot: the session gets a cart id, whose row is written on the first change. Open
carts nobody has changed for ABANDONED_CART_SECONDS, with no order and no PaymentIntent that could
still move money, are removed with their lines and snapshots by the periodic job and by
`flask --app storefront cleanup-carts`.
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from storefront.extensions import db
from storefront.models import Cart, CartLine, CartSnapshot, utcnow
from tests.conftest import wait_for
from tests.shopping import fill

pytestmark = pytest.mark.timeout(120)
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
VISITORS = 300


@pytest.fixture(params=DATABASES)
def database_url(request):
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else None


@pytest.fixture
def shop_store(make_store, database_url):
    return make_store(
        database_url=database_url, STRIPE_SECRET_KEY="sk_test_unused", STRIPE_API_BASE="http://127.0.0.1:9"
    )


def counts(store):
    """(carts, snapshots, lines) in the store's database."""
    with store.app.app_context():
        found = tuple(
            db.session.scalar(select(func.count()).select_from(model)) for model in (Cart, CartSnapshot, CartLine)
        )
        db.session.remove()
    return found


def age(store, cart_id, days):
    """Pretend the cart last changed `days` ago."""
    with store.app.app_context():
        db.session.execute(update(Cart).where(Cart.id == cart_id).values(changed_at=utcnow() - timedelta(days=days)))
        db.session.commit()
        db.session.remove()


def cleanup(store, *args):
    result = store.app.test_cli_runner().invoke(args=["cleanup-carts", *args])
    assert result.exit_code == 0, result.output
    return result.stdout  # the command's answer; its log lines go to stderr


def test_cookie_less_reads_and_sockets_create_no_cart_and_no_snapshot(shop_store):
    for _ in range(VISITORS):
        visitor = shop_store.client()
        assert visitor.get("/api/cart").status_code == 200
        assert visitor.get("/api/orders/1").status_code == 404
        assert shop_store.client().get("/").status_code == 200
        assert shop_store.client().get("/api/orders/1").status_code == 404
    tab = shop_store.tab(visitor)
    assert tab.is_connected()
    assert tab.emit("get_cart", callback=True)["items"] == []
    tab.disconnect()
    assert counts(shop_store) == (0, 0, 0)


def test_the_first_change_writes_the_cart_the_session_was_given_and_reaches_tabs_opened_before(shop_store):
    shopper = shop_store.client()
    empty = shopper.get("/api/cart").get_json()
    assert isinstance(empty["id"], int) and empty["version"] == 1 and empty["items"] == []
    tab = shop_store.tab(shopper)
    assert tab.is_connected()
    tab.get_received()
    cart = fill(shopper, (2, 3))
    assert cart["id"] == empty["id"] and cart["version"] == 2
    pushed = [e["args"][0] for e in tab.get_received() if e["name"] == "cart"]
    assert pushed and pushed[-1]["version"] == 2 and pushed[-1]["id"] == empty["id"]
    assert counts(shop_store) == (1, 2, 1)
    assert shopper.get("/api/cart").get_json() == {**cart, "last_order": None}  # the read names its order


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/api/cart/items", {"product_id": 999999, "quantity": 1}),
        ("POST", "/api/cart/items", {"product_id": 1, "quantity": 0}),
        ("PUT", "/api/cart/items/999999", {"quantity": 1}),
        ("DELETE", "/api/cart/items/999999", None),
        ("POST", "/api/checkout", None),
        ("POST", "/api/checkout/confirm", {"cart_version": 1}),
    ],
)
def test_a_refused_first_request_leaves_no_row(shop_store, method, path, body):
    for _ in range(3):
        visitor = shop_store.client()
        answer = visitor.open(path, method=method, json=body)
        assert 400 <= answer.status_code < 500, answer.get_json()
        visitor.get("/api/cart")
        assert visitor.open(path, method=method, json=body).status_code == answer.status_code
    assert counts(shop_store) == (0, 0, 0)


def test_cart_ids_are_never_handed_out_twice(shop_store):
    shoppers = [shop_store.client() for _ in range(3)]
    carts = [fill(shopper, (1, 1)) for shopper in shoppers]
    newest = carts[-1]["id"]
    age(shop_store, newest, days=40)
    assert cleanup(shop_store).strip() == '{"carts_removed": 1}'
    ids = {shop_store.client().get("/api/cart").get_json()["id"] for _ in range(5)}
    assert len(ids) == 5 and not ids & {cart["id"] for cart in carts}
    back = shoppers[-1].get("/api/cart").get_json()
    assert back["id"] == newest and back["items"] == [] and back["version"] == 1
    again = fill(shoppers[-1], (3, 1))  # a removed cart's id is not written again: a new cart, a new id
    assert again["version"] == 2 and again["id"] not in ids | {cart["id"] for cart in carts}
    assert shoppers[-1].get("/api/cart").get_json() == {**again, "last_order": None}


def test_a_removed_carts_pending_payment_attempts_are_abandoned_and_its_id_not_reused(shop_store):
    from storefront.models import PaymentAttempt

    shopper = shop_store.client()
    cart = fill(shopper, (1, 1))
    with shop_store.app.app_context():  # a PaymentIntent create whose answer was lost
        db.session.add(
            PaymentAttempt(
                id="attempt-lost",
                cart_id=cart["id"],
                cart_version=cart["version"],
                amount=cart["total"],
                currency="usd",
                status="pending",
            )
        )
        db.session.commit()
        db.session.remove()
    age(shop_store, cart["id"], days=40)
    assert cleanup(shop_store).strip() == '{"carts_removed": 1}'
    with shop_store.app.app_context():
        assert db.session.get(PaymentAttempt, "attempt-lost").status == "abandoned"
        db.session.remove()
    fresh = fill(shopper, (2, 1))
    assert fresh["id"] != cart["id"] and fresh["version"] == 2
    with shop_store.app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(PaymentAttempt).where(PaymentAttempt.cart_id == fresh["id"])
            )
            == 0
        )
        db.session.remove()


def test_cleanup_removes_only_carts_unchanged_for_the_abandonment_time(shop_store):
    old, recent, changed_lately = (shop_store.client() for _ in range(3))
    old_cart, recent_cart = fill(old, (1, 2), (2, 1)), fill(recent, (3, 1))
    late_cart = fill(changed_lately, (4, 1))
    age(shop_store, old_cart["id"], days=31)
    age(shop_store, recent_cart["id"], days=29)
    age(shop_store, late_cart["id"], days=31)
    fill(changed_lately, (4, 1))  # a change resets the clock
    assert cleanup(shop_store).strip() == '{"carts_removed": 1}'
    assert counts(shop_store) == (2, 5, 2)
    assert old.get("/api/cart").get_json()["items"] == []
    assert recent.get("/api/cart").get_json() == {**recent_cart, "last_order": None}
    assert cleanup(shop_store, "--older-than", str(28 * 86400)).strip() == '{"carts_removed": 1}'
    assert counts(shop_store) == (1, 3, 1)


@pytest.mark.parametrize("database", DATABASES)
def test_carts_with_an_order_a_freeze_or_a_live_payment_intent_are_kept(request, make_store, sandbox, database):
    database_url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    store = make_store(sandbox=sandbox, database_url=database_url)
    frozen, with_intent, plain = (store.client() for _ in range(3))
    cart = fill(frozen, (1, 1))
    assert frozen.post("/api/checkout").status_code == 200
    wait_for(lambda: frozen.get("/api/cart").get_json()["payment"]["amount"] == cart["total"], message="synced")
    assert frozen.post("/api/checkout/confirm", json={"cart_version": cart["version"]}).status_code == 200
    fill(with_intent, (2, 1))
    assert with_intent.post("/api/checkout").status_code == 200
    fill(plain, (3, 1))
    for client in (frozen, with_intent, plain):
        age(store, client.get("/api/cart").get_json()["id"], days=60)
    store.app.extensions["worker"].wait_idle(10)
    assert cleanup(store).strip() == '{"carts_removed": 1}'
    assert frozen.get("/api/cart").get_json()["status"] == "frozen"
    assert with_intent.get("/api/cart").get_json()["payment"] is not None
    assert plain.get("/api/cart").get_json()["items"] == []


def test_the_periodic_job_removes_abandoned_carts(make_store, database_url):
    store = make_store(
        database_url=database_url,
        STRIPE_SECRET_KEY="sk_test_unused",
        STRIPE_API_BASE="http://127.0.0.1:9",
        RECONCILE_INTERVAL_SECONDS=0.2,
        CART_CLEANUP_INTERVAL_SECONDS=0.2,
        ABANDONED_CART_SECONDS=3600,
    )
    shopper, keeper = store.client(), store.client()
    cart, kept = fill(shopper, (1, 1)), fill(keeper, (2, 1))
    age(store, cart["id"], days=1)
    store.app.extensions["worker"].start()
    wait_for(lambda: counts(store)[0] == 1, timeout=20, message="the periodic job to remove the abandoned cart")
    assert keeper.get("/api/cart").get_json() == {**kept, "last_order": None}
    assert shopper.get("/api/cart").get_json()["items"] == []


def test_an_upgraded_database_hands_out_ids_past_its_existing_carts(shop_store):
    import flask_migrate
    from sqlalchemy import text

    from storefront import MIGRATIONS

    with shop_store.app.app_context():
        flask_migrate.downgrade(directory=str(MIGRATIONS), revision="7b3e1c9a4f20")
        for _ in range(7):  # carts as the previous release wrote them: ids from the database
            db.session.execute(
                text(
                    "INSERT INTO carts (version, total, status, currency, checkout_count, "
                    "created_at) VALUES (1, 0, 'open', 'usd', 0, CURRENT_TIMESTAMP)"
                )
            )
        db.session.commit()
        existing = db.session.scalar(select(func.max(Cart.id)))
        db.session.remove()
        flask_migrate.upgrade(directory=str(MIGRATIONS))
    ids = [shop_store.client().get("/api/cart").get_json()["id"] for _ in range(3)]
    assert min(ids) > existing and len(set(ids)) == 3
    assert counts(shop_store)[0] == 7


def test_an_upgrade_counts_existing_carts_as_changed_now_and_leaves_no_default(shop_store):
    import flask_migrate
    from sqlalchemy import inspect, text

    from storefront import MIGRATIONS

    with shop_store.app.app_context():
        flask_migrate.downgrade(directory=str(MIGRATIONS), revision="5c0ffee7a1b2")
        old = (utcnow() - timedelta(days=60)).replace(microsecond=0)
        db.session.execute(
            text(
                "INSERT INTO carts (version, total, status, currency, checkout_count, created_at) "
                "VALUES (1, 0, 'open', 'usd', 0, :old)"
            ),
            {"old": old},
        )
        db.session.commit()
        db.session.remove()
        before = utcnow() - timedelta(seconds=5)
        flask_migrate.upgrade(directory=str(MIGRATIONS))
        changed = db.session.scalar(select(Cart.changed_at))
        db.session.remove()
        column = next(c for c in inspect(db.engine).get_columns("carts") if c["name"] == "changed_at")
    assert changed >= before  # a cart created 60 days ago may have changed yesterday: not removed at once
    assert column["default"] is None
    assert cleanup(shop_store).strip() == '{"carts_removed": 0}'


def test_a_price_change_does_not_keep_an_abandoned_cart_alive(make_store, database_url):
    import base64

    store = make_store(
        database_url=database_url,
        STRIPE_SECRET_KEY="sk_test_unused",
        STRIPE_API_BASE="http://127.0.0.1:9",
        ADMIN_PASSWORD="pw",
    )
    shopper = store.client()
    cart = fill(shopper, (1, 1))
    age(store, cart["id"], days=31)
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
    for price in (2500, 2600):
        assert (
            store.client().patch("/admin/api/products/1", json={"unit_amount": price}, headers=auth).status_code == 200
        )
    assert shopper.get("/api/cart").get_json()["version"] == cart["version"] + 2  # repriced, twice
    assert cleanup(store).strip() == '{"carts_removed": 1}'


def test_a_cancel_without_a_cart_row_writes_none(shop_store):
    visitor, reserved, removed = (shop_store.client() for _ in range(3))
    reserved.get("/api/cart")
    cart = fill(removed, (1, 1))
    age(shop_store, cart["id"], days=40)
    cleanup(shop_store)
    for client in (visitor, reserved, removed):
        answer = client.post("/api/checkout/cancel")
        assert answer.status_code == 200 and answer.get_json()["items"] == [] and answer.get_json()["status"] == "open"
    assert counts(shop_store) == (0, 0, 0)


def test_the_periodic_cleanup_runs_once_per_store_whichever_process_asks(make_store, database_url, tmp_path):
    from storefront.wiring import current_shop

    url = database_url or f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    processes = [
        make_store(
            database_url=url,
            STRIPE_SECRET_KEY="sk_test_unused",
            STRIPE_API_BASE="http://127.0.0.1:9",
            CART_CLEANUP_INTERVAL_SECONDS=3600,
        )
        for _ in range(3)
    ]
    age(processes[0], fill(processes[0].client(), (1, 1))["id"], days=40)
    ran = []
    for store in processes:
        with store.app.app_context():
            cleanup = next(job for job in store.app.extensions["worker"].jobs if job.name == "cart_cleanup")
            ran.append(cleanup.run_if_due(current_shop()))
            db.session.remove()
    assert ran == [1, None, None]
    with processes[0].app.app_context():
        from storefront.payments.lease import JobTurn

        turn = db.session.get(JobTurn, "cart_cleanup")
        db.session.remove()
    assert turn.holder is None and turn.due_at > utcnow() + timedelta(seconds=3000)
