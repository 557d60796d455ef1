"""The load generator: shoppers with open tabs, an open-loop stream of cart changes, webhooks, idle tabs.

Every latency is measured on one clock in this process (time.monotonic): a change's send time is
kept under the cart version it will create; each tab stamps a push the moment its bytes arrive.
Push latency of a change = arrival of a push with that version (or newer) at every tab but the one
that made it. Staleness = until a push says the PaymentIntent charges the new total.
"""

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .client import Http, Tab

HOST = "127.0.0.1"
PRODUCTS = range(1, 9)


def session_cookie(headers):
    """`session=...` from a Set-Cookie header, or None."""
    value = headers.get("set-cookie")
    return value.split(";", 1)[0] if value else None


async def paced(rate, seconds, next_work, counts, skipped):
    """Open loop: every 1/`rate` s for `seconds`, start `next_work()` (a coroutine, or None when no worker is
    free, counted under `skipped`); then wait for what was started. Counts the slots under "offered"."""
    tasks, start, n = set(), time.monotonic(), 0
    while (due := start + n / rate) < start + seconds:
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        n += 1
        work = next_work()
        if work is None:
            counts[skipped] += 1
            continue
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    counts["offered"] += n
    if tasks:
        await asyncio.wait(tasks, timeout=60)


@dataclass
class Sent:
    at: float
    phase: str


@dataclass
class Cart:
    """One shopper: an HTTP connection with the session cookie, the cart as last answered, its tabs."""

    http: Http
    id: int = 0
    version: int = 0
    total: int = 0
    quantities: dict = field(default_factory=dict)
    payment_intent: str | None = None
    tabs: list = field(default_factory=list)
    seen: list = field(default_factory=list)
    synced_version: int = 0
    sent: dict = field(default_factory=dict)

    def apply(self, body):
        self.id, self.version, self.total = body["id"], body["version"], body["total"]
        self.quantities = {item["product_id"]: item["quantity"] for item in body["items"]}


class Recorder:
    """Samples (milliseconds) and counts, per phase."""

    def __init__(self):
        self.push = defaultdict(list)
        self.stale = defaultdict(list)
        self.response = defaultdict(list)
        self.counts = defaultdict(Counter)

    def on_push(self, tab, name, data, stamp):
        """A `cart` push reached `tab`: close the latency (and staleness) of every version it covers."""
        if name != "cart" or not isinstance(data, dict):
            return
        cart, index = tab.cart, tab.index
        version = data.get("version", 0)
        if version > cart.seen[index]:
            if index != 0:  # tab 0 made the change: it learns from its own HTTP answer
                for covered in range(cart.seen[index] + 1, version + 1):
                    if (sent := cart.sent.get(covered)) is not None:
                        self.push[sent.phase].append((stamp - sent.at) * 1000)
            cart.seen[index] = version
        payment = data.get("payment") or {}
        if payment.get("amount") == data.get("total") and version > cart.synced_version:
            for covered in range(cart.synced_version + 1, version + 1):
                if (sent := cart.sent.get(covered)) is not None:
                    self.stale[sent.phase].append((stamp - sent.at) * 1000)
            cart.synced_version = version


