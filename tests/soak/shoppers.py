"""Simulated shoppers: two HTTP tabs and one or two Socket.IO tabs sharing one session, doing random things.

Everything a shopper is answered is recorded, so the invariant checker can hold the storefront to it:
every 2xx cart answer (its operation, version and lines), every status code, every push each tab got.
"""

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import requests

PRODUCTS = range(1, 9)
MUTATIONS = ("add", "set", "remove")
CARD = "card"
# (weight, what the shopper pays with, confirm parameters as Stripe.js sends them)
METHODS = [
    (36, "visa", {"payment_method": "pm_card_visa"}),
    (8, "mastercard", {"payment_method": "pm_card_mastercard"}),
    (9, "declined", {"payment_method": "pm_card_chargeDeclined"}),
    (5, "insufficient_funds", {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}),
    (10, "3ds_complete", {"payment_method": "pm_card_authenticationRequired"}),
    (4, "3ds_fail", {"payment_method": "pm_card_authenticationRequired"}),
    (14, "sepa", {"iban": "AT611904300234573201"}),
    (8, "sepa_fails", {"iban": "AT861904300235473202"}),
    (6, "sepa_late", {"iban": "AT321904300235473204"}),
]
ACTIONS = [
    (30, "add"),
    (10, "set"),
    (6, "remove"),
    (5, "look"),
    (7, "checkout"),
    (16, "pay"),
    (5, "pay_without_handshake"),
    (4, "abandon"),
    (3, "stale_handshake"),
    (7, "pay_while_other_tab_adds"),
    (3, "order_status"),
]


@dataclass
class Trace:
    """What one shopper was answered."""

    cart_id: int = 0
    mutations: list = field(default_factory=list)  # (op, version, lines) of each 2xx cart change answer
    statuses: Counter = field(default_factory=Counter)  # (operation, status, error code) of storefront answers
    kinds: Counter = field(default_factory=Counter)  # operations by kind, Stripe.js and Socket.IO calls included
    pushes: list = field(default_factory=list)  # (version, lines) of every cart push any tab received
    order_pushes: list = field(default_factory=list)  # (order id, status)
    payments: Counter = field(default_factory=Counter)  # payment method kinds used
    problems: list = field(default_factory=list)  # shopper-side invariant breaches
    operations: int = 0


def lines_of(cart):
    return {item["product_id"]: item["quantity"] for item in cart["items"]}


def weighted(rng, table):
    return rng.choices([row[1:] if len(row) > 2 else row[1] for row in table], [row[0] for row in table])[0]


