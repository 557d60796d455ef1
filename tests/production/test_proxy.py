"""nginx, then HAProxy, terminating TLS with the shipped deploy/nginx/storefront.conf and
deploy/haproxy/storefront.cfg, in front of two production processes (gunicorn's gevent worker serving
production:app) on PostgreSQL and Redis: an order paid over https as a browser pays it, its tabs receiving
pushes that both processes emit. And without TRUSTED_PROXY_HOPS, a client sending X-Forwarded-Proto itself
changes nothing."""

import secrets
import subprocess
import sys
import threading
import uuid

import pytest
import requests
import socketio

from bench.stack import ROOT, ServerProcess, free_port, store_env
from stripe_sandbox.server import SandboxServer
from tests.conftest import wait_for
from tests.production.proxy_stack import PROXIES, tls_session

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(240)]

NODE_COOKIE = "storefront_node"


@pytest.fixture
def sandbox():
    server = SandboxServer(port=0, webhook_retry_base=0.05, webhook_max_attempts=4)
    server.start()
    yield server
    server.stop()


class Stack:
    """A proxy on https://127.0.0.1:<port> in front of two production processes, Stripe's webhooks through it."""

    def __init__(self, proxy, processes, sandbox):
        self.proxy, self.processes, self.sandbox = proxy, processes, sandbox
        self.url = proxy.url

    def upstreams(self, node, path_prefix="/"):
        """The indexes of the processes the proxy sent this node's requests (under `path_prefix`) to."""
        by_address = {f"127.0.0.1:{p.port}": index for index, p in enumerate(self.processes)}
        lines = self.proxy.requests_logged()
        return {
            by_address[line["upstream"]]
            for line in lines
            if line["node"] == node and line["path"].startswith(path_prefix)
        }


@pytest.fixture(params=list(PROXIES))
def stack(request, postgres_url, redis_url, sandbox, tmp_path):
    """The operator's layout: migrate, start two web processes, put the shipped proxy configuration in front."""
    webhook_secret = "whsec_" + secrets.token_hex(16)
    common = {
        "database_url": postgres_url,
        "sandbox_port": sandbox.port,
        "webhook_secret": webhook_secret,
        "secret_key": "test-" + secrets.token_hex(16),
        "queue": redis_url,
        "channel": f"storefront-test-{uuid.uuid4().hex}",
        "STOREFRONT_ENV": "production",  # Secure cookies: served over https here, as in production
        "TRUSTED_PROXY_HOPS": "1",
        "WORKER": "embedded",
        "SYNC_COALESCE_SECONDS": "0.01",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "STRIPE_TIMEOUT": "20",
    }
    migrate = [sys.executable, "-m", "flask", "--app", "storefront", "db", "upgrade"]
    subprocess.run(migrate, env=store_env(port=0, **common), cwd=ROOT, check=True, capture_output=True, timeout=120)
    processes, proxy = [], None
    try:
        for name in ("web1", "web2"):
            processes.append(ServerProcess.production(name, store_env(port=free_port(), **common), tmp_path))
        for process in processes:
            process.wait_ready()
        ports = [process.port for process in processes]
        proxy = PROXIES[request.param](tmp_path / request.param, ports, https_port=free_port(), http_port=free_port())
        # Stripe posts to the https URL, through the proxy, as it does in production.
        endpoint = sandbox.state.webhooks.add_endpoint(f"{proxy.url}/webhooks/stripe", webhook_secret)
        endpoint.session.verify, endpoint.session.trust_env = str(proxy.cert), False
        yield Stack(proxy, processes, sandbox)
    finally:
        if proxy is not None:
            proxy.stop()
        for process in processes:
            process.stop()


