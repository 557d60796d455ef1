"""The benchmark's floor server keeps the storefront's cart contract: what the load driver relies on holds."""

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.client import Http, Tab
from bench.load import session_cookie
from bench.stack import ServerProcess, free_port

pytestmark = [pytest.mark.postgres]

HOST = "127.0.0.1"


@pytest.fixture
def floor(postgres_url, tmp_path):
    """`python -m bench.floor_server` on a fresh database, stopped afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": postgres_url,
        "SECRET_KEY": "test-floor",
        "PYTHONUNBUFFERED": "1",
    }
    server = ServerProcess("floor", [sys.executable, "-m", "bench.floor_server"], env, tmp_path, port)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


async def new_cart(port):
    """(http with the session cookie, the cart as GET /api/cart answered it)."""
    http = Http(HOST, port)
    status, headers, _ = await http.request("GET", "/api/cart")
    assert status == 200
    http.cookie = session_cookie(headers)
    status, cart = await http.json("GET", "/api/cart")
    assert status == 200
    return http, cart


async def open_tab(port, cookie, pushes):
    return await Tab(HOST, port, cookie, on_event=lambda _tab, name, data, _t: pushes.append((name, data))).connect()


def run(scenario):
    """Run an async scenario on its own loop in a thread: the browser tests' sync Playwright keeps a loop
    running on the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


async def until(condition, timeout=10):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_change_is_answered_and_pushed_with_its_version_to_every_tab_of_that_cart_only(floor):
    async def scenario():
        http, cart = await new_cart(floor.port)
        other, other_cart = await new_cart(floor.port)
        assert cart["version"] == 1 and cart["items"] == [] and cart["id"] != other_cart["id"]
        mine, theirs = [[], []], []
        tabs = [await open_tab(floor.port, http.cookie, pushes) for pushes in mine]
        tabs.append(await open_tab(floor.port, other.cookie, theirs))
        await until(lambda: all(mine) and theirs)  # each tab starts from its cart, as the storefront's do
        assert [pushes[0] for pushes in mine] == [("cart", cart), ("cart", cart)]

        status, body = await http.json("PUT", "/api/cart/items/3", {"quantity": 2})
        assert status == 200 and body["version"] == 2 and body["id"] == cart["id"]
        assert [(i["product_id"], i["quantity"], i["line_total"]) for i in body["items"]] == [(3, 2, 13000)]
        assert body["total"] == 13000
        status, added = await http.json("POST", "/api/cart/items", {"product_id": 5, "quantity": 3})
        assert status == 200 and added["version"] == 3 and added["total"] == 13000 + 3 * 700

        await until(lambda: all(len(pushes) == 3 for pushes in mine))
        assert [pushes[1:] for pushes in mine] == [[("cart", body), ("cart", added)]] * 2
        await asyncio.sleep(0.2)
        assert theirs == [("cart", other_cart)]
        status, again = await http.json("GET", "/api/cart")
        assert again == added
        for tab in tabs:
            await tab.close()
        http.close()
        other.close()

    run(scenario)


def test_changes_racing_on_one_cart_all_land_each_on_its_own_version(floor):
    async def scenario():
        http, cart = await new_cart(floor.port)
        shoppers = [Http(HOST, floor.port, http.cookie) for _ in range(16)]
        answers = await asyncio.gather(
            *(
                shopper.json("POST", "/api/cart/items", {"product_id": n % 8 + 1, "quantity": 1})
                for n, shopper in enumerate(shoppers)
            )
        )
        assert [status for status, _ in answers] == [200] * 16
        assert sorted(body["version"] for _, body in answers) == list(range(2, 18))
        status, final = await http.json("GET", "/api/cart")
        assert final["version"] == 17
        assert {i["product_id"]: i["quantity"] for i in final["items"]} == {p: 2 for p in range(1, 9)}
        for shopper in shoppers:
            shopper.close()
        http.close()

    run(scenario)


def test_bad_input_is_a_4xx_with_an_error_code_and_changes_nothing(floor):
    async def scenario():
        http, cart = await new_cart(floor.port)
        refused = [
            (("PUT", "/api/cart/items/3", {"quantity": "two"}), 400, "invalid_quantity"),
            (("PUT", "/api/cart/items/3", {"quantity": 100}), 400, "invalid_quantity"),
            (("PUT", "/api/cart/items/x", {"quantity": 1}), 400, "invalid_product_id"),
            (("PUT", "/api/cart/items/77", {"quantity": 1}), 404, "product_not_found"),
            (("POST", "/api/cart/items", {"product_id": True}), 400, "invalid_product_id"),
            (("POST", "/api/cart/items", [1, 2]), 400, "invalid_json"),
            (("PUT", "/api/cart/items/3", b"{not json"), 400, "invalid_json"),
        ]
        for (method, path, body), status, code in refused:
            answer_status, answer = await http.json(method, path, body)
            assert (answer_status, answer["error"]["code"]) == (status, code), (method, path, body)
            assert answer["error"]["message"]
        status, _ = await http.json("POST", "/api/cart/items", {"product_id": 2, "quantity": 99})
        assert status == 200
        status, answer = await http.json("POST", "/api/cart/items", {"product_id": 2, "quantity": 1})
        assert (status, answer["error"]["code"]) == (400, "invalid_quantity")
        status, final = await http.json("GET", "/api/cart")
        assert final["version"] == cart["version"] + 1
        assert [(i["product_id"], i["quantity"]) for i in final["items"]] == [(2, 99)]
        http.close()

    run(scenario)


def test_a_tab_without_a_session_is_refused(floor):
    async def scenario():
        tab = Tab(HOST, floor.port)
        with pytest.raises(ConnectionError, match="no cart in this session"):
            await tab.connect(timeout=3)  # the refusal (a CONNECT_ERROR packet) comes at once
        await tab.close()

    run(scenario)