class Shopper:
    """One shopper's session: HTTP tabs (Flask test clients) and Socket.IO tabs sharing its cookie."""

    def __init__(self, soak, index):
        self.soak, self.rng, self.trace = soak, random.Random(soak.seed * 1_000_003 + index), Trace()
        self.lock, self.version = threading.Lock(), 0
        self.http = [soak.app.test_client(), soak.app.test_client()]
        status, cart = self.call(0, "look", "GET", "/api/cart")
        self.trace.cart_id, self.version = cart["id"], cart["version"]
        self.http[1].set_cookie("session", self.http[0].get_cookie("session").value)
        self.sockets = [soak.tab(self.http[0]) for _ in range(self.rng.randint(1, 2))]
        self.browser = requests.Session()
        self.orders = []

    # --- the storefront, as the page's JavaScript calls it ----------------------------------------

    def call(self, tab, operation, method, path, body=None):
        answer = self.http[tab].open(path, method=method, json=body)
        data = answer.get_json(silent=True)
        code = data["error"]["code"] if isinstance(data, dict) and isinstance(data.get("error"), dict) else ""
        with self.lock:
            self.trace.operations += 1
            self.trace.kinds[operation] += 1
            self.trace.statuses[(operation, answer.status_code, code)] += 1
            if answer.status_code == 200 and isinstance(data, dict) and "items" in data and "version" in data:
                self.version = max(self.version, data["version"])
        return answer.status_code, data

    def mutate(self, tab, op):
        kind, product_id, quantity = op
        if kind == "add":
            status, cart = self.call(
                tab, kind, "POST", "/api/cart/items", {"product_id": product_id, "quantity": quantity}
            )
        elif kind == "set":
            status, cart = self.call(tab, kind, "PUT", f"/api/cart/items/{product_id}", {"quantity": quantity})
        else:
            status, cart = self.call(tab, kind, "DELETE", f"/api/cart/items/{product_id}")
        if status == 200:
            with self.lock:
                self.trace.mutations.append((op, cart["version"], lines_of(cart)))
        return status, cart

    def random_change(self, tab=0, kind=None):
        kind = kind or weighted(self.rng, [(6, "add"), (2, "set"), (1, "remove")])
        product_id = self.rng.choice(PRODUCTS)
        quantity = self.rng.randint(1, 3) if kind == "add" else self.rng.randint(0, 4)
        return self.mutate(tab, (kind, product_id, quantity))

    def fresh_cart(self, tab=0):
        return self.call(tab, "look", "GET", "/api/cart")[1]

    def start_checkout(self, tab=0):
        cart = self.fresh_cart(tab)
        if not cart["items"]:
            self.random_change(tab, "add")
        status, started = self.call(tab, "checkout", "POST", "/api/checkout")
        return started if status == 200 else None

    def handshake(self, tab, version):
        status, answer = self.call(tab, "handshake", "POST", "/api/checkout/confirm", {"cart_version": version})
        if status == 200:
            self.orders.append(answer["order_id"])
        return status, answer

    # --- Stripe, as Stripe.js calls it from the browser -------------------------------------------

    def stripe(self, method, path, data):
        """One browser call to the sandbox; timeouts and connection errors look like a 599."""
        try:
            answer = self.browser.request(
                method,
                f"{self.soak.sandbox_url}{path}",
                data=data,
                timeout=2.5,
                headers={"Authorization": f"Bearer {self.soak.publishable_key}"},
            )
            status, body = answer.status_code, answer.json()
        except (requests.RequestException, ValueError):
            status, body = 599, {}
        with self.lock:
            self.trace.operations += 1
            self.trace.kinds["stripe.js " + path.rsplit("/", 1)[-1]] += 1
        return status, body

    def confirm_payment(self, started):
        """Stripe.js confirmPayment with a random test method, pressing Pay again on a transient error."""
        kind, params = weighted(self.rng, METHODS)
        self.trace.payments[kind] += 1
        data = {"client_secret": started["client_secret"], "return_url": "http://127.0.0.1/orders/return"}
        if "iban" in params:
            data.update(
                {
                    "payment_method_data[type]": "sepa_debit",
                    "payment_method_data[sepa_debit][iban]": params["iban"],
                    "payment_method_data[billing_details][name]": "Soak Shopper",
                    "payment_method_data[billing_details][email]": "soak@example.com",
                }
            )
        else:
            data.update(params)
        path = f"/v1/payment_intents/{started['payment_intent_id']}/confirm"
        for _ in range(3):
            status, pi = self.stripe("POST", path, data)
            if status not in (429, 500, 599):
                break
        refusal = (pi.get("error") or {}).get("message", "") if status == 400 else ""
        if "is not allowed for this PaymentIntent" in refusal:
            # The store offered a method its PaymentIntent does not take (SEPA Debit on a non-eur cart).
            self.trace.problems.append(f"{kind} refused by Stripe: {refusal}")
        if status == 200 and pi.get("status") == "requires_action":
            outcome = "fail" if kind == "3ds_fail" else "complete"
            self.stripe(
                "POST",
                f"/_sandbox/payment_intents/{started['payment_intent_id']}/authenticate",
                {"outcome": outcome, "client_secret": started["client_secret"]},
            )
        return status

    def wait_for_outcome(self, tab, order_id):
        """The order page: look a few times until the server knows the outcome (no thank-you before)."""
        for _ in range(self.rng.randint(0, 4)):
            status, order = self.call(tab, "order_status", "GET", f"/api/orders/{order_id}")
            if status != 200 or order["status"] != "awaiting_payment":
                return

    # --- what shoppers do -------------------------------------------------------------------------

    def pay(self, tab=0, handshake=True, abandon=False, stale=False):
        started = self.start_checkout(tab)
        if started is None:
            return
        if not handshake:
            self.confirm_payment(started)
            return
        version = self.fresh_cart(tab)["version"]
        if stale:
            self.random_change(tab, "add")
        status, answer = self.handshake(tab, version)
        if status == 409 and answer["error"]["code"] == "cart_changed":
            status, answer = self.handshake(tab, answer["cart"]["version"])
        if status != 200 or abandon:
            return
        self.confirm_payment(started)
        self.wait_for_outcome(tab, answer["order_id"])

    def pay_while_other_tab_adds(self):
        """The seed story's race: tab 0 pays while tab 1 adds items."""
        other = threading.Thread(target=lambda: [self.random_change(1, "add") for _ in range(self.rng.randint(1, 2))])
        other.start()
        self.pay(0)
        other.join(60)

    def act(self):
        action = weighted(self.rng, ACTIONS)
        if action in MUTATIONS:
            self.random_change(kind=action)
        elif action == "look":
            self.look()
        elif action == "checkout":
            self.start_checkout()
        elif action == "pay":
            self.pay()
        elif action == "pay_without_handshake":
            self.pay(handshake=False)
        elif action == "abandon":
            self.pay(abandon=True)
        elif action == "stale_handshake":
            self.pay(stale=True)
        elif action == "pay_while_other_tab_adds":
            self.pay_while_other_tab_adds()
        elif action == "order_status" and self.orders:
            self.call(0, "order_status", "GET", f"/api/orders/{self.rng.choice(self.orders)}")

    def look(self):
        """A tab asks for the cart over Socket.IO (or over HTTP when the socket is gone)."""
        tab = self.rng.choice(self.sockets)
        with self.lock:
            self.trace.operations += 1
            self.trace.kinds["socket get_cart"] += 1
        if tab.is_connected():
            cart = tab.emit("get_cart", callback=True)
            if isinstance(cart, dict) and cart.get("error", {}).get("code") == "busy":
                # The socket limits' documented answer when no database slot frees up in time (SQLite has
                # one connection per process): the page asks again; counted, not a broken invariant.
                self.trace.statuses[("socket get_cart", "busy", None)] += 1
            elif not isinstance(cart, dict) or cart.get("id") != self.trace.cart_id:
                self.trace.problems.append(f"get_cart answered {cart!r:.200}")
        else:
            self.fresh_cart()

    def run(self, actions):
        for _ in range(actions):
            self.act()
        self.finish()
        return self.trace

    def finish(self):
        """Collect every tab's pushes; each tab must have been pushed the latest version it was answered."""
        latest = self.version
        # A tab refused at connect (no database slot free in time: the store was busy) has nothing to collect.
        tabs = [tab for tab in self.sockets if tab.is_connected()]
        received = [[] for _ in tabs]

        def caught_up():
            for i, tab in enumerate(tabs):
                received[i].extend(tab.get_received())
            return all(
                max((e["args"][0]["version"] for e in got if e["name"] == "cart"), default=0) >= latest
                for got in received
            )

        ok = self.soak.wait(caught_up, timeout=10)
        if not ok:
            self.trace.problems.append(f"cart {self.trace.cart_id}: a tab never got version {latest} pushed")
        for got in received:
            for event in got:
                payload = event["args"][0]
                if event["name"] == "cart":
                    self.trace.pushes.append((payload["version"], lines_of(payload)))
                elif event["name"] == "order":
                    self.trace.order_pushes.append((payload["id"], payload["status"]))
        for tab in self.sockets:
            if tab.is_connected():
                tab.disconnect()
        self.browser.close()
