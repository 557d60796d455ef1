"""The store's own HTML error pages and headers; JSON routes keep JSON errors."""

import pytest

from storefront import create_app
from tests.conftest import sqlite_url, store_config


def boom():
    raise RuntimeError("a bug")


def test_an_unexpected_error_is_the_stores_500_page_for_pages_and_json_for_the_api(make_store):
    store = make_store(STRIPE_SECRET_KEY="sk_test_unused")
    store.app.add_url_rule("/boom", "boom_page", boom)
    store.app.add_url_rule("/api/boom", "boom_api", boom)
    client = store.client()

    page = client.get("/boom")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "Something went wrong on our side" in page.get_data(as_text=True)
    assert "Content-Security-Policy" in page.headers

    api = client.get("/api/boom")
    assert api.status_code == 500 and api.json["error"]["code"] == "internal_error"
    assert "Content-Security-Policy" not in api.headers


def test_an_unknown_page_is_the_stores_404_page(make_store):
    client = make_store(STRIPE_SECRET_KEY="sk_test_unused").client()
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "We can't find that page" in page.get_data(as_text=True)
    assert client.get("/api/nothing-here").json["error"]["code"] == "not_found"
    assert client.get("/favicon.ico").status_code == 200


def test_a_secret_key_without_a_publishable_key_refuses_to_start(tmp_path):
    config = store_config(sqlite_url(tmp_path), None, STRIPE_SECRET_KEY="sk_test_real", STRIPE_PUBLISHABLE_KEY="")
    with pytest.raises(RuntimeError, match="STRIPE_PUBLISHABLE_KEY"):
        create_app(config)
