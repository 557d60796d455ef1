"""The production server (gunicorn's gevent worker) refuses ambiguous HTTP framing with 400, before the app.

Raw requests on a socket against the real `gunicorn ... production:app` process: a proxy in front that
read the framing differently would otherwise let one request smuggle another. None of them is applied.
"""

import secrets
import socket

import pytest
import requests

from bench.stack import ServerProcess, free_port, store_env
from stripe_sandbox.server import SandboxServer

pytestmark = pytest.mark.timeout(90)

BODY = b'{"quantity": 5}'


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    """One production server process on SQLite, paying through an in-process sandbox."""
    tmp = tmp_path_factory.mktemp("production")
    sandbox = SandboxServer(port=0).start()
    env = store_env(
        port=free_port(),
        database_url=f"sqlite:///{tmp}/store.sqlite3",
        sandbox_port=sandbox.port,
        webhook_secret="whsec_" + secrets.token_hex(16),
        secret_key="test-" + secrets.token_hex(16),
        RECONCILE_INTERVAL_SECONDS="0",
    )
    server = ServerProcess.production("production", env, tmp)
    try:
        yield server.wait_ready()
    finally:
        server.stop()
        sandbox.stop()


@pytest.fixture
def shopper(production_server):
    """A shopper with one line in the cart: (session, cookie header, cart version)."""
    http = requests.Session()
    answer = http.put(f"{production_server.url}/api/cart/items/1", json={"quantity": 1}, timeout=10)
    assert answer.status_code == 200, answer.text
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return http, cookie, answer.json()["version"]


def raw(server, head_lines, body=b""):
    """Send one request exactly as written; returns the status line's code and the raw answer."""
    request = b"\r\n".join(head_lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def put_quantity(cookie, *extra_headers, length=None):
    return [
        b"PUT /api/cart/items/1 HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/json",
        b"Cookie: " + cookie.encode(),
        *extra_headers,
        *([] if length is False else [b"Content-Length: %d" % (length or len(BODY))]),
    ]


AMBIGUOUS = {
    "two-conflicting-content-lengths": lambda c: put_quantity(c, b"Content-Length: %d" % (len(BODY) + 1)),
    "content-length-list": lambda c: put_quantity(c, b"Content-Length: %d, %d" % (len(BODY), len(BODY)), length=False),
    "content-length-and-chunked": lambda c: put_quantity(c, b"Transfer-Encoding: chunked"),
    "header-line-without-colon": lambda c: put_quantity(c, b"X-Broken header line"),
    "nul-in-header-value": lambda c: put_quantity(c, b"X-Note: a\x00b"),
    "nul-in-header-name": lambda c: put_quantity(c, b"X-No\x00te: ab"),
    "bare-cr-in-header-value": lambda c: put_quantity(c, b"X-Note: a\rb"),
    "signed-content-length": lambda c: put_quantity(c, b"Content-Length: +%d" % len(BODY), length=False),
    "space-before-colon": lambda c: put_quantity(c, b"Content-Length : 1"),
    "folded-header-line": lambda c: put_quantity(c, b"X-Note: a", b" folded"),
}


@pytest.mark.parametrize("framing", list(AMBIGUOUS))
def test_ambiguous_framing_is_refused_and_not_applied(production_server, shopper, framing):
    http, cookie, version = shopper
    status, answer = raw(production_server, AMBIGUOUS[framing](cookie), BODY)
    assert status == 400, answer
    cart = http.get(f"{production_server.url}/api/cart", timeout=10).json()
    assert cart["version"] == version and [line["quantity"] for line in cart["items"]] == [1]


def test_the_same_request_framed_plainly_is_applied(production_server, shopper):
    http, cookie, version = shopper
    status, answer = raw(production_server, put_quantity(cookie), BODY)
    assert status == 200, answer
    cart = http.get(f"{production_server.url}/api/cart", timeout=10).json()
    assert cart["version"] == version + 1 and [line["quantity"] for line in cart["items"]] == [5]
