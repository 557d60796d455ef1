"""Command-line entry points: `flask --app storefront reconcile` and `flask --app storefront cleanup-carts`."""

import json
import uuid

import click
from flask.cli import with_appcontext

from .cart.cleanup import remove_abandoned_carts
from .payments.reconcile import reconcile
from .payments.sync import sync_cart
from .wiring import current_shop


@click.command("reconcile")
@click.option("--older-than", default=None, type=float, help="Seconds an order must have awaited payment.")
@click.option("--lookback", default=86400, type=int, help="Seconds of Stripe's recent PaymentIntents to check.")
@with_appcontext
def reconcile_command(older_than, lookback):
    """Ask Stripe about unsettled payments and apply what it says, as the webhook would have."""
    from flask import current_app

    if older_than is None:
        older_than = current_app.config["RECONCILE_AFTER_SECONDS"]
    shop = current_shop()
    # This process ends with the command, and a background task with it: bring PaymentIntents up to date now.
    lease = current_app.config["SYNC_LEASE_SECONDS"]
    shop.schedule_sync = lambda cart_id: sync_cart(shop, cart_id, uuid.uuid4().hex, lease)
    summary = reconcile(shop, older_than_seconds=older_than, lookback_seconds=lookback)
    click.echo(json.dumps(summary))


@click.command("cleanup-carts")
@click.option("--older-than", default=None, type=float,
              help="Seconds since a cart last changed (default: ABANDONED_CART_SECONDS).")
@with_appcontext
def cleanup_carts_command(older_than):
    """Remove abandoned open carts (no order, no live PaymentIntent) with their lines and snapshots."""
    from flask import current_app

    if older_than is None:
        older_than = current_app.config["ABANDONED_CART_SECONDS"]
    shop = current_shop()
    removed = remove_abandoned_carts(shop.session, shop.now(), older_than)
    click.echo(json.dumps({"carts_removed": removed}))