class Store:
    """The shoppers of one run against one server (storefront, naive or bare)."""

    def __init__(self, port, recorder, bare=False):
        self.port, self.recorder, self.bare = port, recorder, bare
        self.carts = []
        self.idle = []

    async def open_carts(self, count, fill=True, concurrency=50):
        """Create carts (one session each), each with one line so that checkout can start."""
        gate = asyncio.Semaphore(concurrency)

        async def one(number):
            async with gate:
                cart = Cart(http=Http(HOST, self.port))
                if self.bare:
                    cart.apply({"id": number, "version": 1, "total": 0, "items": []})
                    return cart
                status, headers, raw = await cart.http.request("GET", "/api/cart")
                cart.http.cookie = session_cookie(headers)
                cart.apply(json.loads(raw))
                if fill:
                    status, body = await cart.http.json("PUT", "/api/cart/items/1", {"quantity": 1})
                    assert status == 200, body
                    cart.apply(body)
                return cart

        self.carts = list(await asyncio.gather(*(one(n) for n in range(count))))
        self.idle = list(self.carts)

    async def start_checkouts(self, per_second):
        """POST /api/checkout for every cart, paced under Stripe's create rate limit."""

        async def one(cart):
            for _ in range(5):
                status, body = await cart.http.json("POST", "/api/checkout")
                if status == 200:
                    cart.payment_intent = body["payment_intent_id"]
                    return
                await asyncio.sleep(1)
            raise RuntimeError(f"checkout of cart {cart.id} failed: {status} {body}")

        tasks, start = [], time.monotonic()
        for number, cart in enumerate(self.carts):
            if (delay := start + number / per_second - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(cart)))
        await asyncio.gather(*tasks)

    async def open_tabs(self, per_cart, port=None, concurrency=100):
        """Connect `per_cart` tabs for every cart (to `port`, default this store's), recording pushes."""
        gate = asyncio.Semaphore(concurrency)

        async def one(cart, index):
            async with gate:
                query = f"&room={cart.id}" if self.bare else ""
                tab = Tab(HOST, port or self.port, cart.http.cookie, query=query, on_event=self.recorder.on_push)
                tab.cart, tab.index = cart, index
                await tab.connect()
                return tab

        for cart in self.carts:
            cart.seen = [cart.version] * per_cart
        tabs = await asyncio.gather(*(one(cart, i) for cart in self.carts for i in range(per_cart)))
        for tab in tabs:
            tab.cart.tabs.append(tab)

    def repoint(self, port):
        """Talk to another server of the same database from now on (the sessions stay valid)."""
        self.port = port
        for cart in self.carts:
            cart.http.close()
            cart.http = Http(HOST, port, cart.http.cookie)

    async def close_tabs(self):
        await asyncio.gather(*(tab.close() for cart in self.carts for tab in cart.tabs))
        for cart in self.carts:
            cart.tabs = []

    async def change(self, cart, phase):
        """One cart change (a quantity that really changes), its send time kept under the version it makes."""
        counts = self.recorder.counts[phase]
        product = random.choice(PRODUCTS)
        quantity = cart.quantities.get(product, 0) % 9 + 1
        predicted = cart.version + 1
        sent = Sent(time.monotonic(), phase)
        cart.sent[predicted] = sent
        try:
            status, body = await self._send_change(cart, product, quantity, predicted)
        except (OSError, asyncio.IncompleteReadError) as err:
            status, body = type(err).__name__, None
        self.recorder.response[phase].append((time.monotonic() - sent.at) * 1000)
        if status == 200:
            counts["changes"] += 1
            if body["version"] != predicted:
                cart.sent.pop(predicted, None)
                counts["version_mismatch"] += 1
            cart.apply(body)
        else:
            cart.sent.pop(predicted, None)
            counts[f"error {status}"] += 1

    async def _send_change(self, cart, product, quantity, predicted):
        if not self.bare:
            return await cart.http.json("PUT", f"/api/cart/items/{product}", {"quantity": quantity})
        quantities = {**cart.quantities, product: quantity}
        body = {
            "id": cart.id,
            "version": predicted,
            "status": "open",
            "currency": "usd",
            "total": 0,
            "items": [
                {"product_id": p, "name": f"Product {p}", "unit_amount": 1000, "quantity": q, "line_total": 1000 * q}
                for p, q in quantities.items()
            ],
            "payment": None,
        }
        body["total"] = sum(item["line_total"] for item in body["items"])
        return await cart.http.json("POST", f"/rooms/{cart.id}/change", body)

    async def drive(self, rate, seconds, phase):
        """Offer `rate` changes a second for `seconds` (open loop); a cart has one change in flight at most."""
        counts, start = self.recorder.counts[phase], time.monotonic()

        def next_change():
            if not self.idle:
                return None
            index = random.randrange(len(self.idle))
            self.idle[index], self.idle[-1] = self.idle[-1], self.idle[index]
            return self._change_then_free(self.idle.pop(), phase)

        await paced(rate, seconds, next_change, counts, "skipped_all_carts_busy")
        return time.monotonic() - start

    async def _change_then_free(self, cart, phase):
        await self.change(cart, phase)
        self.idle.append(cart)

    async def burst(self, carts, changes, phase):
        """`changes` back-to-back changes on each of `carts` carts, all carts at once."""
        chosen = random.sample(self.idle, min(carts, len(self.idle)))
        for cart in chosen:
            self.idle.remove(cart)

        async def one(cart):
            for _ in range(changes):
                await self.change(cart, phase)
            self.idle.append(cart)

        await asyncio.gather(*(one(cart) for cart in chosen))
        return len(chosen) * changes

    async def wait_delivered(self, timeout):
        """Until every observing tab has seen its cart's latest version; returns how many tabs lag."""
        deadline = time.monotonic() + timeout
        while True:
            lagging = sum(1 for cart in self.carts for seen in cart.seen[1:] if seen < cart.version)
            if lagging == 0 or time.monotonic() > deadline:
                return lagging
            await asyncio.sleep(0.05)

    async def wait_synced(self, timeout):
        """Until a push said every cart's PaymentIntent charges its total; returns how many carts are still stale."""
        deadline = time.monotonic() + timeout
        while True:
            stale = sum(1 for cart in self.carts if cart.payment_intent and cart.synced_version < cart.version)
            if stale == 0 or time.monotonic() > deadline:
                return stale
            await asyncio.sleep(0.1)

    def mark_synced(self):
        for cart in self.carts:
            cart.synced_version = max(cart.synced_version, cart.version)

    async def close(self):
        await self.close_tabs()
        for cart in self.carts:
            cart.http.close()


