"""Settings: environment variables, an optional ``qorgau.toml``, sensible defaults.

Every command reads settings through :func:`get_settings`, so two instances with different
``QORGAU_DATA_DIR`` never touch each other's database or keys.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Language = Literal["kk", "ru", "en"]
LANGUAGES: tuple[Language, ...] = ("kk", "ru", "en")


def _config_file() -> Path:
    return Path(os.environ.get("QORGAU_CONFIG", "qorgau.toml"))


class Settings(BaseSettings):
    """Runtime configuration. Environment variables win over ``qorgau.toml``."""

    model_config = SettingsConfigDict(env_prefix="QORGAU_", extra="forbid")

    data_dir: Path = Field(default=Path("./var"), description="Database, keys and uploads live here.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite at DATA_DIR/qorgau.db."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_language: Language = "kk"
    session_hours: int = Field(default=8, ge=1, le=24 * 30)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    secure_cookies: bool = Field(
        default=False, description="Set the Secure flag on cookies (enable behind HTTPS)."
    )
    sth_interval_seconds: float = Field(
        default=60.0, ge=0, description="How often the server signs a fresh audit tree head (0 = never)."
    )

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # A database URL may carry a password: print it with the password hidden.
        for name, value in super().__repr_args__():
            yield name, (hide_password(value) if name == "database_url" and value else value)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qorgau.db').resolve()}"

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> "Settings":
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as CI and libpq users write them) and use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class SettingsError(ValueError):
    """Configuration is invalid; the message names the setting and where it came from, not its value."""


def hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL we can parse: show only its scheme
        return url.split(":", 1)[0] + "://…"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '?'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise SettingsError(
            f"invalid configuration (QORGAU_* environment variables or {_config_file()}): {problems}"
        ) from None
