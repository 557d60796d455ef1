"""Engine settings per database: SQLite gets WAL and write-locking transactions."""

from contextlib import contextmanager

from sqlalchemy import event, text

# Any constant works: it names "the schema is being created" for every process of this database.
SCHEMA_LOCK_KEY = 6_270_001


@contextmanager
def schema_lock(engine):
    """Hold a PostgreSQL advisory lock while the schema is created, so processes started together don't race."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()


def engine_options(url, pool_size=20, max_overflow=0):
    """Pool settings per database: PostgreSQL's from DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW.

    SQLite gets one pooled connection per process whatever they say: its lock waits sleep inside C, which
    under eventlet would stall every green thread (including the one holding the lock). Waiting for the
    pool is green.
    """
    if url.startswith("sqlite"):
        return {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
    # A process holds at most pool_size + max_overflow connections: what docs/production.md adds up against
    # PostgreSQL's max_connections. Overflow defaults to none: an overflow connection is closed on return,
    # so a busy process would keep opening new ones (each forks a PostgreSQL backend); waiting for a pooled
    # one is green and short.
    # No pre-ping: it would cost a round trip on every checkout (a change and its sync take several);
    # a connection found dead invalidates the pool, so after a database restart only the requests
    # already holding a connection fail.
    return {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": 30, "pool_recycle": 3600}


def configure_engine(engine):
    """Serialise writers the way each database does best (PostgreSQL: row locks; SQLite: BEGIN IMMEDIATE)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