def signed(event, secret):
    """(payload, headers) for an event, signed as Stripe signs webhooks."""
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def webhook_event(kind, payment_intent, cart_id):
    """A Stripe event of one of the kinds a store receives around a checkout."""
    pi = {
        "id": payment_intent,
        "object": "payment_intent",
        "amount": 1000,
        "currency": "usd",
        "status": "requires_payment_method",
        "metadata": {"cart_id": str(cart_id)},
    }
    obj = (
        pi
        if kind.startswith("payment_intent")
        else {"id": "ch_" + secrets.token_hex(12), "object": "charge", "amount": 1000, "payment_intent": payment_intent}
    )
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": obj},
    }


class Webhooks:
    """Signed events POSTed straight to /webhooks/stripe over a pool of keep-alive connections."""

    ACK_KINDS = ("payment_intent.created", "charge.succeeded", "duplicate")

    def __init__(self, port, secret, carts, connections):
        self.secret, self.carts = secret, [c for c in carts if c.payment_intent]
        self.pool = [Http(HOST, port) for _ in range(connections)]
        self.idle = list(self.pool)
        self.recent = []

    def _event(self, kinds):
        kind = random.choice(kinds)
        if kind == "duplicate" and self.recent:
            return random.choice(self.recent)
        cart = random.choice(self.carts)
        event = webhook_event("charge.succeeded" if kind == "duplicate" else kind, cart.payment_intent, cart.id)
        self.recent = (self.recent + [event])[-200:]
        return event

    async def _post(self, http, event, times, counts):
        payload, headers = signed(event, self.secret)
        start = time.monotonic()
        try:
            status, _, _ = await http.request("POST", "/webhooks/stripe", payload, headers)
        except (OSError, asyncio.IncompleteReadError) as err:
            status = type(err).__name__
        times.append((time.monotonic() - start) * 1000)
        counts[f"status {status}"] += 1
        self.idle.append(http)

    async def open_loop(self, rate, seconds, kinds):
        """Offer `rate` events/s; returns (response times ms, counts)."""
        times, counts = [], Counter()

        def next_event():
            return self._post(self.idle.pop(), self._event(kinds), times, counts) if self.idle else None

        await paced(rate, seconds, next_event, counts, "skipped_no_free_connection")
        return times, counts

    async def closed_loop(self, seconds, kinds):
        """Every connection sends the next event as soon as the last is answered; returns (events/s, counts)."""
        times, counts = [], Counter()
        end = time.monotonic() + seconds

        async def worker(http):
            while time.monotonic() < end:
                self.idle.remove(http)
                await self._post(http, self._event(kinds), times, counts)

        start = time.monotonic()
        await asyncio.gather(*(worker(http) for http in list(self.pool)))
        return len(times) / (time.monotonic() - start), counts

    def close(self):
        for http in self.pool:
            http.close()


async def open_idle_tabs(port, count, per_cart, concurrency=100, connections=20):
    """Open `count` tabs (`per_cart` per new cart) that only listen; returns (tabs, connection errors)."""
    gate = asyncio.Semaphore(concurrency)
    carts = -(-count // per_cart)

    async def new_carts(share):
        http, cookies = Http(HOST, port), []
        for _ in range(share):
            http.cookie = None  # a first visit each time: a new cart and its cookie (an unchanged session gets none)
            _, headers, _ = await http.request("GET", "/api/cart")
            cookies.append(session_cookie(headers))
        http.close()
        return cookies

    shares = [carts // connections + (i < carts % connections) for i in range(connections)]
    cookies = [c for batch in await asyncio.gather(*(new_carts(n) for n in shares)) for c in batch]
    tabs, errors = [], Counter()

    async def one(cookie):
        async with gate:
            tab = Tab(HOST, port, cookie)
            try:
                tabs.append(await tab.connect())
            except ConnectionError as err:
                errors[str(err)[:60]] += 1

    await asyncio.gather(*(one(cookies[i // per_cart]) for i in range(count)))
    return tabs, errors
