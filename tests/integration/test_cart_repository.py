"""The cart's write path on both databases: a change lands only on the version it was computed from."""

import threading

import pytest
from sqlalchemy import event, select

from storefront.cart import repository, service
from storefront.extensions import db
from storefront.models import Cart, CartLine, CartSnapshot
from storefront.unit_of_work import UnitOfWork

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def app(request, make_store, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    store = make_store(database_url=url, STRIPE_SECRET_KEY="sk_test_unused")
    client = store.client()
    assert client.post("/api/cart/items", json={"product_id": 1, "quantity": 2}).status_code == 200
    with store.app.app_context():
        cart_id = db.session.execute(select(Cart.id)).scalar_one()
        db.session.commit()
        yield store.app, cart_id
        db.session.remove()


def read(cart_id, product_id=None):
    with UnitOfWork(db.session, statements=True) as uow:
        return repository.read(uow.conn, cart_id, product_id)


def write(state, quantities, product):
    with UnitOfWork(db.session, statements=True) as uow:
        new = repository.write_change(uow.conn, state, quantities, {product.product_id: product})
        uow.commit()
    return new


def stored(cart_id):
    session = db.session
    lines = dict(
        session.execute(select(CartLine.product_id, CartLine.quantity).where(CartLine.cart_id == cart_id)).all()
    )
    cart = session.get(Cart, cart_id, populate_existing=True)
    versions = session.execute(select(CartSnapshot.version).where(CartSnapshot.cart_id == cart_id)).scalars().all()
    answer = (cart.version, cart.total, lines, sorted(versions))
    session.commit()
    return answer


def test_a_change_writes_lines_version_total_and_snapshot_together(app):
    _, cart_id = app
    state, product = read(cart_id, 2)
    new = write(state, {1: 3, 2: 1}, product)
    assert new.version == state.version + 1
    version, total, lines, versions = stored(cart_id)
    assert (version, total, lines) == (new.version, new.total, {1: 3, 2: 1})
    assert versions == list(range(1, new.version + 1))
    assert read(cart_id)[0] == new, "what the write returned is what a read sees"


def test_a_change_computed_from_an_old_version_writes_nothing(app):
    _, cart_id = app
    old, product = read(cart_id, 2)
    assert write(old, {1: 5}, product) is not None
    before = stored(cart_id)
    assert write(old, {1: 2, 2: 7}, product) is None, "the cart moved on: the caller must read again"
    assert stored(cart_id) == before


def test_a_change_to_a_frozen_cart_writes_nothing(app):
    _, cart_id = app
    state, product = read(cart_id, 2)
    db.session.execute(Cart.__table__.update().where(Cart.id == cart_id).values(status="frozen"))
    db.session.commit()
    before = stored(cart_id)
    assert write(state, {1: 2, 2: 1}, product) is None
    assert stored(cart_id) == before


def test_removing_the_last_line_leaves_an_empty_cart_at_the_next_version(app):
    _, cart_id = app
    state, product = read(cart_id, 1)
    new = write(state, {}, product)
    assert stored(cart_id)[:3] == (new.version, 0, {})
    assert read(cart_id)[0].lines == ()


def test_a_change_that_keeps_losing_the_race_waits_for_the_cart_lock_and_lands(app, monkeypatch):
    """After its optimistic tries a change takes the row lock; here it goes there at once."""
    store_app, cart_id = app
    monkeypatch.setattr(service, "OPTIMISTIC_ATTEMPTS", 0)
    before = stored(cart_id)
    client = store_app.test_client()
    with client.session_transaction() as cookie:
        cookie["cart_id"] = cart_id
    answer = client.put("/api/cart/items/2", json={"quantity": 4})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["version"] == before[0] + 1
    assert stored(cart_id)[:3] == (before[0] + 1, answer.get_json()["total"], {1: 2, 2: 4})


def test_a_change_is_one_read_and_one_guarded_write_on_postgresql(app):
    """The hot path costs two statements (each its own transaction in autocommit): no BEGIN, no COMMIT."""
    store_app, cart_id = app
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs the same steps as several statements in its write transaction")
    client = store_app.test_client()
    with client.session_transaction() as cookie:
        cookie["cart_id"] = cart_id
        cookie["cart_written"] = cart_id
    statements = []

    def seen(_conn, cursor, statement, *_args):
        if threading.current_thread() is threading.main_thread():  # the test client's request, not the sync's
            statements.append((statement.split(None, 1)[0].upper(), cursor.connection.autocommit))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for method, path, body in [
            ("PUT", "/api/cart/items/1", {"quantity": 4}),
            ("POST", "/api/cart/items", {"product_id": 2, "quantity": 1}),
            ("DELETE", "/api/cart/items/2", None),
        ]:
            statements.clear()
            answer = client.open(path, method=method, json=body)
            assert answer.status_code == 200, answer.get_json()
            assert statements == [("SELECT", True), ("WITH", True)], (method, path, statements)
        # The shopper's read names the cart's latest order in the same one statement.
        statements.clear()
        answer = client.get("/api/cart")
        assert answer.status_code == 200 and "last_order" in answer.get_json()
        assert statements == [("SELECT", True)], statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
