"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from qorgau.core import migrate
from qorgau.core.models import metadata


def test_migrations_match_models(migrated_platform):
    """Runs the real migrations (the ``platform`` fixture copies a template; test_test_fixtures.py checks it)."""
    engine = migrated_platform.db.engine
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_one_linear_history(platform):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(platform.db.engine))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
