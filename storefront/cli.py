"""Command-line entry points: `flask --app storefront reconcile` and `flask --app storefront cleanup-carts`."""

import json
import time
import uuid

import click
from flask.cli import with_appcontext

from .cart.cleanup import remove_abandoned_carts
from .payments.budget import reconcile_budget
from .payments.reconcile import reconcile_paced
from .payments.sync import sync_cart
from .wiring import current_shop


@click.command("reconcile")
@click.option("--older-than", default=None, type=float, help="Seconds an order must have awaited payment.")
@click.option("--lookback", default=None, type=int, help="Seconds of Stripe's events to look for missed webhooks in.")
@with_appcontext
def reconcile_command(older_than, lookback):
    """Ask Stripe about unsettled payments and missed webhooks and apply what it says; exit 1 if it could not."""
    from flask import current_app

    config = current_app.config
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
    click.echo(json.dumps(summary))
    if summary["errors"]:
        # A cron job must see that Stripe could not be asked about everything.
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
    from flask import current_app

    if older_than is None:
        older_than = current_app.config["ABANDONED_CART_SECONDS"]
    shop = current_shop()
    removed = remove_abandoned_carts(shop, shop.now(), older_than)
    click.echo(json.dumps({"carts_removed": removed}))
