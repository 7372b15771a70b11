"""Settings: environment variables, an optional ``qorgau.toml``, sensible defaults.

Every command reads settings through :func:`get_settings`, so two instances with different
``QORGAU_DATA_DIR`` never touch each other's database or keys.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
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
    # --- discovery: background scan jobs (qorgau/discovery/jobs.py) ---
    scan_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Directories server-side path scans may read (absolute; a JSON list or os.pathsep-"
                    "separated). '{bin}' in a root is the caller's organization BIN, so each tenant reads "
                    "only its own subdirectory. Empty: scans of server paths are refused.")
    scan_workers: int = Field(
        default=1, ge=0, le=64, description="Scan job workers the API server runs in threads (0 = none; "
                                            "run `qorgau jobs worker` processes instead).")
    scan_upload_max_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024, description="Largest upload (all files of one request) to scan.")
    scan_job_heartbeat_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="How often a worker proves a running job is alive; a job "
                                                 "silent for 6 heartbeats is re-queued.")
    # --- consent: webhook delivery through the outbox (qorgau/consent/dispatcher.py) ---
    consent_dispatcher: bool = Field(
        default=True, description="Run the webhook dispatcher in the API server (a background thread); "
                                  "`qorgau consent dispatcher` runs more, or instead.")
    consent_dispatcher_poll_seconds: float = Field(
        default=0.25, gt=0, le=60, description="How often an idle dispatcher looks for due messages "
                                                "(withdrawals in the same process wake it at once).")
    consent_dispatcher_lease_seconds: float = Field(
        default=60.0, ge=1, le=3600, description="How long a dispatcher holds a claimed message; a crashed "
                                                  "dispatcher's messages are delivered by another after it.")
    consent_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120,
                                                   description="Timeout of one webhook POST.")
    consent_webhook_max_attempts: int = Field(default=12, ge=1, le=100,
                                              description="Attempts before a message is dead-lettered.")
    consent_webhook_max_age_hours: float = Field(default=72.0, gt=0, le=24 * 30,
                                                 description="A message not delivered by then is dead-lettered.")
    consent_webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="First retry delay; doubles per attempt, with jitter.")
    consent_webhook_backoff_cap_seconds: float = Field(default=3600.0, gt=0, le=86400,
                                                       description="Longest delay between two attempts.")
    consent_webhook_allow_http: bool = Field(
        default=False, description="Allow plain-http webhook URLs to hosts other than loopback (https is "
                                   "required otherwise).")
    consent_reidentification: Literal["taxonomy", "strict"] = Field(
        default="taxonomy", description="Vault re-identification for a purpose of the consent taxonomy needs a "
                                        "consent or legal basis per subject; 'strict' also refuses purpose codes "
                                        "outside the taxonomy.")

    # --- the law as code: rule packs (qorgau/rules/) ---
    rules_extra_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories of the operator's own rule packs (*.yaml, read recursively) loaded next to the "
                    "built-in ones (a JSON list or os.pathsep-separated).")
    rules_stricter_profile: bool = Field(
        default=False, description="Also apply the 'stricter' rule packs ([plan] proposals, not yet law) by default.")

    # --- login throttling (qorgau/core/throttle.py) ---
    login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Wrong passwords for one account name within the window before "
                                              "it is locked (counted whether or not the account exists).")
    login_address_max_failures: int = Field(
        default=20, ge=1, le=100000, description="Wrong passwords from one client address (IPv6: its /64) "
                                                 "within the window before the address is locked.")
    login_failure_window_seconds: float = Field(
        default=900.0, ge=1, le=7 * 86400, description="Failures older than this no longer count towards a lock.")
    login_lockout_seconds: float = Field(
        default=300.0, ge=1, le=86400, description="First lockout; each further one (without a successful login "
                                                   "in between) doubles it.")
    login_lockout_max_seconds: float = Field(default=3600.0, ge=1, le=30 * 86400,
                                             description="Longest lockout.")
    login_throttle_retention_hours: float = Field(
        default=24.0, gt=0, le=24 * 90, description="Throttle rows quiet for this long (and not locked) are "
                                                     "deleted; the lockout escalation is forgotten with them.")
    # --- citizen identity: OpenID Connect provider (qorgau/consent/oidc.py, docs/oidc.md) ---
    oidc_issuer: str | None = Field(
        default=None, description="Issuer URL of the OpenID Connect provider citizens prove their IIN with (e.g. the "
                                  "eGov IdP); https:// (http:// only on loopback). Unset: only the embedded demo "
                                  "provider (enrollment codes).")
    oidc_client_id: str | None = Field(default=None, description="qorgau's client id at the OIDC provider.")
    oidc_client_secret: SecretStr | None = Field(default=None, description="Client secret (client_secret_basic).")
    oidc_client_secret_file: Path | None = Field(default=None, description="A file holding the client secret.")
    oidc_iin_claim: str = Field(default="iin", description="The ID token claim that carries the IIN.")
    oidc_scopes: str = Field(default="openid", description="Scopes to request, space-separated (with openid).")
    oidc_display_name: str = Field(default="eGov", description="Shown on /me/verify as 'Sign in with <name>'.")
    oidc_redirect_uri: str | None = Field(
        default=None, description="Absolute URL of /me/verify/oidc/callback as registered at the provider (default: "
                                  "derived from the request).")

    @field_validator("oidc_issuer", "oidc_redirect_uri")
    @classmethod
    def _oidc_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        parts = urlsplit(value or "")
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
        if value and (not parts.hostname or parts.fragment or (parts.scheme != "https" and not loopback)):
            raise ValueError("must be an https:// URL with a host (http:// only for loopback hosts)")
        return value or None

    @model_validator(mode="after")
    def _oidc_client(self) -> "Settings":
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("oidc_client_id is required when oidc_issuer is set")
        return self
    # --- leak register: public transparency page (qorgau/leaks/transparency.py) ---
    leaks_public_min_people: int = Field(
        default=1000, ge=1, le=10**9, description="Published incidents count on the public transparency page and "
                                                   "open data only when at least this many people were affected.")
    # --- leak register: two-phase ingest of leak files (qorgau/leaks/ingest.py) ---
    leaks_upload_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest leak file one upload may carry (bytes).")
    leaks_upload_ttl_hours: float = Field(
        default=24.0, gt=0, le=24 * 30, description="An unconfirmed leak upload expires (spool deleted) after this.")
    # --- leak register: citizens and the messenger (qorgau/leaks/citizens.py, qorgau/leaks/messenger.py) ---
    leaks_messenger: Literal["sink", "smtp"] = Field(
        default="sink", description="How e-mail reaches citizens: 'sink' (demo: nothing is sent, files under "
                                    "DATA_DIR/outbox) or 'smtp'. SMS go through leaks_sms_url when it is set.")
    leaks_mail_from: str = Field(default="qorgau@localhost", max_length=300, description="Sender of citizen e-mail.")
    leaks_smtp_host: str | None = Field(default=None, description="SMTP server for citizen e-mail.")
    leaks_smtp_port: int = Field(default=587, ge=1, le=65535)
    leaks_smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")
    leaks_smtp_username: str | None = None
    leaks_smtp_password: SecretStr | None = None
    leaks_sms_url: str | None = Field(default=None, description="HTTP SMS gateway: POST {to, text, sender} as JSON "
                                                                "with a bearer token (docs/leaks-citizens.md).")
    leaks_sms_token: SecretStr | None = None
    leaks_sms_sender: str = Field(default="qorgau", max_length=40)
    leaks_portal_url: str | None = Field(
        default=None, description="The portal's public address in e-mail links and notices (default: "
                                  "http://HOST:PORT).")
    leaks_otp_minutes: int = Field(default=10, ge=1, le=60, description="A one-time SMS code expires after this.")
    leaks_email_link_hours: int = Field(default=24, ge=1, le=24 * 7, description="An e-mail link expires after this.")
    leaks_citizen_lookups_per_hour: int = Field(default=30, ge=1, le=10000,
                                                description="'Check my data' lookups per citizen and hour.")
    leaks_otp_starts_per_hour: int = Field(default=5, ge=1, le=1000, description="Verification codes or links a "
                                           "citizen may request per hour (and one phone or e-mail may receive).")
    # --- leak register: operators screening blinded identifiers (qorgau/leaks/screening.py) ---
    leaks_screen_batch_max: int = Field(default=1_000, ge=1, le=65_536,
                                        description="Blinded elements per evaluate call and tokens per match call.")
    leaks_screen_evaluate_per_day: int = Field(
        default=100_000, ge=1, description="OPRF evaluations per API key (or user) and day: the barrier against "
                                           "enumerating IINs through the screening API.")
    leaks_screen_evaluate_burst: int = Field(default=10_000, ge=1, description="Evaluations allowed at once.")
    leaks_screen_match_per_day: int = Field(default=2_000_000, ge=1, description="Tokens matched per key and day.")
    leaks_screen_match_burst: int = Field(default=200_000, ge=1, description="Tokens matched at once.")
    # --- AI content labels (qorgau/provenance/, issue 9) ---
    labels_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024,
                                  description="Largest file qorgau labels or verifies (bytes).")
    labels_trust_anchors: Path | None = Field(
        default=None, description="PEM bundle of root certificates whose labels count as trusted (e.g. the national "
                                  "CA or the C2PA trust list). Added to the local test CA unless that is turned off.")
    labels_trust_local_test_ca: bool = Field(
        default=True, description="Trust labels signed under this installation's LOCAL TEST CA (the embedded "
                                  "default). Turn off in production once operators sign with real certificates.")
    labels_verify_per_hour: int = Field(default=120, ge=1, le=1_000_000,
                                        description="Files one client address may verify per hour on the public "
                                                    "verify page and API.")
    labels_thumbnail: bool = Field(default=False, description="Embed a C2PA thumbnail in labeled images (costs a "
                                                             "JPEG encode per image).")

    @field_validator("scan_roots", "rules_extra_dirs", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part for part in text.split(os.pathsep) if part.strip()]
        return value

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
