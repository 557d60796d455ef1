"""production.py runs only on gevent: the async mode stays one setting, and a wrong one is refused."""

import os
import subprocess
import sys

from bench.stack import ROOT


def test_production_refuses_another_async_mode(tmp_path):
    env = {**os.environ, "SOCKETIO_ASYNC_MODE": "eventlet", "DATABASE_URL": f"sqlite:///{tmp_path}/store.sqlite3"}
    env.pop("STRIPE_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import production"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SOCKETIO_ASYNC_MODE must be gevent" in result.stderr
    assert not (tmp_path / "store.sqlite3").exists()  # refused before the app touched the database


def test_production_refuses_the_development_secret_key(tmp_path):
    env = {
        **os.environ,
        "SOCKETIO_ASYNC_MODE": "gevent",
        "DATABASE_URL": f"sqlite:///{tmp_path}/store.sqlite3",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    for name in ("STRIPE_SECRET_KEY", "SECRET_KEY", "STOREFRONT_ENV"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", "import production"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_production_refuses_the_old_development_key_and_live_keys_need_it(tmp_path):
    env = {
        **os.environ,
        "SOCKETIO_ASYNC_MODE": "gevent",
        "DATABASE_URL": f"sqlite:///{tmp_path}/store.sqlite3",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24,
        "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "x" * 24,
        "SECRET_KEY": "dev-only-insecure-secret-key",  # public in this repository's history
    }
    env.pop("STOREFRONT_ENV", None)  # production.py's own default: production
    result = subprocess.run(
        [sys.executable, "-c", "import production"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "SECRET_KEY is a key published in this repository" in result.stderr
    assert not (tmp_path / "store.sqlite3").exists()
