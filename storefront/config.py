"""Configuration from the environment; no secret has a production default."""

import os
from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import redis_pools

# Every session-signing key ever published in this repository (the old development default, fixed keys
# of tests): anyone can sign a session with them, so they are refused everywhere, for good. Add to this
# list, never remove from it.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        "dev-only-insecure-secret-key",  # Config's default SECRET_KEY until issue 23
        "crash-test-secret",
        "flood-test-secret",
        "test-floor",
    }
)
# Stripe keys that move real money: only a production store (STOREFRONT_ENV=production) may hold them.
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")
SANDBOX_SECRET_KEY = "sk_test_sandbox"
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"


def _env_float(env, name, default):
    return float(env.get(name, default))


def _env_int(env, name, default, minimum):
    value = int(env.get(name) or default)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _timezone(name):
    if name.upper() == "UTC":  # the default needs no time zone database (a slim image may have none)
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"STORE_TIMEZONE={name!r} is not a time zone zoneinfo knows (such as Europe/Paris)") from err


class Config:
    """Settings read once from the environment when the app is created."""

    def __init__(self, environ=None):  # noqa: PLR0915 - one line per setting reads best
        env = os.environ if environ is None else environ
        self.ENV_NAME = env.get("STOREFRONT_ENV", "development")
        # Unset: production refuses to start; elsewhere create_app uses this installation's own random
        # key, kept in the instance folder (see storefront/secret_key.py). There is no default key.
        self.SECRET_KEY = env.get("SECRET_KEY", "")
        # Where the installation's files live (the generated SECRET_KEY, the default SQLite database);
        # unset: Flask's default, instance/ beside the package (git-ignored).
        self.INSTANCE_PATH = os.path.abspath(env["INSTANCE_PATH"]) if env.get("INSTANCE_PATH") else None
        # Whether a process applies the migrations itself when it starts (the demo, development, tests). Off in
        # production, where `flask --app storefront db upgrade` is a release step run once before the processes
        # start: a bad migration then fails there instead of crash-looping every process, and a process on an
        # older schema refuses to serve, naming the revision it needs.
        self.MIGRATE_ON_START = env.get("MIGRATE_ON_START", "0" if self.ENV_NAME == "production" else "1") == "1"
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
        # One JSON object a line for a log shipper in production, one readable line elsewhere (storefront/logs.py).
        self.LOG_FORMAT = env.get("LOG_FORMAT") or ("json" if self.ENV_NAME == "production" else "text")
        # One line per HTTP request (method, path, status, duration, request id) at INFO; 0 when a proxy logs them.
        self.ACCESS_LOG = env.get("ACCESS_LOG", "1") == "1"
        # /metrics answers only a scraper sending `Authorization: Bearer <this>`; unset, /metrics is off (404).
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "")
        # /readyz fails when no worker has written its heartbeat for this long (0: the check is left out).
        self.READYZ_HEARTBEAT_SECONDS = _env_float(env, "READYZ_HEARTBEAT_SECONDS", 60)
        self.SQLALCHEMY_DATABASE_URI = _database_url(env.get("DATABASE_URL", "sqlite:///storefront.sqlite3"))
        # Connections one process keeps to PostgreSQL, and how many more it may open at a peak (closed on
        # return): every process's pool + overflow must fit in the server's max_connections, so an operator
        # running more processes lowers them (docs/production.md, "Database connections"). SQLite: always 1.
        self.DATABASE_POOL_SIZE = _env_int(env, "DATABASE_POOL_SIZE", 20, minimum=1)
        self.DATABASE_MAX_OVERFLOW = _env_int(env, "DATABASE_MAX_OVERFLOW", 0, minimum=0)
        self.SOCKETIO_ASYNC_MODE = env.get("SOCKETIO_ASYNC_MODE", "threading")
        self.SOCKETIO_MESSAGE_QUEUE = env.get("SOCKETIO_MESSAGE_QUEUE") or None
        # The pub/sub channel on the queue: stores (or test runs) sharing one Redis need their own,
        # since Redis pub/sub ignores the database number and every store has a room `cart:1`.
        self.SOCKETIO_CHANNEL = env.get("SOCKETIO_CHANNEL", "flask-socketio")
        # How many reverse proxies stand in front of the app, each setting X-Forwarded-For/-Proto/-Host/-Port
        # (werkzeug's ProxyFix; storefront/proxy.py). 0 believes none of those headers, since any client can
        # send them; behind one nginx, 1. It counts hops, not addresses: the app's port must be reachable only
        # through the proxy (bind it to 127.0.0.1 or a private network), or a client could speak as the proxy.
        self.TRUSTED_PROXY_HOPS = _non_negative_int(env, "TRUSTED_PROXY_HOPS")
        self.STRIPE_WEBHOOK_SECRET = env.get("STRIPE_WEBHOOK_SECRET", "")
        self.STRIPE_SECRET_KEY = env.get("STRIPE_SECRET_KEY", "")
        # No secret key means offline: the local Stripe sandbox, with its well-known test keys.
        self.STRIPE_OFFLINE = not self.STRIPE_SECRET_KEY
        self.STRIPE_SANDBOX_PORT = int(env.get("STRIPE_SANDBOX_PORT", 12111))
        sandbox = f"http://127.0.0.1:{self.STRIPE_SANDBOX_PORT}"
        if self.STRIPE_OFFLINE:
            self.STRIPE_SECRET_KEY = SANDBOX_SECRET_KEY
        self.STRIPE_PUBLISHABLE_KEY = env.get("STRIPE_PUBLISHABLE_KEY") or (
            SANDBOX_PUBLISHABLE_KEY if self.STRIPE_OFFLINE else ""
        )
        self.STRIPE_API_BASE = env.get("STRIPE_API_BASE") or (sandbox if self.STRIPE_OFFLINE else "")
        self.STRIPE_JS_URL = env.get("STRIPE_JS_URL") or (
            f"{self.STRIPE_API_BASE}/v3/" if self.STRIPE_OFFLINE else "https://js.stripe.com/v3/"
        )
        self.STRIPE_TIMEOUT = _env_float(env, "STRIPE_TIMEOUT", 10)
        self.STRIPE_MAX_RETRIES = int(env.get("STRIPE_MAX_RETRIES", 2))
        self.CURRENCY = env.get("STORE_CURRENCY", "usd")
        # The merchant's clock: the admin shows times in it (stored times stay UTC). A name zoneinfo does not
        # know stops the start here rather than showing UTC under a local label.
        self.TIMEZONE = _timezone(env.get("STORE_TIMEZONE") or "UTC")
        # How long a cart may stay frozen before the server asks Stripe whether to release it.
        self.FREEZE_SECONDS = _env_float(env, "FREEZE_SECONDS", 900)
        # A freeze whose payment has not started (its PaymentIntent never reached requires_action, processing,
        # requires_capture or succeeded) is released after this long, so a handshake nobody pays for holds
        # stock minutes, not FREEZE_SECONDS; long enough to type a card's details into the payment form.
        self.RESERVATION_SECONDS = _env_float(env, "RESERVATION_SECONDS", 180)
        # What one client may hold in frozen carts at once (0: no limit): a session is its cookie, which a
        # client can drop, so the address bounds a client; it is request.remote_addr (behind a proxy, the
        # proxy's unless TRUSTED_PROXY_HOPS counts it), and shoppers behind one NAT share it.
        self.RESERVE_FREEZES_PER_SESSION = int(env.get("RESERVE_FREEZES_PER_SESSION", 2))
        self.RESERVE_UNITS_PER_SESSION = int(env.get("RESERVE_UNITS_PER_SESSION", 10))
        self.RESERVE_FREEZES_PER_ADDRESS = int(env.get("RESERVE_FREEZES_PER_ADDRESS", 3))
        self.RESERVE_UNITS_PER_ADDRESS = int(env.get("RESERVE_UNITS_PER_ADDRESS", 20))
        # Orders still awaiting payment after this long are reconciled with Stripe.
        self.RECONCILE_AFTER_SECONDS = _env_float(env, "RECONCILE_AFTER_SECONDS", 120)
        self.RECONCILE_INTERVAL_SECONDS = _env_float(env, "RECONCILE_INTERVAL_SECONDS", 60)
        # Missed webhooks are looked for among this many seconds of Stripe's events.
        self.RECONCILE_LOOKBACK_SECONDS = int(env.get("RECONCILE_LOOKBACK_SECONDS", 86400))
        # Only events some webhook endpoint has not acknowledged (Stripe's `delivery_success=false`); 0 reads
        # every event of the handled types, for a store whose webhooks reach it by other means (`stripe listen`).
        self.RECONCILE_UNDELIVERED_ONLY = env.get("RECONCILE_UNDELIVERED_ONLY", "1") == "1"
        # Reconciliation's Stripe calls a second, store-wide, beside the updates' STRIPE_UPDATES_PER_SECOND.
        self.RECONCILE_REQUESTS_PER_SECOND = _env_float(env, "RECONCILE_REQUESTS_PER_SECOND", 4)
        # A short pause before a PaymentIntent update lets a burst of changes coalesce.
        self.SYNC_COALESCE_SECONDS = _env_float(env, "SYNC_COALESCE_SECONDS", 0.05)
        self.SYNC_LEASE_SECONDS = _env_float(env, "SYNC_LEASE_SECONDS", 30)
        # Where background work runs: `embedded` in this web process, or `off` (a `flask worker` process does it).
        # Production's default is `off`: there the worker is its own supervised service (deploy/).
        self.WORKER = env.get("WORKER") or ("off" if self.ENV_NAME == "production" else "embedded")
        # How often a worker looks for lagging PaymentIntents and due events (the fallback when nothing woke it).
        self.WORKER_POLL_SECONDS = _env_float(env, "WORKER_POLL_SECONDS", 0.2)
        # How often a worker looks for freezes past FREEZE_SECONDS to release (its own short turn).
        self.FREEZE_SWEEP_SECONDS = _env_float(env, "FREEZE_SWEEP_SECONDS", 2)
        self.CART_RATE_LIMIT = env.get("CART_RATE_LIMIT", "20 per second; 600 per hour")
        # Handshakes (each freezes a cart and reserves its stock) per session, and per client address.
        self.CHECKOUT_RATE_LIMIT = env.get("CHECKOUT_RATE_LIMIT", "6 per minute; 60 per hour")
        self.CHECKOUT_ADDRESS_RATE_LIMIT = env.get("CHECKOUT_ADDRESS_RATE_LIMIT", "30 per minute; 300 per hour")
        # Socket.IO packets one connection may send (a tab sends about one: its connect); past it, it is closed.
        self.SOCKETIO_EVENT_LIMIT = env.get("SOCKETIO_EVENT_LIMIT", "10 per second; 120 per minute")
        # The largest Socket.IO message (engine.io's max_http_buffer_size): a larger one closes the connection.
        self.SOCKETIO_MAX_MESSAGE_BYTES = int(env.get("SOCKETIO_MAX_MESSAGE_BYTES", 16 * 1024))
        # Database connections Socket.IO handlers may hold at once (unset: a quarter of the pool), and how
        # long a handler waits for one before answering `busy`: the rest of the pool stays HTTP's.
        self.SOCKETIO_DB_CONNECTIONS = int(env.get("SOCKETIO_DB_CONNECTIONS") or 0) or None
        self.SOCKETIO_DB_WAIT_SECONDS = _env_float(env, "SOCKETIO_DB_WAIT_SECONDS", 5)
        # An open cart nobody has changed for this long (no order, no live PaymentIntent) is removed.
        self.ABANDONED_CART_SECONDS = _env_float(env, "ABANDONED_CART_SECONDS", 30 * 86400)
        self.CART_CLEANUP_INTERVAL_SECONDS = _env_float(env, "CART_CLEANUP_INTERVAL_SECONDS", 3600)
        # Redis, when configured, is what every process shares: pushes, the Stripe update budget.
        queue = self.SOCKETIO_MESSAGE_QUEUE or ""
        self.REDIS_URL = env.get("REDIS_URL") or (queue if queue.startswith(("redis://", "rediss://")) else None)
        # How long any Redis command may take (connecting included) before the store goes on without Redis:
        # a healthy Redis answers in about a millisecond, a hung one never, and a change must not wait on it.
        self.REDIS_TIMEOUT_SECONDS = _env_float(env, "REDIS_TIMEOUT_SECONDS", redis_pools.TIMEOUT_SECONDS)
        # After a Redis failure, how long pushes and the update budget skip it before one call tries again.
        self.REDIS_RETRY_SECONDS = _env_float(env, "REDIS_RETRY_SECONDS", redis_pools.RETRY_SECONDS)
        # Stripe allows ~25 writes/s per endpoint: background PaymentIntent updates share this many a second.
        self.STRIPE_UPDATES_PER_SECOND = _env_float(env, "STRIPE_UPDATES_PER_SECOND", 20)
        # Syncs one process runs at once, so a repricing storm is a queue and not a thread per cart; unset (0),
        # enough to keep the update budget busy: STRIPE_UPDATES_PER_SECOND x 0.5 s, between 4 and 16 (worker/syncs.py).
        self.SYNC_CONCURRENCY = int(env.get("SYNC_CONCURRENCY") or 0)
        # The cart-change limit is counted in each process's memory, even with Redis: a Redis count is a
        # round trip on every change. Its budget is per process; a store that wants one store-wide count
        # names a shared store here (e.g. the Redis URL), and pays that round trip.
        self.RATELIMIT_STORAGE_URI = env.get("RATELIMIT_STORAGE_URI") or "memory://"
        self.RATELIMIT_KEY_PREFIX = self.SOCKETIO_CHANNEL
        # A rate-limit store that fails (Redis down or saturated) lets the request through, logged:
        # the limits protect the Stripe budget, which the update budget also paces, not correctness.
        self.RATELIMIT_SWALLOW_ERRORS = True
        # ... and one that timed out is skipped, counting in memory, until its periodic check finds it again
        # (Flask-Limiter's fallback): a hung store would otherwise cost every request its deadline.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.MAX_CONTENT_LENGTH = 16 * 1024
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SECURE = self.ENV_NAME == "production"
        # The cookie is signed again only when the session changed (a new cart id), not on every answer: a
        # permanent session's cookie lasts PERMANENT_SESSION_LIFETIME (31 days) from its last change.
        self.SESSION_REFRESH_EACH_REQUEST = False
        self.SEED_CATALOG = env.get("SEED_CATALOG", "1") == "1"
        # The merchant pages and API (/admin): off, every path 404, unless a password is set.
        self.ADMIN_PASSWORD = env.get("ADMIN_PASSWORD", "")
        # Failed admin logins (wrong HTTP Basic credentials) counted per client address and per account, in
        # RATELIMIT_STORAGE_URI; past either, that address or account is refused (429), even with the right
        # password, until the window passes. 10 a minute is more than mistyping ever needs; 30 a minute per
        # account caps guessing spread over many addresses at 43,200 a day, nothing against a random password,
        # while a merchant locked out by someone else's guessing waits at most a minute after it stops.
        self.ADMIN_LOGIN_RATE_LIMIT = env.get("ADMIN_LOGIN_RATE_LIMIT", "10 per minute")
        self.ADMIN_ACCOUNT_RATE_LIMIT = env.get("ADMIN_ACCOUNT_RATE_LIMIT", "30 per minute")


