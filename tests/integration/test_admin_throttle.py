"""Admin logins throttled: wrong passwords counted per client address and per account (Flask-Limiter's store);
past a limit even the right password waits (429, Retry-After), and every refusal is logged."""

import logging
import time

import pytest

from tests.integration.test_merchant import PASSWORD, basic
from tests.shopping import Recorder

pytestmark = pytest.mark.timeout(120)

REFUSALS = "storefront.merchant.auth"


@pytest.fixture
def admin_store(make_store):
    """A store with the admin on and Stripe unreachable (nothing here pays)."""

    def build(**limits):
        return make_store(
            STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_SECRET_KEY="sk_test_unused", ADMIN_PASSWORD=PASSWORD, **limits
        )

    return build


def from_address(store, address):
    """An admin client at `address` (the app trusts no proxy: its client is REMOTE_ADDR)."""
    client = store.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def refusals():
    """The refusals' WARNING lines, recorded on their own logger (pytest's caplog sits on the root logger,
    whose handlers the migrations' alembic.ini logging setup replaces when an app is built)."""
    recorder, logger = Recorder(), logging.getLogger(REFUSALS)
    logger.addHandler(recorder)
    yield recorder.records
    logger.removeHandler(recorder)


def test_300_wrong_passwords_from_one_client_are_throttled_and_the_right_one_waits(admin_store, refusals):
    store = admin_store()  # the defaults: 10 a minute per address, 30 per account
    attacker = from_address(store, "203.0.113.7")
    for _ in range(5):  # the right password within the limit costs nothing
        assert attacker.get("/admin/api/products", headers=basic()).status_code == 200
    paths = ["/admin/api/products", "/admin/", "/admin/no-such-page"]  # an unknown path is no way around it
    answers = [attacker.get(paths[i % 3], headers=basic(password=f"guess-{i}")) for i in range(300)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert {a.status_code for a in answers[10:]} == {429}
    assert all(1 <= int(a.headers["Retry-After"]) <= 60 for a in answers[10:])
    assert answers[12].get_json()["error"]["code"] == "rate_limited"  # the API answers JSON, the pages text
    assert answers[10].mimetype == "text/plain" and answers[11].mimetype == "text/plain"

    right = attacker.get("/admin/api/products", headers=basic())
    assert right.status_code == 429 and 1 <= int(right.headers["Retry-After"]) <= 60
    logged = refusals
    assert {r.levelno for r in logged} == {logging.WARNING} and len(logged) == 291  # one line per refusal
    assert all("203.0.113.7" in r.getMessage() for r in logged)
    assert not any("guess-" in r.getMessage() or PASSWORD in r.getMessage() for r in logged)

    # Another address is not this one: the account (10 wrong so far, of 30) still lets the merchant in.
    assert from_address(store, "198.51.100.1").get("/admin/api/products", headers=basic()).status_code == 200


def test_the_right_password_works_again_once_the_window_passes(admin_store):
    store = admin_store(ADMIN_LOGIN_RATE_LIMIT="3 per 2 seconds")
    client = from_address(store, "203.0.113.8")
    assert [client.get("/admin/", headers=basic(password="nope")).status_code for _ in range(3)] == [401] * 3
    refused = client.get("/admin/", headers=basic())
    assert refused.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]) + 0.2)
    assert client.get("/admin/", headers=basic()).status_code == 200


def test_wrong_passwords_spread_over_addresses_throttle_the_account(admin_store, refusals):
    store = admin_store(ADMIN_LOGIN_RATE_LIMIT="1000 per minute", ADMIN_ACCOUNT_RATE_LIMIT="5 per minute")
    for n in range(5):  # one guess from each of five addresses: no address near its own limit
        guess = from_address(store, f"192.0.2.{n + 1}").get("/admin/api/orders", headers=basic(password=f"g{n}"))
        assert guess.status_code == 401
    merchant = from_address(store, "192.0.2.200").get("/admin/api/orders", headers=basic())
    assert merchant.status_code == 429 and int(merchant.headers["Retry-After"]) >= 1
    assert "192.0.2.200" in refusals[0].getMessage() and "account" in refusals[0].getMessage()
    # The limit is the account's: guesses at another user name are still answered (and still wrong).
    other = from_address(store, "192.0.2.201").get("/admin/api/orders", headers=basic(user="root", password="x"))
    assert other.status_code == 401


def test_requests_without_credentials_are_not_guesses(admin_store):
    store = admin_store(ADMIN_LOGIN_RATE_LIMIT="3 per minute")
    browser = from_address(store, "203.0.113.9")
    assert {browser.get("/admin/").status_code for _ in range(20)} == {401}  # a browser's first visits
    assert browser.get("/admin/", headers=basic()).status_code == 200
