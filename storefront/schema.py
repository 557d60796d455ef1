"""The database schema at start: migrated by the process itself (the demo, development, tests), or checked
against the code's revision (production, where `flask --app storefront db upgrade` is a release step).

A production process never migrates: a bad migration then fails once, in the release step, instead of
crash-looping every web, worker and cron process, and a rolling deploy has a gate to stop at.
"""

import logging

import flask_migrate
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from .database import schema_lock
from .errors import StoreUnavailable
from .extensions import db

log = logging.getLogger(__name__)

UPGRADE_COMMAND = "flask --app storefront db upgrade"


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code's: the process must not serve."""


def prepare_schema(app, engine, migrations):
    """Migrate (MIGRATE_ON_START) or check the schema, then seed; returns the refusal message, or None.

    Runs under PostgreSQL's advisory lock, so processes started together migrate and seed once.
    """
    with schema_lock(engine):
        if app.config["MIGRATE_ON_START"]:
            flask_migrate.upgrade(directory=str(migrations))
        refusal = schema_refusal(engine, migrations)
        if refusal is None and app.config["SEED_CATALOG"]:
            from .catalog.routes import seed_catalog

            seed_catalog(db.session, app.config["CURRENCY"])
    if refusal:
        # The entry points refuse to start; an app built another way answers 503 rather than half-work.
        app.before_request(lambda: _refuse(refusal))
    return refusal


def _refuse(refusal):
    log.error("%s", refusal)
    raise StoreUnavailable(refusal, code="schema_behind")


def schema_refusal(engine, migrations):
    """Why this code must not serve on this database (its schema is older), or None when it may."""
    script = ScriptDirectory(str(migrations))
    needed = set(script.get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == needed:
        return None
    known = {revision.revision for revision in script.walk_revisions()}
    if current and not current <= known:
        # Newer code has migrated (a rolling deploy, or a rollback of the code): its migrations keep
        # the old columns working until a later release, so an older process may go on serving.
        log.warning(
            "the database schema is at revision %s, which this code does not know (newer code migrated it); "
            "serving with this code's revision %s",
            ", ".join(sorted(current)),
            ", ".join(sorted(needed)),
        )
        return None
    found = f"at revision {', '.join(sorted(current))}" if current else "empty (no migration applied)"
    return (
        f"the database schema is {found}; this code needs revision {', '.join(sorted(needed))}. "
        f"Run `{UPGRADE_COMMAND}` (the release step, with this DATABASE_URL) before starting the web and worker "
        "processes (docs/production.md, 'Migrations')"
    )


def require_current_schema(app):
    """Refuse to go on (SchemaBehind, with the revision needed and the command) on an older schema."""
    refusal = app.extensions.get("schema_refusal")
    if refusal:
        raise SchemaBehind(refusal)
