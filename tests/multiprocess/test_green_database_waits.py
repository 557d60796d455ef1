"""Under either server's green threads, a request waiting on PostgreSQL waits alone: psycopg 3's wait is
made cooperative (wsgi.py for eventlet, production.py for gevent), or one slow query would stall the process."""

import threading

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_a_change_waiting_on_a_row_lock_leaves_the_process_serving_others(cluster, shoppers, postgres_url):
    shopper, other = shoppers(), shoppers()
    cart = shopper.change(cluster[0], 1, 1)
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    changed = []
    try:
        with engine.connect() as holder, engine.connect() as observer:
            holder.execute(text("SELECT id FROM carts WHERE id = :id FOR UPDATE"), {"id": cart["id"]})
            blocked = threading.Thread(target=lambda: changed.append(shopper.change(cluster[0], 1, 2)))
            blocked.start()
            lock_waits = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            wait_for(lambda: observer.execute(lock_waits).scalar() > 0, timeout=20, message="the change to wait")
            # The same process answers another shopper while that change waits inside PostgreSQL.
            status, body = other.call(cluster[0], "PUT", "/api/cart/items/2", json={"quantity": 1})
            assert status == 200 and body["items"][0]["quantity"] == 1
            assert blocked.is_alive() and changed == []
            holder.rollback()
        blocked.join(20)
    finally:
        engine.dispose()
    assert changed and changed[0]["version"] == cart["version"] + 1
