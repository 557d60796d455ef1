"""The migrations create exactly the schema the models describe, on SQLite and on PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storefront.extensions import db


def schema_drift(store):
    with store.app.app_context(), db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_migrations_match_the_models_on_sqlite(make_store):
    assert schema_drift(make_store(STRIPE_SECRET_KEY="sk_test_unused")) == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgres(make_store, postgres_url):
    assert schema_drift(make_store(database_url=postgres_url, STRIPE_SECRET_KEY="sk_test_unused")) == []


def test_a_second_start_on_the_same_database_changes_nothing(make_store, tmp_path):
    url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    first = make_store(database_url=url, STRIPE_SECRET_KEY="sk_test_unused")
    products = first.client().get("/api/products").get_json()
    second = make_store(database_url=url, STRIPE_SECRET_KEY="sk_test_unused")
    assert second.client().get("/api/products").get_json() == products
