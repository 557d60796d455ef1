"""The Stripe.js shim in a real browser, on a page from another origin (CORS), as a checkout uses it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

PAGE = """<!doctype html><html><body>
<div id="payment"></div><button id="pay">Pay</button><pre id="result"></pre>
<script src="%(sandbox)s/v3/"></script>
<script>
const stripe = Stripe("%(pk)s");
let elements = null;
window.start = (clientSecret) => {
  elements = stripe.elements({clientSecret});
  elements.create("payment").mount("#payment");
};
document.getElementById("pay").addEventListener("click", async () => {
  const result = await stripe.confirmPayment({elements, redirect: "if_required",
    confirmParams: {return_url: location.href}});
  document.getElementById("result").textContent = JSON.stringify(result.error
    ? {error: result.error.code, decline: result.error.decline_code || null,
       pi: result.error.payment_intent && result.error.payment_intent.status}
    : {status: result.paymentIntent.status});
});
</script></body></html>"""


@pytest.fixture
def page(browser, sandbox):
    html = (PAGE % {"sandbox": sandbox.url, "pk": sandbox.publishable_key}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    tab = browser.new_page()
    tab.goto(f"http://127.0.0.1:{server.server_port}/checkout")
    yield tab
    tab.close()
    server.shutdown()


def pay(page, stripe_client, fill):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 4200, "currency": "eur"})
    page.evaluate("secret => window.start(secret)", pi.client_secret)
    fill(page)
    page.click("#pay")
    return pi


def result(page):
    page.wait_for_function("document.getElementById('result').textContent !== ''")
    return page.eval_on_selector("#result", "e => JSON.parse(e.textContent)")


def test_card_success_and_decline(page, stripe_client):
    pi = pay(page, stripe_client, lambda p: p.fill("[data-testid=sandbox-card-number]", "4242424242424242"))
    assert result(page) == {"status": "succeeded"}
    assert stripe_client.v1.payment_intents.retrieve(pi.id).amount_received == 4200
    page.eval_on_selector("#result", "e => e.textContent = ''")
    pay(page, stripe_client, lambda p: p.fill("[data-testid=sandbox-card-number]", "4000000000009995"))
    assert result(page) == {"error": "card_declined", "decline": "insufficient_funds", "pi": "requires_payment_method"}


@pytest.mark.parametrize(
    "button, expected",
    [
        ("sandbox-3ds-complete", {"status": "succeeded"}),
        (
            "sandbox-3ds-fail",
            {"error": "payment_intent_authentication_failure", "decline": None, "pi": "requires_payment_method"},
        ),
    ],
)
def test_3ds_modal(page, stripe_client, button, expected):
    pay(page, stripe_client, lambda p: p.fill("[data-testid=sandbox-card-number]", "4000002500003155"))
    page.click(f"[data-testid={button}]")
    assert result(page) == expected


def test_sepa_is_processing(page, stripe_client):
    def fill(p):
        p.check("[data-testid=sandbox-method-sepa]")
        p.fill("[data-testid=sandbox-iban]", "AT611904300234573201")

    pay(page, stripe_client, fill)
    assert result(page) == {"status": "processing"}


def test_a_usd_payment_is_not_offered_sepa(page, stripe_client):
    """As Stripe's Payment Element, the shim offers only the PaymentIntent's payment_method_types: SEPA Debit
    takes eur only (docs.stripe.com/payments/sepa-debit), so a usd PaymentIntent shows the card alone."""
    pi = stripe_client.v1.payment_intents.create(params={"amount": 4200, "currency": "usd"})
    page.evaluate("secret => window.start(secret)", pi.client_secret)
    page.wait_for_selector("[data-testid=sandbox-method-card]")
    assert page.locator("[data-testid=sandbox-method-sepa]").count() == 0
    assert page.locator("[data-testid=sandbox-iban]").count() == 0
