"""Command-line entry points: `flask --app storefront worker`, `reconcile` and `cleanup-carts`."""

import json
import signal
import threading
import time
import uuid

import click
from flask.cli import with_appcontext

from .cart.cleanup import remove_abandoned_carts
from .payments.budget import reconcile_budget
from .payments.reconcile import reconcile_paced
from .payments.sync import sync_cart
from .realtime.publish import SocketPublisher
from .schema import SchemaBehind, require_current_schema
from .wiring import current_shop


@click.command("reconcile")
@click.option("--older-than", default=None, type=float, help="Seconds an order must have awaited payment.")
@click.option("--lookback", default=None, type=int, help="Seconds of Stripe's events to look for missed webhooks in.")
@with_appcontext
def reconcile_command(older_than, lookback):
    """Ask Stripe about unsettled payments and missed webhooks and apply what it says; exit 1 if it could not
    ask Stripe about everything, or if any item of the pass failed."""
    config = _app_on_current_schema().config
    options = {"older_than_seconds": older_than, "lookback_seconds": lookback}
    shop = current_shop()
    # This process ends with the command, and a background task with it: bring PaymentIntents up to date now.
    lease = config["SYNC_LEASE_SECONDS"]
    shop.schedule_sync = lambda cart_id: sync_cart(shop, cart_id, uuid.uuid4().hex, lease)
    summary = reconcile_paced(
        shop,
        reconcile_budget(config, time.sleep),
        config,
        **{key: value for key, value in options.items() if value is not None},
    )
    failed = summary["errors"] or summary["failures"]
    if failed:
        # A cron job must see that Stripe could not be asked about everything, or that an item failed (a bug
        # or the database): the rest was done, and the next pass tries those again.
        click.echo(
            f"reconcile: {summary['errors']} Stripe error(s), {summary['failures']} failure(s); see the log",
            err=True,
        )
    click.echo(json.dumps(summary))  # the last line: what scripts parse
    if failed:
        raise click.exceptions.Exit(1)


@click.command("cleanup-carts")
@click.option(
    "--older-than",
    default=None,
    type=float,
    help="Seconds since a cart last changed (default: ABANDONED_CART_SECONDS).",
)
@with_appcontext
def cleanup_carts_command(older_than):
    """Remove abandoned open carts (no order, no live PaymentIntent) with their lines and snapshots."""
    config = _app_on_current_schema().config
    if older_than is None:
        older_than = config["ABANDONED_CART_SECONDS"]
    shop = current_shop()
    removed = remove_abandoned_carts(shop, shop.now(), older_than)
    click.echo(json.dumps({"carts_removed": removed}))


@click.command("worker")
@with_appcontext
def worker_command():
    """Run the store's background work (PaymentIntent sync, webhook events, reconcile, cleanup) until SIGTERM."""
    from .worker import Worker

    app = _app_on_current_schema()
    worker = Worker(app, start_task=_start_thread, sleep=time.sleep, shop_factory=current_shop)
    app.extensions["worker"] = worker  # what a use case run here schedules goes to this worker's syncs
    if app.config["SOCKETIO_MESSAGE_QUEUE"]:
        app.extensions["publisher"] = SocketPublisher(_push_emitter(app.config))
    stopping = threading.Event()

    def stop(*_):
        worker.stop()
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Worker polling every {worker.poll_seconds}s", err=True)
    worker.start()
    stopping.wait()
    # The loop's turn and the syncs under way finish (their Stripe update recorded): a lease left held
    # would delay the cart, a turn left held the job.
    worker.wait_idle(app.config["SYNC_LEASE_SECONDS"])


def _app_on_current_schema():
    """The app, or exit 1 with the revision it needs and the command to run, on an older schema."""
    from flask import current_app

    app = current_app._get_current_object()
    try:
        require_current_schema(app)
    except SchemaBehind as refusal:
        raise click.ClickException(str(refusal)) from None
    return app


def _push_emitter(config):
    """A write-only Socket.IO emitter on the message queue: a worker serves no tab, so it reads no push.
    Its publishes never hold the worker up (a hung Redis delays pushes, not orders)."""
    from .realtime.redis_queue import push_queue

    return push_queue(config, write_only=True)


def _start_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
