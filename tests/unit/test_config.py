"""Configuration the store refuses to start with."""

import pytest

from storefront import create_app
from storefront.config import Config, check_stripe_keys


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