def _non_negative_int(env, name):
    value = env.get(name) or "0"
    if not value.isdigit():
        raise RuntimeError(f"{name} must be a whole number of 0 or more, not {value!r}")
    return int(value)


def _database_url(url):
    """Route PostgreSQL URLs to psycopg 3, the driver the project pins."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check_stripe_keys(config):
    """Refuse a secret key without its publishable key (the checkout page could not load Stripe.js),
    or a pair from different modes (a live secret key with a test publishable key, or the reverse)."""
    secret, publishable = config.get("STRIPE_SECRET_KEY") or "", config.get("STRIPE_PUBLISHABLE_KEY") or ""
    if secret and not publishable:
        raise RuntimeError(
            "STRIPE_SECRET_KEY is set but STRIPE_PUBLISHABLE_KEY is not: set the publishable key (pk_test_... or "
            "pk_live_...) from the same Stripe account, or unset both to use the offline sandbox"
        )
    modes = {key.split("_")[1] for key in (secret, publishable) if key.startswith(("sk_", "rk_", "pk_"))}
    if modes >= {"test", "live"}:
        raise RuntimeError("STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY are from different modes (test and live)")


def check_production_safety(config):
    """Refuse live Stripe keys outside production and a published SECRET_KEY anywhere; in production,
    refuse a missing SECRET_KEY or webhook secret."""
    production = config.get("ENV_NAME") == "production"
    live = [name for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY") if _is_live(config.get(name))]
    if live and not production:
        raise RuntimeError(
            f"{' and '.join(live)} {'is a live key' if len(live) == 1 else 'are live keys'}: live Stripe keys "
            "run only with STOREFRONT_ENV=production (a real SECRET_KEY, Secure cookies, a webhook secret)"
        )
    if config.get("SECRET_KEY") in PUBLISHED_SECRET_KEYS:
        raise RuntimeError(
            "SECRET_KEY is a key published in this repository: anyone can sign sessions with it. Set a random "
            "one (python -c 'import secrets; print(secrets.token_hex(32))'), or unset it outside production"
        )
    if not production:
        return
    if not config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production (STOREFRONT_ENV=production)")
    if not config.get("STRIPE_WEBHOOK_SECRET"):
        raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set in production")


def _is_live(key):
    return isinstance(key, str) and key.startswith(LIVE_KEY_PREFIXES)
