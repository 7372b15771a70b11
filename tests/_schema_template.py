"""A migrated database schema built once per test session and stamped out for every test that needs one.

Running the Alembic migrations 0001…head costs ~0.2 s per test on SQLite and ~1 s on PostgreSQL (mostly Alembic's
Python, not the DDL). The ``platform`` fixture instead:

- SQLite: migrates one template file per session (WAL checkpointed and removed, so the main file is the whole
  database) and gives each test a byte-for-byte copy of it;
- PostgreSQL: migrates one template schema per session while recording every statement the migrations send,
  drops that schema, and replays the recorded SQL (parameters inlined by psycopg itself) into each test's own
  empty schema in one round trip. The migration SQL is unqualified (it lands in ``search_path``), so the replay
  is the same DDL and the same data statements the migrations ran; a recorded statement that names the template
  schema would make the replay wrong, and building the template then fails loudly.

``Platform.initialize`` then finds the schema at head, skips the migrations and does only its per-test parts
(data dir, master key file, audit state row, signing key). tests/core/test_test_fixtures.py compares a
template-made database with a genuinely migrated one, catalog by catalog, on both backends.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from qorgau.core import migrate
from qorgau.core.db import make_engine
from qorgau.core.settings import normalize_database_url


def postgres_schema_url(pg_url: str, schema: str) -> str:
    """The SQLAlchemy URL of ``pg_url`` with ``search_path`` set to just ``schema``."""
    sep = "&" if "?" in pg_url else "?"
    return normalize_database_url(pg_url) + f"{sep}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def fresh_postgres_schema(pg_url: str, prefix: str = "t_") -> Iterator[tuple[str, str]]:
    """An empty schema of its own (dropped afterwards): yields (URL with search_path set to it, schema name)."""
    schema = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(normalize_database_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield postgres_schema_url(pg_url, schema), schema
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def libpq_conninfo(database_url: str) -> str:
    """A psycopg/libpq connection string for a (``postgresql+psycopg://``) SQLAlchemy URL, options kept."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database:
        raise ValueError("database_url: an in-memory SQLite database cannot be provisioned from a template")
    return Path(database)


class SchemaTemplate:
    """The session's migrated template (built lazily, per backend, on first use)."""

    def __init__(self, workdir: Path, pg_url: str | None) -> None:
        self.workdir = workdir
        self.pg_url = pg_url
        self.provisioned: set[str] = set()  # URLs this template filled (tests check the fixtures with it)
        self._lock = threading.Lock()
        self._sqlite_file: Path | None = None
        self._pg_script: str | None = None

    # --- building the templates ---------------------------------------------------------------------------

    def sqlite_file(self) -> Path:
        with self._lock:
            if self._sqlite_file is None:
                path = self.workdir / "template.db"
                engine = make_engine(f"sqlite:///{path}")  # the very engine setup Platform uses (WAL, FKs)
                try:
                    migrate.upgrade(engine)
                    raw = engine.raw_connection()
                    try:
                        busy, _, _ = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    finally:
                        raw.close()
                    if busy:
                        raise RuntimeError("could not checkpoint the SQLite template database")
                finally:
                    engine.dispose()
                wal = path.with_name(path.name + "-wal")
                if wal.exists() and wal.stat().st_size:
                    raise RuntimeError("the SQLite template still has un-checkpointed WAL frames")
                self._sqlite_file = path
            return self._sqlite_file

    def postgres_script(self) -> str:
        with self._lock:
            if self._pg_script is None:
                if not self.pg_url:
                    raise RuntimeError("QORGAU_TEST_DATABASE_URL is not set; no PostgreSQL template")
                self._pg_script = record_postgres_migrations(self.pg_url)
            return self._pg_script

    # --- stamping out copies ------------------------------------------------------------------------------

    def provision(self, database_url: str) -> bool:
        """Fill the empty database at ``database_url`` with the migrated template.

        Returns False and touches nothing when the database is not empty (the caller then migrates it the
        ordinary way)."""
        if database_url.startswith("sqlite"):
            target = sqlite_path(database_url)
            if any(p.exists() for p in (target, target.with_name(target.name + "-wal"))):
                return False
            source = self.sqlite_file()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        elif database_url.startswith("postgresql"):
            import psycopg

            script = self.postgres_script()
            with psycopg.connect(libpq_conninfo(database_url)) as conn:  # one transaction, committed on exit
                schema, empty = conn.execute(
                    "SELECT current_schema(), NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = current_schema())").fetchone()
                if schema is None or not empty:
                    return False
                conn.execute(script.encode())  # no parameters: sent as one simple-protocol script
        else:
            raise ValueError("database_url: only SQLite and PostgreSQL test databases have templates")
        self.provisioned.add(database_url)
        return True


def record_postgres_migrations(pg_url: str) -> str:
    """Run every migration once into a scratch schema and return the SQL it sent, as one replayable script."""
    import psycopg

    with fresh_postgres_schema(pg_url, prefix="tpl_") as (url, schema):
        engine = make_engine(url)
        try:
            engine.connect().close()  # the dialect's first-connect probes are not part of the migrations
            sent: list[tuple[str, Any, bool]] = []

            def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                       executemany: bool) -> None:
                sent.append((statement, parameters, executemany))

            event.listen(engine, "before_cursor_execute", record)
            migrate.upgrade(engine)
            event.remove(engine, "before_cursor_execute", record)
        finally:
            engine.dispose()
        with psycopg.connect(libpq_conninfo(url)) as conn:
            client = psycopg.ClientCursor(conn)
            statements: list[str] = []
            for statement, parameters, many in sent:
                for params in (parameters if many else [parameters]):
                    params = dict(params) if isinstance(params, Mapping) else params
                    statements.append(client.mogrify(statement, params))
    if not statements or not any("alembic_version" in s for s in statements):
        raise RuntimeError("recording the PostgreSQL migrations caught no statements")
    if any(schema in s for s in statements):
        raise RuntimeError(f"a migration statement names its schema ({schema}); it cannot be replayed elsewhere")
    return "\n;\n".join(statements)
