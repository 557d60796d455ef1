"""Socket.IO limits per connection, over real transports: event rate (the connection is closed), message
size (a larger WebSocket frame closes it; a larger polling POST is refused), and database slots (a socket
read that finds none free in time answers `busy`, while HTTP goes on)."""

import json

import pytest
import requests
import websocket

from tests.shopping import fill

pytestmark = pytest.mark.timeout(60)
RECORD_SEPARATOR = "\x1e"  # between packets of one engine.io polling payload


@pytest.fixture
def limited_store(make_store):
    return make_store(
        STRIPE_SECRET_KEY="sk_test_unused",
        STRIPE_API_BASE="http://127.0.0.1:9",
        SOCKETIO_EVENT_LIMIT="10 per second",
        SOCKETIO_MAX_MESSAGE_BYTES=4096,
    )


def shopper_cookie(store):
    http = requests.Session()
    answer = http.post(f"{store.url}/api/cart/items", json={"product_id": 1, "quantity": 1}, timeout=5)
    assert answer.status_code == 200
    return http, "; ".join(f"{k}={v}" for k, v in http.cookies.items())


def open_websocket(store, cookie):
    url = store.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(url, cookie=cookie, timeout=5)
    assert ws.recv().startswith("0{")
    ws.send("40")
    while not ws.recv().startswith("40"):
        pass
    return ws


def acks_until_closed(ws, limit=200):
    """Read until the server closes the connection; the number of acks received (None if still open)."""
    acks = 0
    for _ in range(limit):
        try:
            message = ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketException, OSError):
            return acks
        if not message:
            return acks
        acks += message.startswith("43")
    return None


def test_a_websocket_over_its_event_budget_is_closed_and_the_next_connection_starts_afresh(limited_store):
    _, cookie = shopper_cookie(limited_store)
    ws = open_websocket(limited_store, cookie)
    for event_id in range(30):
        ws.send(f'42{event_id}["get_cart"]')
    acks = acks_until_closed(ws)
    assert acks is not None, "the connection stayed open past its budget"
    assert acks == 9  # 10 packets a second: the connect, then nine events
    ws = open_websocket(limited_store, cookie)
    try:
        ws.send('421["get_cart"]')
        answer = ws.recv()
        while not answer.startswith("43"):
            answer = ws.recv()
        assert json.loads(answer[3:])[0]["items"][0]["product_id"] == 1
    finally:
        ws.close()


def test_a_polling_session_over_its_budget_is_closed(limited_store):
    http, _ = shopper_cookie(limited_store)
    handshake = http.get(f"{limited_store.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = json.loads(handshake.text[1:])["sid"]
    url = f"{limited_store.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert http.post(url, data="40", timeout=5).status_code == 200
    flood = RECORD_SEPARATOR.join(f'42{n}["get_cart"]' for n in range(12))  # engine.io takes 16 a POST at most
    assert http.post(url, data=flood, timeout=5).status_code == 200  # the budget ends half-way through
    assert http.post(url, data='42["get_cart"]', timeout=5).status_code == 400  # the session is gone
    assert http.get(f"{limited_store.url}/api/cart", timeout=5).status_code == 200


def test_a_websocket_message_over_the_size_limit_closes_the_connection(limited_store):
    _, cookie = shopper_cookie(limited_store)
    small = open_websocket(limited_store, cookie)
    try:
        small.send('421["get_cart",' + json.dumps("x" * 1000) + "]")
        while not (answer := small.recv()).startswith("43"):
            pass
        assert "items" in answer
    finally:
        small.close()
    big = open_websocket(limited_store, cookie)
    big.send('421["get_cart",' + json.dumps("x" * 5000) + "]")
    assert acks_until_closed(big) == 0


def test_a_polling_post_over_the_size_limit_is_refused_unread(limited_store):
    http, _ = shopper_cookie(limited_store)
    handshake = http.get(f"{limited_store.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = json.loads(handshake.text[1:])["sid"]
    url = f"{limited_store.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    answer = http.post(url, data='42["get_cart",' + json.dumps("x" * 5000) + "]", timeout=5)
    assert answer.status_code == 413
    assert http.post(url, data="40", timeout=5).status_code == 200  # the session itself goes on


def test_a_socket_read_with_no_database_slot_free_answers_busy_and_http_goes_on(make_store):
    store = make_store(
        STRIPE_SECRET_KEY="sk_test_unused",
        STRIPE_API_BASE="http://127.0.0.1:9",
        SOCKETIO_DB_CONNECTIONS=1,
        SOCKETIO_DB_WAIT_SECONDS=0.2,
    )
    shopper = store.client()
    cart = {**fill(shopper, (2, 1)), "last_order": None}  # a read names the cart's latest order too
    tab = store.tab(shopper)
    assert tab.emit("get_cart", callback=True) == cart
    slot = store.app.extensions["socket_limits"].db_slot()
    slot.__enter__()
    try:
        answer = tab.emit("get_cart", callback=True)
        assert answer["error"]["code"] == "busy"
        assert shopper.get("/api/cart").get_json() == cart
        assert not store.tab(shopper).is_connected()  # a connect waits for a slot too, and is refused
    finally:
        slot.__exit__(None, None, None)
    assert tab.emit("get_cart", callback=True) == cart
