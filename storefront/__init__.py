"""The storefront: create_app() wires configuration, database, Stripe, Socket.IO and routes."""

import logging

from flask import Flask

from . import redis_pools
from .config import Config, check_production_safety, check_stripe_keys
from .database import configure_engine, engine_options
from .errors import register_error_handlers
from .extensions import db, limiter, migrate, socketio
from .guards import ShopJSONProvider
from .merchant.throttle import LoginThrottle
from .realtime import limits as socket_limits
from .schema import prepare_schema
from .secret_key import installation_secret

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"


def create_app(config=None):
    """Build an app; `config` (a dict) overrides what the environment says."""
    settings, overrides = Config(), config or {}
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=overrides.get("INSTANCE_PATH", settings.INSTANCE_PATH),
    )
    app.json = ShopJSONProvider(app)
    app.config.from_object(settings)
    app.config.update(overrides)
    check_production_safety(app.config)
    check_stripe_keys(app.config)
    logging.basicConfig(
        level=app.config.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not app.config["SECRET_KEY"]:  # outside production (checked above): this installation's own key
        app.config["SECRET_KEY"] = installation_secret(app.instance_path)
    logging.getLogger("stripe").setLevel(logging.WARNING)
    register_extensions(app)
    register_payments(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app):
    from .realtime import events  # noqa: F401 - handlers must exist before init_app

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    with app.app_context():
        configure_engine(db.engine)
        # On a schema older than the code (MIGRATE_ON_START off) the app is still built, so that
        # `flask --app storefront db upgrade` can run; the entry points then refuse to serve it.
        app.extensions["schema_refusal"] = prepare_schema(app, db.engine, MIGRATIONS)
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS",
            {"connection_pool": redis_pools.blocking_pool(app.config["RATELIMIT_STORAGE_URI"])},
        )
    limiter.init_app(app)
    # Wrong admin logins are counted in the limiter's store (this app's, captured now: the limiter is a singleton).
    app.extensions["admin_throttle"] = LoginThrottle(limiter.storage, app.config)
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        # Always given (None without a queue): the singleton would otherwise keep an earlier app's manager.
        client_manager=redis_pools.push_queue(
            app.config["SOCKETIO_MESSAGE_QUEUE"], app.config.get("SOCKETIO_CHANNEL", "flask-socketio")
        ),
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS"),
        manage_session=False,
        # One event of a connection at a time: a flood waits on its own socket, not in the server's memory.
        async_handlers=False,
        max_http_buffer_size=app.config["SOCKETIO_MAX_MESSAGE_BYTES"],
    )
    socket_limits.install(app, socketio)


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
    from .webhooks.routes import bp as webhooks_bp

    app.before_request(admin_gate)
    app.before_request(refuse_cross_site)
    for bp in (catalog_bp, cart_bp, checkout_bp, webhooks_bp, merchant_api_bp):
        app.register_blueprint(bp)
    from .merchant.admin_views import register_admin

    register_admin(app)
    from .pages.routes import bp as pages_bp

    app.register_blueprint(pages_bp)


def register_commands(app):
    from .cli import cleanup_carts_command, reconcile_command, worker_command

    app.cli.add_command(reconcile_command)
    app.cli.add_command(cleanup_carts_command)
    app.cli.add_command(worker_command)
