"""The ``platform`` fixture's template-made database is exactly the database the migrations build.

``platform`` copies a schema migrated once per session (tests/_schema_template.py) instead of running every
migration for every test; these tests compare such a copy with a genuinely migrated database — every table,
column, default, constraint, index, trigger, function, sequence and row — on SQLite and on PostgreSQL, and check
that what must stay per test (master key, signing key, ids) still is."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from _schema_template import SchemaTemplate, fresh_postgres_schema, libpq_conninfo, sqlite_path
from conftest import MIGRATE_EACH_TEST, PG_URL, make_bin
from qorgau.core import audit, auth, migrate
from qorgau.core.db import make_engine
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings


@contextmanager
def another_empty_database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'qorgau.db'}"
        return
    assert PG_URL is not None
    with fresh_postgres_schema(PG_URL) as (url, _schema):
        yield url


def run_migrations(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        sqlite_path(database_url).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def sqlite_snapshot(database_url: str) -> dict[str, Any]:
    conn = sqlite3.connect(sqlite_path(database_url))
    try:
        master = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                        key=repr)
        tables = [name for kind, name, _, _ in master if kind == "table" and not name.startswith("sqlite_")]
        return {
            "master": master,
            "pragmas": [conn.execute(f"PRAGMA {p}").fetchone()[0]
                        for p in ("user_version", "application_id", "journal_mode", "page_size", "auto_vacuum")],
            "columns": {t: conn.execute(f'PRAGMA table_xinfo("{t}")').fetchall() for t in tables},
            "foreign_keys": {t: conn.execute(f'PRAGMA foreign_key_list("{t}")').fetchall() for t in tables},
            "rows": {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables},
        }
    finally:
        conn.close()


PG_CATALOG = {
    "relations": "SELECT relname, relkind, relpersistence, reloptions::text FROM pg_class "
                 "WHERE relnamespace = current_schema()::regnamespace AND relkind <> 't'",
    "columns": "SELECT table_name, column_name, ordinal_position, column_default, is_nullable, data_type, udt_name, "
               "character_maximum_length, numeric_precision, numeric_scale, datetime_precision, is_identity, "
               "is_generated, collation_name FROM information_schema.columns WHERE table_schema = current_schema()",
    "constraints": "SELECT conrelid::regclass::text, conname, contype, condeferrable, convalidated, "
                   "pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
    "triggers": "SELECT tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
                "AND c.relnamespace = current_schema()::regnamespace",
    "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
                 "WHERE pronamespace = current_schema()::regnamespace",
    "sequences": "SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, "
                 "cache_size, last_value FROM pg_sequences WHERE schemaname = current_schema()",
    "sequence_owners": "SELECT s.relname, t.relname, a.attname, d.deptype FROM pg_depend d "
                       "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                       "JOIN pg_class t ON t.oid = d.refobjid "
                       "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
                       "WHERE s.relnamespace = current_schema()::regnamespace",
    "types": "SELECT typname, typtype, typcategory FROM pg_type WHERE typnamespace = current_schema()::regnamespace",
    "enums": "SELECT t.typname, e.enumsortorder, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
             "WHERE t.typnamespace = current_schema()::regnamespace",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema()",
}


def postgres_snapshot(database_url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(libpq_conninfo(database_url)) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]

        def rows(query: str) -> list[tuple[Any, ...]]:
            found = conn.execute(query.encode()).fetchall()
            return sorted((tuple(v.replace(schema, "<schema>") if isinstance(v, str) else v for v in row)
                           for row in found), key=repr)

        snapshot: dict[str, Any] = {name: rows(query) for name, query in PG_CATALOG.items()}
        tables = [name for name, kind, _, _ in snapshot["relations"] if kind in ("r", "p")]
        snapshot["rows"] = {t: rows(f'SELECT * FROM "{t}"') for t in tables}
    return snapshot


def snapshot(database_url: str) -> dict[str, Any]:
    return sqlite_snapshot(database_url) if database_url.startswith("sqlite") else postgres_snapshot(database_url)


def drop_one_index(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_audit_entries_organization_id"))
    finally:
        engine.dispose()


def test_a_template_copy_is_exactly_the_migrated_database(backend: str, database_url: str, tmp_path: Path,
                                                         schema_template: SchemaTemplate) -> None:
    run_migrations(database_url)
    migrated = snapshot(database_url)
    with another_empty_database(backend, tmp_path / "copy") as copy_url:
        assert schema_template.provision(copy_url)
        copied = snapshot(copy_url)
        # the comparison is not vacuous: the schema, the triggers and the head revision are all in it
        text_of = repr(copied)
        engine = make_engine(copy_url)
        head = migrate.head_revision(engine)
        engine.dispose()
        for needle in ("audit_entries", "consent_decision_versions", "ix_audit_entries_organization_id",
                       "append", f"'{head}'"):
            assert needle in text_of, needle
        for part in migrated:
            assert copied[part] == migrated[part], f"{part} differs between the template copy and the migrations"
        assert copied == migrated
        # …and it notices a difference as small as one missing index
        drop_one_index(copy_url)
        assert snapshot(copy_url) != migrated


def test_the_platform_fixture_gets_a_copy_at_head_and_its_own_keys(platform: Platform, settings: Settings,
                                                                   schema_template: SchemaTemplate) -> None:
    # QORGAU_TEST_MIGRATE_EACH_TEST=1 turns the template off: every platform then runs the real migrations
    assert (settings.database_url in schema_template.provisioned) is not MIGRATE_EACH_TEST
    engine = platform.db.engine
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    # the per-test parts of Platform.initialize still ran: data dir, master key file, audit state, signing key
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.master_key_path.stat().st_mode) == 0o600
    with platform.db.reader() as s:
        assert s.execute(text("SELECT tree_size FROM audit_state WHERE id = 1")).scalar_one() == 0
        # the signing key is wrapped by this test's own master key, not one of the template's
        assert s.execute(text("SELECT master_key_id FROM data_keys WHERE id = :k"),
                         {"k": audit.SIGNING_KEY_ID}).scalar_one() == platform.keys.active_key_id
    # the migrations' append-only triggers came along
    with platform.db.transaction() as s:
        auth.create_organization(s, name="Org", bin=make_bin(3), actor="test")
    with pytest.raises(Exception, match="append-only"), platform.db.transaction() as s:
        s.execute(text("UPDATE audit_entries SET actor = 'someone else'"))


def test_each_copy_has_its_own_rows_and_sequences(backend: str, platform: Platform, tmp_path: Path,
                                                  schema_template: SchemaTemplate) -> None:
    template_file = schema_template.sqlite_file() if backend == "sqlite" else None
    before = hashlib.sha256(template_file.read_bytes()).hexdigest() if template_file else None
    with platform.db.transaction() as s:
        ids = [auth.create_organization(s, name=f"Org {n}", bin=make_bin(n), actor="test").id for n in (1, 2)]
    assert ids == [1, 2]
    with another_empty_database(backend, tmp_path / "second") as url:
        assert schema_template.provision(url)
        second = Platform.initialize(Settings(data_dir=tmp_path / "second", database_url=url,
                                              sth_interval_seconds=0))
        try:
            with second.db.transaction() as s:
                assert auth.create_organization(s, name="Other", bin=make_bin(3), actor="test").id == 1
            with second.db.reader() as s:
                assert s.execute(text("SELECT count(*) FROM organizations")).scalar_one() == 1
            assert second.keys.active_key_id != platform.keys.active_key_id
        finally:
            second.close()
    if template_file:
        assert hashlib.sha256(template_file.read_bytes()).hexdigest() == before


def test_migrated_platform_runs_the_real_migrations(migrated_platform: Platform, settings: Settings,
                                                    schema_template: SchemaTemplate) -> None:
    assert settings.database_url not in schema_template.provisioned
    engine = migrated_platform.db.engine
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    # a database that is not empty is never overwritten by the template
    assert not schema_template.provision(settings.database_url)
    assert settings.database_url not in schema_template.provisioned
