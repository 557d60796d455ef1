"""`flask --app storefront stripe-webhook-endpoint --url https://…/webhooks/stripe`: the store's endpoint at Stripe."""

import click
from flask.cli import with_appcontext

from ..payments.gateway import API_VERSION, PaymentError
from ..wiring import current_shop
from .inbox import HANDLERS


@click.command("stripe-webhook-endpoint")
@click.option("--url", required=True, help="The store's public webhook URL, ending in /webhooks/stripe.")
@click.option("--force", is_flag=True, help="Create it even if the account has an endpoint at this URL already.")
@with_appcontext
def stripe_webhook_endpoint_command(url, force):
    """Create the Stripe webhook endpoint at the store's pinned API version, for exactly the event types the
    store handles; print its signing secret (STRIPE_WEBHOOK_SECRET) once: Stripe shows it only now."""
    gateway = current_shop().gateway
    try:
        if not force and url in gateway.webhook_endpoint_urls():
            # Two endpoints at one URL deliver every event twice (the inbox would take it once, but each
            # has its own secret, and only one can be configured).
            raise click.ClickException(f"Stripe has an endpoint at {url} already; delete it first, or --force")
        endpoint_id, secret = gateway.create_webhook_endpoint(url, HANDLERS)
    except PaymentError as err:
        raise click.ClickException(f"Stripe refused: {err}") from err
    click.echo(f"created {endpoint_id} at API version {API_VERSION} for: {', '.join(sorted(HANDLERS))}", err=True)
    click.echo("set STRIPE_WEBHOOK_SECRET to the secret below (Stripe will not show it again):", err=True)
    click.echo(secret)