class Browser:
    """A browser showing the https page: its cookie jar, Origin and Sec-Fetch-Site on every write."""

    def __init__(self, stack):
        self.stack = stack
        self.http = tls_session(stack.proxy.cert)

    @property
    def node(self):
        return self.http.cookies.get(NODE_COOKIE)

    def get(self, path):
        return self.http.get(self.stack.url + path, headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)

    def write(self, method, path, **kwargs):
        """A fetch() from the page: the store answers 200 with JSON, or the test fails with its answer."""
        headers = {"Origin": self.stack.url, "Sec-Fetch-Site": "same-origin"}
        answer = self.http.request(method, self.stack.url + path, headers=headers, timeout=30, **kwargs)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.json()

    def window_on(self, index):
        """Another window of this shopper (the same session cookie) with a node cookie the proxy sends to
        process `index`, as after the browser was restarted (the node cookie lasts a browser session, the
        store's session a month). Checked in the proxy's access log, as an operator would."""
        for node in self.stack.proxy.node_candidates(index):
            window = Browser(self.stack)
            for cookie in self.http.cookies:
                if cookie.name != NODE_COOKIE:
                    window.http.cookies.set_cookie(cookie)
            window.http.cookies.set(NODE_COOKIE, node)
            assert window.get("/api/cart").status_code == 200
            served = wait_for(lambda n=node: self.stack.upstreams(n), message="the access log line")
            if served == {index}:
                return window
        raise AssertionError(f"no node value reached process {index}")


class Tab:
    """A Socket.IO tab of the browser, over wss or https long-polling, recording `cart` and `order` pushes.

    It shares the browser's cookie jar, as a page's requests do: a cookie set again (the store's session,
    signed anew on the first change) goes with the tab's next poll.
    """

    def __init__(self, browser, transport):
        self.received, self.lock = {"cart": [], "order": []}, threading.Lock()
        self.client = socketio.Client(reconnection=False, http_session=browser.http)
        for name in self.received:
            self.client.on(name, self._recorder(name))
        # websocket-client sends the page's Origin itself (https://host:port for wss); polling needs it given.
        headers = {"Origin": browser.stack.url} if transport == "polling" else {}
        self.client.connect(browser.stack.url, headers=headers, transports=[transport], wait_timeout=15)

    def _recorder(self, name):
        def record(data):
            with self.lock:
                self.received[name].append(data)

        return record

    def wait_for(self, name, condition, message):
        def found():
            with self.lock:
                return next((pushed for pushed in self.received[name] if condition(pushed)), None)

        return wait_for(found, timeout=30, message=message)


def version_is(cart):
    return lambda pushed: pushed["version"] == cart["version"] and pushed["total"] == cart["total"]


def pay_at_stripe(stack, started, order_id):
    """What Stripe.js does with the client secret: confirm the PaymentIntent at Stripe, not at the store."""
    answer = requests.post(
        f"{stack.sandbox.url}/v1/payment_intents/{started['payment_intent_id']}/confirm",
        data={
            "client_secret": started["client_secret"],
            "payment_method": "pm_card_visa",
            "return_url": f"{stack.url}/orders/{order_id}",
        },
        headers={"Authorization": f"Bearer {stack.sandbox.publishable_key}"},
        timeout=30,
    ).json()
    assert answer.get("status") == "succeeded", answer


