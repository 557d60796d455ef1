"""Forwarded headers count only with TRUSTED_PROXY_HOPS; a refused cross-site request or Socket.IO origin is
logged with what the app believed. The whole stack behind nginx is tests/production/test_proxy.py."""

import logging

import pytest
from flask import jsonify, request

from storefront import create_app
from storefront.config import Config
from storefront.extensions import db
from tests.conftest import sqlite_url, store_config
from tests.shopping import Recorder

PAGE = "https://shop.example"
# What nginx sends for a page at https://shop.example (deploy/nginx/storefront.conf).
FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example",
    "X-Forwarded-Port": "443",
}
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def refusals():
    """The WARNINGs of storefront.proxy, as messages (a handler of its own: each record counted once)."""
    logger, recorder = logging.getLogger("storefront.proxy"), Recorder()
    logger.addHandler(recorder)
    yield lambda: [record.getMessage() for record in recorder.records]
    logger.removeHandler(recorder)


@pytest.fixture
def make_app(tmp_path):
    """Apps on SQLite with the given TRUSTED_PROXY_HOPS, each with a route showing what Flask believes."""
    apps = []

    def build(hops):
        app = create_app(store_config(sqlite_url(tmp_path), TRUSTED_PROXY_HOPS=hops))

        @app.get("/_believed")
        def believed():
            return jsonify(scheme=request.scheme, host=request.host, address=request.remote_addr)

        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def add_to_cart(client, headers):
    return client.post("/api/cart/items", json={"product_id": 1, "quantity": 1}, headers=headers)


def test_by_default_a_client_cannot_speak_as_a_proxy(make_app, refusals):
    client = make_app(0).test_client()

    assert client.get("/_believed", headers=FORWARDED).get_json() == {
        "scheme": "http",
        "host": "localhost",
        "address": "127.0.0.1",
    }
    answer = add_to_cart(client, {"Origin": PAGE, **FORWARDED})
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "cross_site_request"
    # engine.io alone would accept the Origin on the strength of X-Forwarded-Proto/-Host, trusted or not.
    handshake = client.get(HANDSHAKE, headers={"Origin": PAGE, **FORWARDED})
    assert handshake.status_code == 400 and b"Not an accepted origin" in handshake.data
    assert client.get("/api/cart").get_json()["items"] == []

    assert refusals() == [
        "refused a POST '/api/cart/items' from origin 'https://shop.example': this app believes it is served at "
        "http://localhost (no proxy trusted: behind a proxy, set TRUSTED_PROXY_HOPS)",
        "refused a Socket.IO connection from origin 'https://shop.example': this app believes it is served at "
        "http://localhost (no proxy trusted: behind a proxy, set TRUSTED_PROXY_HOPS)",
    ]


def test_behind_one_trusted_proxy_the_page_origin_is_accepted_everywhere(make_app, refusals):
    client = make_app(1).test_client()
    # A client's own X-Forwarded-For value comes first; nginx appends the address it saw, the one believed.
    headers = {**FORWARDED, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}

    assert client.get("/_believed", headers=headers).get_json() == {
        "scheme": "https",
        "host": "shop.example",  # X-Forwarded-Port 443 is https's own: no port in the origin
        "address": "203.0.113.9",
    }
    assert add_to_cart(client, {"Origin": PAGE, **headers}).status_code == 200
    handshake = client.get(HANDSHAKE, headers={"Origin": PAGE, **headers})
    assert handshake.status_code == 200 and handshake.data.startswith(b"0{")
    assert refusals() == []


def test_behind_a_proxy_that_sends_no_scheme_the_refusal_names_both_origins(make_app, refusals):
    """The issue's nginx block: Host but no X-Forwarded-Proto, so the app believes http:// (logged at once)."""
    client = make_app(1).test_client()
    headers = {"Host": "shop.example", "X-Forwarded-For": "203.0.113.9", "Origin": PAGE}

    assert add_to_cart(client, headers).status_code == 403
    assert client.get(HANDSHAKE, headers=headers).status_code == 400
    messages = refusals()
    assert len(messages) == 2
    for message in messages:
        assert "from origin 'https://shop.example': this app believes it is served at http://shop.example" in message
        assert "trusting 1 proxy hop(s): does the proxy send X-Forwarded-Proto, -Host and -Port?" in message


def test_a_cross_site_fetch_is_refused_and_logged(make_app, refusals):
    client = make_app(0).test_client()
    answer = add_to_cart(client, {"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert refusals() == [
        "refused a POST '/api/cart/items' (Sec-Fetch-Site: 'cross-site') from origin None: this app believes it "
        "is served at http://localhost (no proxy trusted: behind a proxy, set TRUSTED_PROXY_HOPS)"
    ]


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_a_hop_count_that_is_not_a_whole_number_is_refused(value):
    with pytest.raises(RuntimeError, match="TRUSTED_PROXY_HOPS must be a whole number"):
        Config({"TRUSTED_PROXY_HOPS": value})


def test_no_proxy_is_trusted_unless_configured():
    assert Config({}).TRUSTED_PROXY_HOPS == 0
