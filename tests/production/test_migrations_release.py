"""Migrations as a release step: production processes do not migrate at start, and on a schema older than
their code they refuse to serve, naming the revision they need and the command; `flask --app storefront
db upgrade` (the release step) brings the schema, and then they start. The demo and the tests migrate."""

import logging
import logging.handlers
import os
import secrets
import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from bench.stack import ROOT
from storefront import MIGRATIONS, create_app
from storefront.config import Config
from storefront.extensions import db
from storefront.schema import SchemaBehind, require_current_schema
from tests.conftest import sqlite_url, store_config

SCRIPT = ScriptDirectory(str(MIGRATIONS))
HEAD = SCRIPT.get_current_head()
PREVIOUS = SCRIPT.get_revision(HEAD).down_revision
UPGRADE = "Run `flask --app storefront db upgrade`"


def production_env(database_url):
    env = {
        **os.environ,
        "STOREFRONT_ENV": "production",
        "SECRET_KEY": "test-" + secrets.token_hex(16),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        "DATABASE_URL": database_url,
    }
    for name in ("STRIPE_SECRET_KEY", "SOCKETIO_ASYNC_MODE", "SOCKETIO_MESSAGE_QUEUE", "WORKER", "MIGRATE_ON_START"):
        env.pop(name, None)
    return env


def run(env, *args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def flask(env, *args):
    return run(env, "-m", "flask", "--app", "storefront", *args)


def start_production(env):
    """Build production's app (`import production`, what gunicorn's worker does) and exit."""
    return run(env, "-c", "import production")


def tables(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_production_refuses_an_empty_database_until_the_release_step_migrates_it(postgres_url):
    env = production_env(postgres_url)
    web = start_production(env)
    assert web.returncode != 0
    assert f"the database schema is empty (no migration applied); this code needs revision {HEAD}" in web.stderr
    assert UPGRADE in web.stderr
    worker = flask(env, "worker")
    assert worker.returncode == 1
    assert f"this code needs revision {HEAD}" in worker.stderr and UPGRADE in worker.stderr
    assert tables(postgres_url) == set()  # neither migrated it

    release = flask(env, "db", "upgrade")
    assert release.returncode == 0, release.stderr
    web = start_production(env)
    assert web.returncode == 0, web.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_production_refuses_an_older_revision_and_names_both(postgres_url):
    env = production_env(postgres_url)
    assert flask(env, "db", "upgrade", PREVIOUS).returncode == 0
    web = start_production(env)
    assert web.returncode != 0
    assert f"the database schema is at revision {PREVIOUS}; this code needs revision {HEAD}" in web.stderr
    assert "production.py refuses to serve" in web.stderr
    assert flask(env, "db", "upgrade").returncode == 0
    assert start_production(env).returncode == 0


def test_an_app_that_does_not_migrate_at_start_leaves_the_database_alone_and_refuses(tmp_path):
    app = create_app(store_config(sqlite_url(tmp_path), MIGRATE_ON_START=False, STRIPE_SECRET_KEY="sk_test_x"))
    with pytest.raises(SchemaBehind, match=f"needs revision {HEAD}"):
        require_current_schema(app)
    with app.app_context():
        assert inspect(db.engine).get_table_names() == []
        db.engine.dispose()


def test_a_schema_newer_than_the_code_is_served_with_a_warning(tmp_path):
    url = sqlite_url(tmp_path)
    migrated = create_app(store_config(url, STRIPE_SECRET_KEY="sk_test_x"))  # migrates, as tests and the demo do
    with migrated.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))  # a later release's
        db.engine.dispose()
    # On the module's logger itself: Alembic's fileConfig (run by the migration above) replaces the root's handlers.
    warnings = logging.handlers.BufferingHandler(10)
    logging.getLogger("storefront.schema").addHandler(warnings)
    try:
        app = create_app(store_config(url, MIGRATE_ON_START=False, STRIPE_SECRET_KEY="sk_test_x"))
    finally:
        logging.getLogger("storefront.schema").removeHandler(warnings)
    require_current_schema(app)  # no refusal: a rolling deploy's older processes go on serving
    assert any("f00dfeedbeef, which this code does not know" in r.getMessage() for r in warnings.buffer)
    with app.app_context():
        db.engine.dispose()


def test_production_defaults_no_migration_at_start_and_no_worker_in_the_web_process():
    production = Config({"STOREFRONT_ENV": "production"})
    assert (production.MIGRATE_ON_START, production.WORKER) == (False, "off")
    development = Config({})
    assert (development.MIGRATE_ON_START, development.WORKER) == (True, "embedded")
    assert Config({"STOREFRONT_ENV": "production", "MIGRATE_ON_START": "1"}).MIGRATE_ON_START is True


def test_an_app_built_another_way_on_an_older_schema_answers_503_naming_the_revision(tmp_path):
    app = create_app(store_config(sqlite_url(tmp_path), MIGRATE_ON_START=False, STRIPE_SECRET_KEY="sk_test_x"))
    answer = app.test_client().get("/api/products")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "schema_behind"
    assert f"needs revision {HEAD}" in answer.get_json()["error"]["message"]
    with app.app_context():
        db.engine.dispose()