def test_an_order_is_paid_over_https_through_the_proxy_with_pushes_from_both_processes(stack):
    browser = Browser(stack)
    page = browser.get("/")
    assert page.status_code == 200 and browser.node, page.headers  # the proxy's node cookie, set on the first answer
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    first = browser.get("/api/cart").json()  # the page's script: a cart id in the session cookie, then the tabs
    (home,) = wait_for(lambda: stack.upstreams(browser.node), message="the access log's lines")
    signed = browser.http.cookies["session"]
    tabs = [Tab(browser, "websocket"), Tab(browser, "polling")]
    for tab in tabs:
        tab.wait_for("cart", version_is(first), "the cart sent on connect")

    cart = browser.write("POST", "/api/cart/items", json={"product_id": 1, "quantity": 1})  # the 403
    # Flask signed the session again (the cart now has a row); the polling tab's next polls carry the new
    # cookie and must still reach the process holding its Engine.IO session: the node cookie did not change.
    assert browser.http.cookies["session"] != signed
    for tab in tabs:
        tab.wait_for("cart", version_is(cart), "the first change")

    # Changes served by each process reach both tabs (held by the browser's process) through Redis.
    window = browser.window_on(1 - home)
    for shopper, product in ((window, 2), (browser, 3)):
        cart = shopper.write("POST", "/api/cart/items", json={"product_id": product, "quantity": 2})
        for tab in tabs:
            tab.wait_for("cart", version_is(cart), f"the change served by process {stack.upstreams(shopper.node)}")

    started = browser.write("POST", "/api/checkout")
    order_id = browser.write("POST", "/api/checkout/confirm", json={"cart_version": cart["version"]})["order_id"]
    pay_at_stripe(stack, started, order_id)
    # Stripe's webhook comes through the proxy (any process); the order push reaches the tabs either way.
    for tab in tabs:
        tab.wait_for("order", lambda o: o["id"] == order_id and o["status"] == "paid", "the paid order's push")
    assert browser.get(f"/api/orders/{order_id}").json()["status"] == "paid"

    assert stack.upstreams(browser.node) == {home} and stack.upstreams(window.node) == {1 - home}
    # The polling tab's every request reached the process holding its Engine.IO session: sticky.
    assert stack.upstreams(browser.node, "/socket.io/") == {home}
    assert all(tab.client.connected for tab in tabs)
    webhooks = [line for line in stack.proxy.requests_logged() if line["path"] == "/webhooks/stripe"]
    assert webhooks and {line["status"] for line in webhooks} == {"200"}
    for process in stack.processes:
        assert "refused" not in process.log_tail(400)
    for tab in tabs:
        tab.client.disconnect()


def test_a_cross_site_write_through_the_proxy_is_refused_and_logged_with_the_origin_believed(stack):
    browser = Browser(stack)
    browser.get("/")
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = browser.http.post(f"{stack.url}/api/cart/items", json={"product_id": 1, "quantity": 1}, headers=headers)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "cross_site_request"
    (index,) = wait_for(lambda: stack.upstreams(browser.node), message="the access log's lines")
    expected = f"from origin 'https://evil.example': this app believes it is served at {stack.url} "
    wait_for(lambda: expected in stack.processes[index].log_tail(50), message="the refusal's WARNING")


def test_http_is_redirected_to_https(stack):
    answer = requests.get(f"{stack.proxy.http_url}/cart", allow_redirects=False, timeout=10)
    location = answer.headers["Location"]
    assert answer.status_code == 301 and location.startswith("https://127.0.0.1") and location.endswith("/cart")


def test_without_trusted_proxy_hops_a_client_cannot_claim_https(postgres_url, sandbox, tmp_path):
    """gunicorn would believe X-Forwarded-Proto from 127.0.0.1 by default; the store believes no one."""
    port = free_port()
    env = store_env(
        port=port,
        database_url=postgres_url,
        sandbox_port=sandbox.port,
        webhook_secret="whsec_" + secrets.token_hex(16),
        secret_key="test-" + secrets.token_hex(16),
    )
    process = ServerProcess.production("web", env, tmp_path)
    try:
        process.wait_ready()
        claimed = f"https://127.0.0.1:{port}"
        spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": f"127.0.0.1:{port}", "Origin": claimed}
        http = requests.Session()
        assert http.get(f"{process.url}/api/cart").json()["items"] == []  # the shopper's cart, in its cookie
        answer = http.post(f"{process.url}/api/cart/items", json={"product_id": 1, "quantity": 1}, headers=spoofed)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "cross_site_request"
        handshake = http.get(f"{process.url}/socket.io/?EIO=4&transport=polling", headers=spoofed)
        assert handshake.status_code == 400 and "Not an accepted origin" in handshake.text
        assert http.get(f"{process.url}/api/cart").json()["items"] == []

        believed = f"from origin '{claimed}': this app believes it is served at {process.url} (no proxy trusted"
        wait_for(lambda: process.log_tail(50).count(believed) == 2, message="both refusals logged")
        # The page's real origin, http:// here, is accepted: the refusal was the scheme claimed.
        answer = http.post(
            f"{process.url}/api/cart/items", json={"product_id": 1, "quantity": 1}, headers={"Origin": process.url}
        )
        assert answer.status_code == 200
    finally:
        process.stop()
