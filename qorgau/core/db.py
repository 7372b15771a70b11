"""Database: one SQLAlchemy engine per data dir, SQLite (WAL) by default, PostgreSQL in production.

Two session kinds:
- :meth:`Database.transaction` — a write transaction. On SQLite it starts with ``BEGIN IMMEDIATE`` so
  concurrent writers queue on the lock instead of failing with ``SQLITE_BUSY`` halfway through.
- :meth:`Database.reader` — a read-only snapshot (deferred ``BEGIN`` on SQLite) that never blocks writers.

Tenant isolation lives here too (:class:`TenantScoped`): a session bound to an organization only ever
loads that organization's rows and refuses to flush rows of another one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.types import TypeDecorator

from .errors import PermissionDenied

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; qorgau stores UTC-aware timestamps only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class TenantScoped:
    """Mixin for rows that belong to one organization (tenant).

    A session opened with ``organization_id`` set (see :meth:`Database.transaction`) filters every ORM
    SELECT of these classes to that organization and refuses to write rows of another one. This is the
    single place tenant isolation is enforced; services never add ``WHERE organization_id`` by hand.
    """

    @declared_attr
    def organization_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey("organizations.id"), index=True, nullable=False)


TENANT_KEY = "qorgau_tenant"


def tenant_of(session: Session) -> int | None:
    """The organization a session is bound to (None: unscoped, platform-level).

    Driver-level SQL on a hot path bypasses the ORM hook below and must add
    ``organization_id = tenant_of(session)`` itself; keep every such query next to a test that
    proves another organization's row is not found.
    """
    return session.info.get(TENANT_KEY)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    tenant = state.session.info.get(TENANT_KEY)
    if tenant is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("qorgau_cross_tenant"):
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.organization_id == tenant,
            include_aliases=True,
            propagate_to_loaders=True,
            track_closure_variables=False,
        )
    )


@event.listens_for(Session, "before_flush")
def _refuse_foreign_rows(session: Session, flush_context: Any, instances: Any) -> None:
    tenant = session.info.get(TENANT_KEY)
    if tenant is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, TenantScoped):
            if obj.organization_id is None:
                obj.organization_id = tenant
            elif obj.organization_id != tenant:
                raise PermissionDenied("object belongs to another organization", field="organization_id")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN so we can choose IMMEDIATE per transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("qorgau_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    """An engine plus the two kinds of session qorgau uses."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(qorgau_readonly=True), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self, organization_id: int | None = None) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back everything on any exception."""
        with self._writer() as session:
            if organization_id is not None:
                session.info[TENANT_KEY] = organization_id
            with session.begin():
                yield session

    @contextlib.contextmanager
    def reader(self, organization_id: int | None = None) -> Iterator[Session]:
        with self._reader() as session:
            if organization_id is not None:
                session.info[TENANT_KEY] = organization_id
            with session.begin():
                yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
