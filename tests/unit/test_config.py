"""Configuration the store refuses to start with."""

import pytest

from storefront import create_app
from storefront.config import PUBLISHED_SECRET_KEYS, Config, check_production_safety, check_stripe_keys

LIVE_PAIRS = [
    {"STRIPE_SECRET_KEY": "sk_live_123", "STRIPE_PUBLISHABLE_KEY": "pk_live_123"},
    {"STRIPE_SECRET_KEY": "rk_live_123", "STRIPE_PUBLISHABLE_KEY": "pk_live_123"},
    {"STRIPE_PUBLISHABLE_KEY": "pk_live_123"},  # a live publishable key beside the offline sandbox
]
PRODUCTION = {"STOREFRONT_ENV": "production", "SECRET_KEY": "a-real-secret-" + "7" * 32, "STRIPE_WEBHOOK_SECRET": "w"}


def test_a_secret_key_without_a_publishable_key_is_refused_with_a_clear_message():
    config = vars(Config({"STRIPE_SECRET_KEY": "sk_test_123"}))
    with pytest.raises(RuntimeError, match="STRIPE_PUBLISHABLE_KEY is not"):
        check_stripe_keys(config)


def test_keys_from_different_modes_are_refused():
    config = vars(Config({"STRIPE_SECRET_KEY": "sk_live_123", "STRIPE_PUBLISHABLE_KEY": "pk_test_123"}))
    with pytest.raises(RuntimeError, match="different modes"):
        check_stripe_keys(config)


@pytest.mark.parametrize(
    "env",
    [
        {},  # offline: the sandbox's own pair
        {"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_PUBLISHABLE_KEY": "pk_test_123"},
        {"STRIPE_SECRET_KEY": "rk_live_123", "STRIPE_PUBLISHABLE_KEY": "pk_live_123"},
    ],
    ids=["offline", "test-pair", "restricted-live-pair"],
)
def test_a_matching_pair_or_none_is_accepted(env):
    check_stripe_keys(vars(Config(env)))


def test_the_app_does_not_start_with_a_secret_key_and_no_publishable_key(monkeypatch, tmp_path):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_123")
    monkeypatch.delenv("STRIPE_PUBLISHABLE_KEY", raising=False)
    with pytest.raises(RuntimeError, match="STRIPE_PUBLISHABLE_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/store.sqlite3"})
    # The check runs before the database is touched.
    assert not (tmp_path / "store.sqlite3").exists()


def test_every_setting_is_read_from_the_environment_it_is_given(monkeypatch):
    monkeypatch.setenv("FREEZE_SECONDS", "900")
    config = Config({"FREEZE_SECONDS": "5", "SYNC_COALESCE_SECONDS": "0.2", "LOG_LEVEL": "debug"})
    assert config.FREEZE_SECONDS == 5.0 and config.SYNC_COALESCE_SECONDS == 0.2
    assert config.LOG_LEVEL == "DEBUG"
    assert Config({}).LOG_LEVEL == "INFO"


@pytest.mark.parametrize("env", LIVE_PAIRS, ids=["sk_live", "rk_live", "pk_live"])
@pytest.mark.parametrize("store_env", [None, "development", "staging"])
def test_live_keys_are_refused_outside_production(env, store_env):
    config = vars(Config({**env, **({"STOREFRONT_ENV": store_env} if store_env else {})}))
    with pytest.raises(RuntimeError, match="live Stripe keys run only with STOREFRONT_ENV=production"):
        check_production_safety(config)


@pytest.mark.parametrize("env", LIVE_PAIRS[:2], ids=["sk_live", "rk_live"])
def test_live_keys_run_in_production_with_real_secrets(env):
    check_production_safety(vars(Config({**env, **PRODUCTION})))


def test_test_keys_and_the_sandbox_run_outside_production_with_no_secret_key():
    for env in ({}, {"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_PUBLISHABLE_KEY": "pk_test_123"}):
        config = vars(Config(env))
        assert config["SECRET_KEY"] == ""  # no default key: create_app uses the installation's own
        check_production_safety(config)


@pytest.mark.parametrize("key", sorted(PUBLISHED_SECRET_KEYS))
@pytest.mark.parametrize("store_env", [{}, PRODUCTION])
def test_a_published_secret_key_is_refused_everywhere(key, store_env):
    with pytest.raises(RuntimeError, match="published in this repository"):
        check_production_safety(vars(Config({**store_env, "SECRET_KEY": key})))


def test_the_old_development_key_stays_published():
    assert "dev-only-insecure-secret-key" in PUBLISHED_SECRET_KEYS


@pytest.mark.parametrize("key", [None, ""])
def test_production_refuses_a_missing_secret_key(key):
    env = {name: value for name, value in PRODUCTION.items() if name != "SECRET_KEY"}
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set in production"):
        check_production_safety(vars(Config(env if key is None else {**env, "SECRET_KEY": key})))


def test_create_app_refuses_live_keys_before_touching_the_database(monkeypatch, tmp_path):
    for name in ("STOREFRONT_ENV", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_123")
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_live_123")
    with pytest.raises(RuntimeError, match="STOREFRONT_ENV=production"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/store.sqlite3", "INSTANCE_PATH": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []  # no database, no generated key


def test_the_merchants_time_zone_defaults_to_utc_and_an_unknown_one_stops_the_start():
    from datetime import UTC
    from zoneinfo import ZoneInfo

    assert Config({}).TIMEZONE is UTC
    assert Config({"STORE_TIMEZONE": "Europe/Paris"}).TIMEZONE == ZoneInfo("Europe/Paris")
    with pytest.raises(ValueError, match="STORE_TIMEZONE='Mars/Olympus' is not a time zone"):
        Config({"STORE_TIMEZONE": "Mars/Olympus"})
