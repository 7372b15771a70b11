"""The running platform: settings, database, keys. One object the API, web and CLI share."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import inspect

from . import audit, migrate
from .db import Database
from .keys import FileKeyProvider, KeyProvider, KeyRing
from .settings import Settings, get_settings


class NotInitialized(RuntimeError):
    """The data dir or database was never set up; the message says which command fixes it."""


@dataclass
class Platform:
    settings: Settings
    db: Database
    keys: KeyProvider
    keyring: KeyRing = field(init=False)

    def __post_init__(self) -> None:
        self.keyring = KeyRing(self.keys)

    def __repr__(self) -> str:
        return f"Platform(data_dir={str(self.settings.data_dir)!r}, db={self.db.dialect})"

    @classmethod
    def open(cls, settings: Settings | None = None, *, check_schema: bool = True) -> "Platform":
        """Open an initialized platform (``qorgau init`` must have run)."""
        settings = settings or get_settings()
        keys = FileKeyProvider(settings.master_key_path) if settings.master_key_path.exists() else None
        if keys is None:
            raise NotInitialized(f"no master key at {settings.master_key_path}; run `qorgau init`")
        db = Database(settings.resolved_database_url)
        platform = cls(settings, db, keys)
        if check_schema:
            current, head = migrate.current_revision(db.engine), migrate.head_revision(db.engine)
            if current != head:
                db.dispose()
                raise NotInitialized(
                    f"database schema is at {current or 'nothing'}, code expects {head}; run `qorgau db upgrade`"
                )
        return platform

    @classmethod
    def initialize(cls, settings: Settings | None = None) -> "Platform":
        """Create the data dir, the master key file (0600) and the schema; safe to run again."""
        settings = settings or get_settings()
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        keys = FileKeyProvider.create(settings.master_key_path)
        db = Database(settings.resolved_database_url)
        platform = cls(settings, db, keys)
        platform.upgrade()
        return platform

    def upgrade(self) -> None:
        migrate.upgrade(self.db.engine)
        with self.db.transaction() as session:
            audit.initialize(session)
            self.keyring.get_or_create(session, audit.SIGNING_KEY_ID, "audit-signing")

    def has_schema(self) -> bool:
        return inspect(self.db.engine).has_table("organizations")

    def close(self) -> None:
        self.db.dispose()


_T = TypeVar("_T")
_SHARED_LOCK = threading.RLock()  # re-entrant: one service's constructor may ask for another's


def shared(platform: Platform, attribute: str, factory: Callable[[Platform], _T]) -> _T:
    """The platform's one instance of a service (``vault_for``, ``consent_for``…): made by ``factory`` on first
    use, under a lock, and kept on the platform object so the API, the web pages and the CLI share it."""
    found = platform.__dict__.get(attribute)
    if found is None:
        with _SHARED_LOCK:
            found = platform.__dict__.get(attribute)
            if found is None:
                found = factory(platform)
                platform.__dict__[attribute] = found
    return found
