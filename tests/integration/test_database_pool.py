"""DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW size each process's PostgreSQL pool, and what shares it."""

import pytest
from sqlalchemy import text

from storefront.config import Config
from storefront.extensions import db
from storefront.worker import syncs

pytestmark = pytest.mark.timeout(60)


@pytest.mark.postgres
def test_the_pool_settings_size_the_engine_and_what_shares_it(make_store, postgres_url):
    store = make_store(
        database_url=postgres_url, STRIPE_SECRET_KEY="sk_test_unused", DATABASE_POOL_SIZE=6, DATABASE_MAX_OVERFLOW=2
    )
    with store.app.app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow) == (6, 2)
        # Eight connections at once: the pool's six and two of overflow.
        held = [db.engine.connect() for _ in range(8)]
        try:
            assert all(conn.execute(text("SELECT 1")).scalar() == 1 for conn in held)
            assert (pool.checkedout(), pool.overflow()) == (8, 2)
        finally:
            for conn in held:
                conn.close()
        db.session.remove()
    # A quarter of the pool for Socket.IO handlers, at most half of pool + overflow for PaymentIntent syncs.
    assert store.app.extensions["socket_limits"]._slots._value == 1
    assert syncs.pool_size(store.app.config) == 4


def test_the_defaults_fit_the_documented_layout():
    config = Config({})
    assert (config.DATABASE_POOL_SIZE, config.DATABASE_MAX_OVERFLOW) == (20, 0)
    # docs/production.md: two web processes, the worker and the reconcile cron, each pool + overflow,
    # within PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3).
    assert 4 * (config.DATABASE_POOL_SIZE + config.DATABASE_MAX_OVERFLOW) <= 100 - 3
    assert syncs.pool_size(vars(config)) == 10  # STRIPE_UPDATES_PER_SECOND 20 x 0.5 s, and half of 20


def test_the_settings_are_read_from_the_environment_and_checked():
    config = Config({"DATABASE_POOL_SIZE": "5", "DATABASE_MAX_OVERFLOW": "3"})
    assert (config.DATABASE_POOL_SIZE, config.DATABASE_MAX_OVERFLOW) == (5, 3)
    with pytest.raises(ValueError, match="DATABASE_POOL_SIZE"):
        Config({"DATABASE_POOL_SIZE": "0"})
    with pytest.raises(ValueError, match="DATABASE_MAX_OVERFLOW"):
        Config({"DATABASE_MAX_OVERFLOW": "-1"})


def test_sqlite_keeps_one_connection_whatever_the_settings(make_store):
    store = make_store(STRIPE_SECRET_KEY="sk_test_unused", DATABASE_POOL_SIZE=9)
    with store.app.app_context():
        assert db.engine.pool.size() == 1
        db.session.remove()
