"""Disputes and failed refunds reach the merchant: the order leads the admin's queue with what Stripe said.

Real HTTP both ways: the sandbox disputes a test card's charge, or fails a test card's refund, sends the
events to the store's webhook, the worker's inbox asks Stripe about the object and records it on the order.
"""

import json

import pytest

from tests.conftest import wait_for
from tests.integration.test_merchant import GRINDER, PASSWORD, Merchant, basic
from tests.shopping import browser_confirm, control, order_status, start_and_confirm

pytestmark = pytest.mark.timeout(90)

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def shop(request, make_store, sandbox, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_store(sandbox=sandbox, database_url=url, ADMIN_PASSWORD=PASSWORD)


def paid_order(shop, payment_method):
    """A shopper pays a grinder ($129.00) with this test card; the paid order's id and PaymentIntent."""
    shopper = shop.client()
    _cart, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    sandbox = shop.sandbox
    status, _pi = browser_confirm(sandbox.url, sandbox.publishable_key, started, payment_method=payment_method)
    assert status == 200
    order_status(shopper, order_id, "paid")
    return order_id, started["payment_intent_id"]


def flagged(merchant, order_id, prefix):
    """Wait until the order's `attention` starts with `prefix`; the merchant's view of the order."""

    def check():
        order = next(o for o in merchant.get("/orders") if o["id"] == order_id)
        return order if (order["attention"] or "").startswith(prefix) else None

    return wait_for(check, timeout=20, message=f"order {order_id} flagged {prefix!r}")


def history_of(merchant, order_id):
    return [(line["kind"], line["message"]) for line in merchant.get(f"/orders/{order_id}")["history"]]


def test_a_disputed_payment_leads_the_admin_queue_with_its_reason_and_amount(shop, stripe_client):
    merchant, admin = Merchant(shop), shop.app.test_client()
    order_id, _pi_id = paid_order(shop, "pm_card_createDispute")
    quiet_id, _ = paid_order(shop, "pm_card_visa")  # newer, so listed before it but for the flag

    order = flagged(merchant, order_id, "disputed")
    assert order["attention"] == "disputed: fraudulent, $129.00 (needs_response)"
    assert order["status"] == "paid"  # the money was received; the dispute is the merchant's to answer
    orders = merchant.get("/orders")
    assert [o["id"] for o in orders][:2] == [order_id, quiet_id]  # the review queue first
    assert orders[1]["attention"] is None
    lines = history_of(merchant, order_id)
    opened = [message for kind, message in lines if kind == "dispute"]
    assert len(opened) == 1 and opened[0].endswith("needs_response: fraudulent, $129.00")

    listing = admin.get("/admin/orders/", headers=basic()).get_data(as_text=True)
    assert "disputed: fraudulent, $129.00 (needs_response)" in listing
    assert listing.index(f"?id={order_id}") < listing.index(f"?id={quiet_id}")
    overview = admin.get("/admin/", headers=basic()).get_data(as_text=True)
    assert "1 order(s) flagged" in overview
    page = admin.get(f"/admin/orders/details/?id={order_id}", headers=basic()).get_data(as_text=True)
    assert "Dispute" in page and opened[0][:1].upper() + opened[0][1:] in page  # the history in words

    # The merchant accepts the dispute at Stripe: the order says it was lost, and its history both steps.
    dispute_id = opened[0].split()[1]
    stripe_client.v1.disputes.close(dispute_id)
    order = flagged(merchant, order_id, "dispute lost")
    assert order["attention"] == "dispute lost: fraudulent, $129.00"
    kinds = [message.split(":")[0] for kind, message in history_of(merchant, order_id) if kind == "dispute"]
    assert kinds == [f"dispute {dispute_id} needs_response", f"dispute {dispute_id} lost"]


def test_a_refund_that_fails_after_it_succeeded_sends_the_order_back_for_review(shop):
    merchant, admin = Merchant(shop), shop.app.test_client()
    order_id, _pi_id = paid_order(shop, "pm_card_refundFail")
    answer = merchant.post(f"/orders/{order_id}/refund", {"amount": 5000})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["amount_refunded"] == 5000

    order = flagged(merchant, order_id, "refund of")
    assert order["attention"] == "refund of $50.00 failed: expired_or_canceled_card"
    assert order["amount_refunded"] == 0  # the shopper did not get it back: the money is in the balance
    lines = history_of(merchant, order_id)
    failed = [message for kind, message in lines if kind == "refund_failed"]
    assert len(failed) == 1 and "of $50.00 failed (expired_or_canceled_card)" in failed[0]
    listing = admin.get("/admin/orders/", headers=basic()).get_data(as_text=True)
    assert "refund of $50.00 failed: expired_or_canceled_card" in listing


def test_a_full_refund_that_fails_reopens_the_refunded_order_for_review(shop):
    merchant = Merchant(shop)
    order_id, _pi_id = paid_order(shop, "pm_card_refundFail")
    assert merchant.post(f"/orders/{order_id}/refund").get_json()["status"] == "refunded"
    order = flagged(merchant, order_id, "refund of")
    assert (order["status"], order["amount_refunded"]) == ("needs_review", 0)
    assert order["attention"] == "refund of $129.00 failed: expired_or_canceled_card"


def test_a_dispute_whose_webhooks_were_all_dropped_is_found_by_reconciliation_before_its_payment(make_store, sandbox):
    shop = make_store(sandbox=sandbox, ADMIN_PASSWORD=PASSWORD)
    merchant, shopper = Merchant(shop), shop.client()
    control(sandbox.url, "POST", "/faults", {"webhook_drop_rate": 1.0})  # no webhook reaches the store
    _cart, started, order_id = start_and_confirm(shopper, (GRINDER, 1))
    assert (
        browser_confirm(sandbox.url, sandbox.publishable_key, started, payment_method="pm_card_createDispute")[0] == 200
    )
    delivered = lambda: [d["event_type"] for d in control(sandbox.url, "GET", "/deliveries")["data"]]  # noqa: E731
    wait_for(lambda: "charge.dispute.created" in delivered(), message="the dropped dispute event")
    assert next(o for o in merchant.get("/orders") if o["id"] == order_id)["status"] == "awaiting_payment"

    # Stripe lists events newest first: the dispute's comes before the payment's, and applies the payment
    # (read from Stripe) before it records itself on the now paid order.
    result = shop.app.test_cli_runner().invoke(args=["reconcile", "--older-than", "99999"])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.exit_code == 0, result.output
    assert summary["payments_applied"] >= 1
    order = next(o for o in merchant.get("/orders") if o["id"] == order_id)
    assert order["status"] == "paid"
    assert order["attention"] == "disputed: fraudulent, $129.00 (needs_response)"
