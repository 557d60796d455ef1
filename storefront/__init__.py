"""The storefront: create_app() wires configuration, database, Stripe, Socket.IO and routes."""

from pathlib import Path

from flask import Flask

from . import redis_pools
from .config import Config, check_production_safety, check_stripe_keys
from .database import configure_engine, engine_options
from .errors import register_error_handlers
from .extensions import db, limiter, migrate, socketio
from .guards import ShopJSONProvider
from .logs import configure_logging, install_request_logging
from .merchant.throttle import LoginThrottle
from .proxy import socket_origin_check, trust_proxies
from .realtime import limits as socket_limits
from .realtime.redis_queue import push_queue
from .schema import prepare_schema
from .secret_key import installation_secret


def _shipped(name):
    """A data folder: inside the package when installed (the wheel maps it there), else the checkout's top level."""
    package = Path(__file__).resolve().parent
    installed = package / name
    return installed if installed.is_dir() else package.parent / name


TEMPLATES, STATIC, MIGRATIONS = _shipped("templates"), _shipped("static"), _shipped("migrations")


def create_app(config=None):
    """Build an app; `config` (a dict) overrides what the environment says."""
    settings, overrides = Config(), config or {}
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        static_folder=str(STATIC),
        instance_path=overrides.get("INSTANCE_PATH", settings.INSTANCE_PATH),
    )
    app.json = ShopJSONProvider(app)
    # A path with doubled slashes is not found (a JSON 404 under /api/), not redirected: an API answers what
    # was asked, and a redirect would turn e.g. PUT /api/cart/items//0 into a non-JSON 308.
    app.url_map.merge_slashes = False
    app.config.from_object(settings)
    app.config.update(overrides)
    check_production_safety(app.config)
    check_stripe_keys(app.config)
    # Before the migrations and everything else: their lines go out in the store's format (migrations/env.py
    # leaves a configured root logger alone); the request id is taken before any other before_request runs.
    configure_logging(app.config)
    install_request_logging(app)
    if not app.config["SECRET_KEY"]:  # outside production (checked above): this installation's own key
        app.config["SECRET_KEY"] = installation_secret(app.instance_path)
    register_extensions(app)
    register_payments(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app):
    from .realtime import events  # noqa: F401 - handlers must exist before init_app

    pool = app.config["DATABASE_POOL_SIZE"], app.config["DATABASE_MAX_OVERFLOW"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"], *pool))
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    with app.app_context():
        configure_engine(db.engine)
        # On a schema older than the code (MIGRATE_ON_START off) the app is still built, so that
        # `flask --app storefront db upgrade` can run; the entry points then refuse to serve it.
        app.extensions["schema_refusal"] = prepare_schema(app, db.engine, MIGRATIONS)
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        # A deadline on the limiter's calls (waiting for a pooled connection included): past it the request
        # goes on, counted in memory (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED) until the storage answers again.
        timeout, _ = redis_pools.settings(app.config)
        pool = redis_pools.blocking_pool(
            app.config["RATELIMIT_STORAGE_URI"], wait_seconds=timeout, **redis_pools.deadline_options(timeout)
        )
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"connection_pool": pool})
    limiter.init_app(app)
    # Wrong admin logins are counted in the limiter's store (this app's, captured now: the limiter is a singleton).
    app.extensions["admin_throttle"] = LoginThrottle(limiter.storage, app.config)
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        # Always given (None without a queue): the singleton would otherwise keep an earlier app's manager.
        client_manager=push_queue(app.config),
        # The page's own origin, as the app believes it (behind a proxy: what TRUSTED_PROXY_HOPS lets it believe).
        cors_allowed_origins=(
            app.config.get("SOCKETIO_CORS_ORIGINS") or socket_origin_check(app.config["TRUSTED_PROXY_HOPS"])
        ),
        manage_session=False,
        # One event of a connection at a time: a flood waits on its own socket, not in the server's memory.
        async_handlers=False,
        max_http_buffer_size=app.config["SOCKETIO_MAX_MESSAGE_BYTES"],
    )
    socket_limits.install(app, socketio)
    trust_proxies(app)  # last: outside the engine.io middleware init_app installed


def register_payments(app):
    from .identity import store_id
    from .payments.gateway import StripeGateway
    from .realtime.publish import SocketPublisher
    from .wiring import current_shop
    from .worker import MODES, Worker

    identity = None  # an older schema may have no identity table: this app will not serve
    if not app.extensions["schema_refusal"]:
        with app.app_context():
            identity = store_id(db.engine)
    app.extensions["gateway"] = StripeGateway(
        app.config["STRIPE_SECRET_KEY"],
        store_id=identity,
        api_base=app.config["STRIPE_API_BASE"] or None,
        timeout=app.config["STRIPE_TIMEOUT"],
        max_retries=app.config["STRIPE_MAX_RETRIES"],
    )
    app.extensions["publisher"] = SocketPublisher(socketio)
    if app.config["WORKER"] not in MODES:
        raise RuntimeError(f"WORKER must be one of {', '.join(MODES)}, not {app.config['WORKER']!r}")
    app.extensions["worker"] = Worker(
        app,
        start_task=socketio.start_background_task,
        sleep=socketio.sleep,
        shop_factory=current_shop,
        active=app.config["WORKER"] == "embedded",
    )


def register_blueprints(app):
    from .cart.routes import bp as cart_bp
    from .catalog.routes import bp as catalog_bp
    from .checkout.routes import bp as checkout_bp
    from .guards import refuse_cross_site
    from .merchant.api import bp as merchant_api_bp
    from .merchant.auth import admin_gate
    from .ops.routes import bp as ops_bp
    from .ops.routes import observe_requests
    from .webhooks.routes import bp as webhooks_bp

    app.before_request(admin_gate)
    app.before_request(refuse_cross_site)
    observe_requests(app)
    for bp in (catalog_bp, cart_bp, checkout_bp, webhooks_bp, merchant_api_bp, ops_bp):
        app.register_blueprint(bp)
    from .merchant.admin_views import register_admin

    register_admin(app)
    from .pages.routes import bp as pages_bp

    app.register_blueprint(pages_bp)


def register_commands(app):
    from .cli import cleanup_carts_command, reconcile_command, worker_command
    from .webhooks.endpoint_command import stripe_webhook_endpoint_command

    app.cli.add_command(reconcile_command)
    app.cli.add_command(cleanup_carts_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(stripe_webhook_endpoint_command)
