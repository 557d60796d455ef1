"""No published key signs anything: the demo's own key lives in instance/, live keys need production, and a
session forged with the old development key reaches nobody's cart, order, pushes or payment."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import socketio
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from storefront import create_app
from tests.conftest import sqlite_url, wait_for
from tests.shopping import browser_confirm

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
OLD_DEV_KEY = "dev-only-insecure-secret-key"  # storefront/config.py's default SECRET_KEY until issue 23


@pytest.fixture
def no_secret_in_env(monkeypatch):
    for name in ("SECRET_KEY", "STOREFRONT_ENV", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY"):
        monkeypatch.delenv(name, raising=False)


def demo_app(tmp_path, instance, **config):
    """An app as the demo builds it: no SECRET_KEY given."""
    return create_app({"SQLALCHEMY_DATABASE_URI": sqlite_url(tmp_path), "INSTANCE_PATH": str(instance), **config})


def test_the_demo_key_is_generated_once_kept_private_in_instance_and_reused(tmp_path, no_secret_in_env):
    instance = tmp_path / "instance"
    first = demo_app(tmp_path, instance)
    key_file = instance / "secret_key"
    assert key_file.read_text().strip() == first.secret_key and len(first.secret_key) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in instance.iterdir() if p.name.startswith(".")] == []  # no temporary file left

    shopper = first.test_client()
    cart_id = shopper.get("/api/cart").get_json()["id"]
    restarted = demo_app(tmp_path, instance)  # the next start reads the same key
    assert restarted.secret_key == first.secret_key
    again = restarted.test_client()
    again.set_cookie("session", shopper.get_cookie("session").value)
    assert again.get("/api/cart").get_json()["id"] == cart_id  # the session survived the restart

    elsewhere = demo_app(tmp_path, tmp_path / "other-instance")  # another installation
    assert elsewhere.secret_key != first.secret_key


def test_instance_is_ignored_by_git():
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "instance/secret_key"], cwd=ROOT)
    assert ignored.returncode == 0, "instance/ must be git-ignored: the generated key would be committable"


def test_processes_starting_at_once_agree_on_one_key(tmp_path):
    instance = tmp_path / "instance"
    command = [sys.executable, "-c", "import sys; from storefront.secret_key import installation_secret as s; "
               "print(s(sys.argv[1]))", str(instance)]  # fmt: skip
    starting = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {process.communicate(timeout=60)[0].strip() for process in starting}
    assert keys == {(instance / "secret_key").read_text().strip()}
    assert all(process.returncode == 0 for process in starting)


@pytest.mark.parametrize("written", [OLD_DEV_KEY, "short"])
def test_a_kept_key_that_is_published_or_too_short_is_refused(tmp_path, no_secret_in_env, written):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "secret_key").write_text(written + "\n")
    with pytest.raises(RuntimeError, match="holds no usable key"):
        demo_app(tmp_path, instance)


def test_wsgi_refuses_live_keys_outside_production(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "STOREFRONT_ENV")}
    env.update(
        STRIPE_SECRET_KEY="sk_live_" + "x" * 24,
        STRIPE_PUBLISHABLE_KEY="pk_live_" + "x" * 24,
        DATABASE_URL=sqlite_url(tmp_path),
        INSTANCE_PATH=str(tmp_path / "instance"),
        PORT="1",
    )
    result = subprocess.run([sys.executable, "wsgi.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "live Stripe keys run only with STOREFRONT_ENV=production" in result.stderr
    # Refused before anything was written: no database, no generated key.
    assert not (tmp_path / "store.sqlite3").exists() and not (tmp_path / "instance" / "secret_key").exists()


# --- a session forged with the old development key --------------------------------------------


def forged_cookie(key, cart_id):
    """A session cookie naming `cart_id`, signed with `key` exactly as Flask signs one."""
    forger = Flask("forger")
    forger.secret_key = key
    signer = SecureCookieSessionInterface().get_signing_serializer(forger)
    return signer.dumps({"cart_id": cart_id, "cart_written": cart_id, "_permanent": True})


class Visitor:
    """Requests that each carry one fixed session cookie (a fresh cookie the store sets is not kept)."""

    def __init__(self, url, cookie):
        self.url, self.cookie = url, cookie

    def call(self, method, path, **kwargs):
        return requests.request(method, self.url + path, cookies={"session": self.cookie}, timeout=15, **kwargs)

    def tab(self):
        """A Socket.IO connection with this cookie: its pushes, or None if the store refused it."""
        client, pushes = socketio.Client(reconnection=False), []
        client.on("cart", lambda data: pushes.append(("cart", data)))
        client.on("order", lambda data: pushes.append(("order", data)))
        try:
            client.connect(self.url, headers={"Cookie": f"session={self.cookie}"}, transports=["polling"])
        except socketio.exceptions.ConnectionError:
            return client, None
        return client, pushes


def http_checkout(url):
    """A shopper over HTTP: two units in the cart, the handshake passed; (session, cart, checkout, order id)."""
    victim = requests.Session()
    assert victim.get(f"{url}/api/cart", timeout=15).status_code == 200
    cart = victim.post(f"{url}/api/cart/items", json={"product_id": 1, "quantity": 2}, timeout=15).json()
    started = victim.post(f"{url}/api/checkout", timeout=30).json()
    confirmed = victim.post(f"{url}/api/checkout/confirm", json={"cart_version": cart["version"]}, timeout=30)
    assert confirmed.status_code == 200, confirmed.text
    return victim, cart, started, confirmed.json()["order_id"]


def test_a_cookie_forged_with_the_old_development_key_reaches_no_other_shopper(
    make_store, sandbox, stripe_client, tmp_path, no_secret_in_env
):
    store = make_store(sandbox=sandbox, SECRET_KEY="", INSTANCE_PATH=str(tmp_path / "instance"))
    victim, cart, started, order_id = http_checkout(store.url)
    victim_id = cart["id"]

    # The forgery itself is right: signed with the store's real key, the same cookie is the victim's session.
    insider = Visitor(store.url, forged_cookie(store.app.secret_key, victim_id))
    assert insider.call("GET", "/api/cart").json()["id"] == victim_id
    assert insider.call("GET", f"/api/orders/{order_id}").status_code == 200
    insider_tab, insider_pushes = insider.tab()
    assert insider_pushes is not None

    attacker = Visitor(store.url, forged_cookie(OLD_DEV_KEY, victim_id))
    seen = attacker.call("GET", "/api/cart").json()
    assert seen["id"] != victim_id and seen["items"] == []
    assert attacker.call("GET", f"/api/orders/{order_id}").status_code == 404
    attacker_tab, attacker_pushes = attacker.tab()
    cancelled = attacker.call("POST", "/api/checkout/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["id"] != victim_id
    assert stripe_client.v1.payment_intents.retrieve(started["payment_intent_id"]).status == "requires_payment_method"
    assert victim.get(f"{store.url}/api/cart", timeout=15).json()["status"] == "frozen"

    # The victim pays: their order is paid, and only a session with the real key heard about it.
    assert browser_confirm(sandbox.url, sandbox.publishable_key, started)[0] == 200
    wait_for(lambda: victim.get(f"{store.url}/api/orders/{order_id}", timeout=15).json()["status"] == "paid")
    wait_for(lambda: ("order", {"id": order_id, "status": "paid", "amount": cart["total"]}) in insider_pushes)
    assert not attacker_pushes  # None (refused) or nothing pushed to it
    for tab in (insider_tab, attacker_tab):
        tab.disconnect()
