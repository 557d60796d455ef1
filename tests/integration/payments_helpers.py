"""What a browser and Stripe.js do, done over HTTP against the sandbox, for the payment tests."""

import requests

from tests.conftest import wait_for


def browser_confirm(sandbox, checkout, **payment):
    """Confirm a PaymentIntent as Stripe.js does: publishable key + client_secret, straight to Stripe."""
    data = {
        "client_secret": checkout["client_secret"],
        "return_url": "http://127.0.0.1/orders/return",
        **(payment or {"payment_method": "pm_card_visa"}),
    }
    answer = requests.post(
        f"{sandbox.url}/v1/payment_intents/{checkout['payment_intent_id']}/confirm",
        data=data,
        headers={"Authorization": f"Bearer {sandbox.publishable_key}"},
        timeout=10,
    )
    return answer.status_code, answer.json()


def sandbox_control(sandbox, method, path, **json):
    answer = requests.request(method, f"{sandbox.url}/_sandbox{path}", json=json or None, timeout=10)
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


def synced(client):
    """Wait until the cart's PaymentIntent charges the cart total; returns the cart."""
    def check():
        cart = client.get("/api/cart").get_json()
        return cart if cart["payment"] and cart["payment"]["amount"] == cart["total"] else None

    return wait_for(check, message="the PaymentIntent amount to reach the cart total")


def order_status(client, order_id, *statuses):
    """Wait until the order reaches one of `statuses`; returns the order."""
    def check():
        order = client.get(f"/api/orders/{order_id}").get_json()
        return order if order["status"] in statuses else None

    return wait_for(check, message=f"order {order_id} to be {statuses}")


def pushed(tab, name):
    return [e["args"][0] for e in tab.get_received() if e["name"] == name]
