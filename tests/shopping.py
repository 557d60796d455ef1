"""What shoppers, browsers and Stripe do, over real HTTP, for the payment, reliability and soak tests."""

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import requests

from storefront.extensions import db
from storefront.models import Order, WebhookEvent, utcnow
from storefront.webhooks.inbox import process_due
from storefront.wiring import current_shop
from tests.conftest import wait_for


def sign(payload, secret, timestamp=None):
    """A `Stripe-Signature` header for `payload` (bytes or str), as Stripe computes it."""
    body = payload.decode() if isinstance(payload, bytes) else payload
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post_event(client, event, secret, timestamp=None, signature=None):
    """POST an event to the storefront's webhook, signed with `secret` unless `signature` is given."""
    payload = event if isinstance(event, (bytes, str)) else json.dumps(event)
    headers = {"Content-Type": "application/json"}
    if signature is None and secret is not None:
        signature = sign(payload, secret, timestamp)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=payload, headers=headers)


def browser_confirm(sandbox_url, publishable_key, checkout, timeout=10, **payment):
    """Confirm a PaymentIntent as Stripe.js does: publishable key + client_secret, straight to Stripe."""
    data = {
        "client_secret": checkout["client_secret"],
        "return_url": "http://127.0.0.1/checkout/return",
        **(payment or {"payment_method": "pm_card_visa"}),
    }
    answer = requests.post(
        f"{sandbox_url}/v1/payment_intents/{checkout['payment_intent_id']}/confirm",
        data=data,
        headers={"Authorization": f"Bearer {publishable_key}"},
        timeout=timeout,
    )
    return answer.status_code, answer.json()


def control(sandbox_url, method, path, body=None):
    """Call the sandbox's control API (/_sandbox/...)."""
    answer = requests.request(method, f"{sandbox_url}/_sandbox{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def fill(client, *lines):
    """Put (product_id, quantity) lines in the shopper's cart; returns the cart."""
    cart = None
    for product_id, quantity in lines:
        answer = client.post("/api/cart/items", json={"product_id": product_id, "quantity": quantity})
        assert answer.status_code == 200, answer.get_json()
        cart = answer.get_json()
    return cart


def start_and_confirm(client, *lines):
    """Fill the cart, start checkout and pass the handshake; returns (cart, checkout answer, order id)."""
    cart = fill(client, *lines)
    started = client.post("/api/checkout")
    assert started.status_code == 200, started.get_json()
    answer = client.post("/api/checkout/confirm", json={"cart_version": cart["version"]})
    assert answer.status_code == 200, answer.get_json()
    return cart, started.get_json(), answer.get_json()["order_id"]


def synced(client, timeout=10):
    """Wait until the cart's PaymentIntent charges the cart total; returns the cart."""

    def check():
        cart = client.get("/api/cart").get_json()
        return cart if cart["payment"] and cart["payment"]["amount"] == cart["total"] else None

    return wait_for(check, timeout=timeout, message="the PaymentIntent amount to reach the cart total")


def orders_snapshot(app):
    """Every order as a comparable tuple, for 'nothing changed' assertions."""
    with app.app_context():
        rows = db.session.query(Order).order_by(Order.id).all()
        snapshot = [(o.id, o.status, o.amount, o.amount_received, o.amount_refunded, o.refund_due) for o in rows]
        db.session.remove()
    return snapshot


def order_status(client, order_id, *statuses):
    """Wait until the order reaches one of `statuses`; returns the order."""

    def check():
        order = client.get(f"/api/orders/{order_id}").get_json()
        return order if order["status"] in statuses else None

    return wait_for(check, message=f"order {order_id} to be {statuses}")


def pushed(tab, name):
    """The payloads of the `name` events a Socket.IO test client received since the last call."""
    return [e["args"][0] for e in tab.get_received() if e["name"] == name]


def event_processed(store, event_id):
    """Whether the store's worker has processed the recorded webhook event."""
    with store.app.app_context():
        try:
            return db.session.get(WebhookEvent, event_id).processed_at is not None
        finally:
            db.session.remove()


def process_inbox_later(store, seconds):
    """The worker's pass over the webhook inbox, `seconds` from now (past a failed event's backoff)."""
    with store.app.app_context():
        try:
            shop = dataclasses.replace(current_shop(), now=lambda: utcnow() + timedelta(seconds=seconds))
            return process_due(shop, limit=100)
        finally:
            db.session.remove()


class Recorder(logging.Handler):
    """The WARNING and worse records a logger hands it (a test attaches it to the logger it watches)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)
