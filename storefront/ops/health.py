"""/readyz's checks: the database answers, Redis answers (when configured), a worker's heartbeat is recent.

Each check has a short timeout, so a hung dependency makes /readyz answer 503 in seconds, not hang with it.
The database is asked on a connection of its own (not the shoppers' pool): a probe neither waits behind a
busy pool nor holds one of its connections.
"""

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..extensions import db
from . import heartbeat

log = logging.getLogger(__name__)

# libpq's smallest connect timeout; a statement (the metrics' counts) may take a little longer.
CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 5000
REDIS_TIMEOUT_SECONDS = 1


def probe_engine(app):
    """An engine for probes: a new connection each time, short timeouts (SQLite: the app's own engine)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        return db.engine
    engine = app.extensions.get("probe_engine")
    if engine is None:
        options = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        }
        engine = app.extensions["probe_engine"] = create_engine(url, poolclass=NullPool, connect_args=options)
    return engine


def probe_redis(app):
    """A Redis client that gives up after a second, without retrying."""
    client = app.extensions.get("probe_redis")
    if client is None:
        client = app.extensions["probe_redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
    return client


def readiness(app, now):
    """{check: {"ok": bool, ...}} for the database, Redis (when configured) and the worker's heartbeat."""
    limit = app.config["READYZ_HEARTBEAT_SECONDS"]
    checks, age = {}, None
    try:
        with probe_engine(app).connect() as conn:
            conn.execute(text("SELECT 1"))
            if limit > 0:
                age = heartbeat.age_seconds(conn, now)
        checks["database"] = {"ok": True}
    except SQLAlchemyError as err:
        checks["database"] = _failed("database", err)
    if app.config.get("REDIS_URL"):
        try:
            probe_redis(app).ping()
            checks["redis"] = {"ok": True}
        except redis.RedisError as err:
            checks["redis"] = _failed("redis", err)
    if limit > 0:
        checks["worker"] = _worker_check(checks["database"]["ok"], age, limit)
    return checks


def _failed(name, err):
    # The answer is public: the error's detail (hosts, SQL) goes to the log, with this request's id.
    log.warning("readyz: %s check failed: %s", name, err)
    return {"ok": False, "error": f"{name} unreachable ({type(err).__name__})"}


def _worker_check(database_ok, age, limit):
    if not database_ok:
        return {"ok": False, "error": "unknown: the database is unreachable"}
    if age is None:
        return {"ok": False, "error": "no worker has written a heartbeat"}
    if age > limit:
        return {"ok": False, "error": f"the newest worker heartbeat is {age:.0f} s old (limit {limit:g} s)"}
    return {"ok": True, "heartbeat_age_seconds": round(age, 1)}
