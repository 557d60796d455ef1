"""The other baseline: the storefront as peers build it, updating Stripe inside the cart request.

`python -m bench.naive_server` runs the real storefront (same database, routes and pushes, eventlet)
with one difference: a change reaches the other tabs only after Stripe has the new amount, and the
request waits for it. No background sync and no update budget: every change is one Stripe update.
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402

import psycopg.waiting  # noqa: E402

psycopg.waiting.wait = psycopg.waiting.wait_select

from flask import g  # noqa: E402

from storefront import create_app  # noqa: E402
from storefront.extensions import socketio  # noqa: E402
from storefront.payments.sync import sync_until_current  # noqa: E402
from storefront.wiring import current_shop  # noqa: E402


class StripeFirstPublisher:
    """Pushes a cart only after its PaymentIntent was updated in this request (pushed anyway if Stripe refused)."""

    def __init__(self, inner):
        self._inner = inner

    def cart(self, view):
        payment = view.get("payment")
        if payment and payment["amount"] != view["total"] and not g.get("updating_stripe"):
            g.updating_stripe = True
            try:
                if sync_until_current(current_shop(), view["id"], wait_seconds=0):
                    return  # the sync pushed the cart with its new amount
            finally:
                g.updating_stripe = False
        self._inner.cart(view)

    def order(self, cart_id, order):
        self._inner.order(cart_id, order)


def main():
    # No background work at all (WORKER=off): the request itself brings Stripe up to date.
    app = create_app({"SOCKETIO_ASYNC_MODE": "eventlet", "WORKER": "off"})
    app.extensions["publisher"] = StripeFirstPublisher(app.extensions["publisher"])
    socketio.run(
        app, host="127.0.0.1", port=int(os.environ["PORT"]), max_size=int(os.environ.get("MAX_CONNECTIONS", 10000))
    )


if __name__ == "__main__":
    main()
