"""Alembic, driven from code: migrations ship inside the package, no ``alembic.ini`` needed."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("qorgau.core") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current_revision(engine) == _head():
        return  # already current: don't load and run every migration script (each start, each test)
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return _head()


@lru_cache(maxsize=1)
def _head() -> str | None:
    """The newest revision shipped in the package (the scripts don't change while the process runs)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("qorgau.core") / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()
