"""Organizations (tenants), users with roles, web sessions and API keys.

Passwords are argon2id hashes. API keys and session tokens are 256-bit random secrets, so a plain
SHA-256 of them is a safe verifier (nothing to brute-force); only the hash is stored, and the secret
is shown once. Every object here prints without secrets or personal data.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint, false, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..identifiers import IdentifierError, parse_bin
from . import audit
from .db import Base, TenantScoped, utcnow
from .errors import AuthenticationRequired, Conflict, InvalidInput, NotFound, PermissionDenied
from .settings import LANGUAGES


class Role(str, enum.Enum):
    ADMIN = "admin"
    DPO = "dpo"
    REVIEWER = "reviewer"
    REGULATOR = "regulator"
    CITIZEN = "citizen"


ROLE_NAMES = [r.value for r in Role]
FAST_HASHING_VARIABLE = "QORGAU_TEST_FAST_PASSWORD_HASHING"


def _make_hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: t=3, 64 MiB, p=4).

    The test suite sets ``QORGAU_TEST_FAST_PASSWORD_HASHING=1`` (tests/conftest.py) for minimal parameters:
    still real Argon2id through the same code, ~100x cheaper, so thousands of test users don't spend the
    suite's time in key stretching. A hash records its own parameters, so verification works across the two;
    a login under the default profile rehashes a weak hash. Never set it for a real deployment: the process
    logs a warning at startup when it is on (:func:`warn_if_fast_hashing`).
    """
    if FAST_HASHING:
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


FAST_HASHING = os.environ.get(FAST_HASHING_VARIABLE) == "1"
_hasher = _make_hasher()
MIN_PASSWORD_LENGTH = 10


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    bin: Mapped[str] = mapped_column(String(12), unique=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The authorized body (the regulator) rather than an operator. Its users and keys with the ``regulator`` role
    # act across organizations (trusted lists, sandbox decisions, the national registers). Only the platform's
    # administrator sets it (``qorgau orgs create --authority`` / ``orgs authority``): an operator that grants its
    # own staff the regulator role gets nothing beyond its own organization.
    is_authority: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Organization(id={self.id}, demo={self.is_demo}, authority={self.is_authority})"


class User(TenantScoped, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str | None] = mapped_column(String(2))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        # display_name is a person's name: never printed.
        return f"User(id={self.id}, org={self.organization_id}, roles={self.roles})"


class WebSession(TenantScoped, Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"WebSession(id={self.id}, user={self.user_id})"


class ApiKey(TenantScoped, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id}, prefix={self.prefix!r}, revoked={self.revoked_at is not None})"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (web/API) or an API key, always inside one organization."""

    kind: str  # "user" | "apikey" | "system"
    id: int
    organization_id: int
    roles: frozenset[str]
    language: str | None = None
    must_change_password: bool = False
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """How the audit log names this caller: an id, never a name."""
        return f"{self.kind}:{self.id}"

    def has_any(self, *roles: str | Role) -> bool:
        wanted = {r.value if isinstance(r, Role) else r for r in roles}
        return bool(self.roles & wanted)

    def require(self, *roles: str | Role) -> None:
        if not self.has_any(*roles):
            names = ", ".join(sorted(r.value if isinstance(r, Role) else r for r in roles))
            raise PermissionDenied(f"this action needs one of the roles: {names}")


SYSTEM_ACTOR = "system"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_roles(roles: list[str], field_name: str = "roles") -> list[str]:
    if not roles:
        raise InvalidInput("at least one role is required", field=field_name)
    unknown = sorted(set(roles) - set(ROLE_NAMES))
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ROLE_NAMES)}", field=field_name)
    return sorted(set(roles))


def validate_username(username: str) -> str:
    username = username.strip().lower()
    if not (3 <= len(username) <= 64) or not all(c.isalnum() or c in "._-" for c in username):
        raise InvalidInput("username must be 3–64 letters, digits, '.', '_' or '-'", field="username")
    return username


def validate_password(password: str, field_name: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters", field=field_name)
    if len(password) > 1024:
        raise InvalidInput("password is too long", field=field_name)
    return password


def new_one_time_password() -> str:
    return secrets.token_urlsafe(12)


# --- organizations -----------------------------------------------------------------------------


def create_organization(session: Session, *, name: str, bin: str, actor: str, is_demo: bool = False,
                        is_authority: bool = False) -> Organization:
    name = name.strip()
    if not name or len(name) > 300:
        raise InvalidInput("organization name must be 1–300 characters", field="name")
    try:
        parsed = parse_bin(bin)
    except IdentifierError as exc:
        raise InvalidInput(f"BIN is invalid: {exc.reason}", field="bin") from None
    if session.scalar(select(Organization.id).where(Organization.bin == parsed.value)) is not None:
        raise Conflict("an organization with this BIN already exists", field="bin")
    org = Organization(name=name, bin=parsed.value, is_demo=is_demo, is_authority=is_authority)
    session.add(org)
    session.flush()
    audit.record(session, actor=actor, action="organization.create", object_type="organization",
                 object_id=str(org.id), organization_id=org.id, details={"demo": is_demo, "authority": is_authority})
    return org


def set_authority(session: Session, organization_id: int, authority: bool, *, actor: str) -> Organization:
    """Make an organization the authorized body (the regulator), or an operator again. A platform
    administrator's act (the CLI), never an operator's: it is what lets ``regulator`` users act across
    organizations."""
    org = get_organization(session, organization_id)
    if org.is_authority != authority:
        org.is_authority = authority
        audit.record(session, actor=actor, action="organization.authority", object_type="organization",
                     object_id=str(org.id), organization_id=org.id, details={"authority": authority})
    return org


def require_authority(session: Session, principal_or_org: "Principal | int") -> None:
    """Refuse a cross-organization regulator action unless the caller holds the ``regulator`` role in the
    authorized body (an organization registered as the authority)."""
    if isinstance(principal_or_org, Principal):
        if not principal_or_org.has_any(Role.REGULATOR):
            raise PermissionDenied("this action needs the role: regulator", field="actor")
        organization_id = principal_or_org.organization_id
    else:
        organization_id = principal_or_org
    is_authority = session.execute(select(Organization.is_authority).where(Organization.id == organization_id)
                                   .execution_options(qorgau_cross_tenant=True)).scalar()
    if not is_authority:
        raise PermissionDenied("only the authorized body acts across organizations: this organization is not "
                               "registered as the regulator", field="organization")


def get_organization(session: Session, organization_id: int) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization not found", field="organization_id")
    return org


def find_organization_by_bin(session: Session, bin: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.bin == bin.strip()))


def list_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.id)))


# --- users -------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    organization_id: int,
    username: str,
    display_name: str,
    roles: list[str],
    actor: str,
    password: str | None = None,
    language: str | None = None,
) -> tuple[User, str | None]:
    """Create a user. Without ``password`` a one-time password is generated and returned once;
    the user must change it at first login."""
    username = validate_username(username)
    roles = validate_roles(roles)
    display_name = display_name.strip()
    if not display_name or len(display_name) > 200:
        raise InvalidInput("display name must be 1–200 characters", field="display_name")
    if language is not None and language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    if session.scalar(
        select(User.id).where(User.username == username).execution_options(qorgau_cross_tenant=True)
    ) is not None:
        raise Conflict("this username is taken", field="username")
    one_time = None
    if password is None:
        one_time = password = new_one_time_password()
    else:
        validate_password(password)
    user = User(
        organization_id=organization_id,
        username=username,
        display_name=display_name,
        password_hash=_hasher.hash(password),
        roles=roles,
        language=language,
        must_change_password=one_time is not None,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", object_type="user", object_id=str(user.id),
                 organization_id=organization_id, details={"roles": roles})
    return user, one_time


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    # session.get may hit the identity map; re-check the tenant explicitly.
    tenant = session.info.get("qorgau_tenant")
    if user is None or (tenant is not None and user.organization_id != tenant):
        raise NotFound("user not found", field="user_id")
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound("no user with this username", field="username")
    return user


def reset_password(session: Session, user: User, *, actor: str) -> str:
    """Issue a new one-time password (shown once) and end the user's web sessions."""
    password = new_one_time_password()
    user.password_hash = _hasher.hash(password)
    user.must_change_password = True
    for web in session.scalars(select(WebSession).where(WebSession.user_id == user.id)):
        session.delete(web)
    audit.record(session, actor=actor, action="user.password_reset", object_type="user",
                 object_id=str(user.id), organization_id=user.organization_id)
    return password


def set_password(session: Session, user: User, new_password: str, *, actor: str) -> None:
    validate_password(new_password, "new_password")
    user.password_hash = _hasher.hash(new_password)
    user.must_change_password = False
    audit.record(session, actor=actor, action="user.password_change", object_type="user",
                 object_id=str(user.id), organization_id=user.organization_id)


def change_password(session: Session, user_id: int, old_password: str, new_password: str) -> None:
    user = get_user(session, user_id)
    if not _verify(user.password_hash, old_password):
        raise InvalidInput("current password is wrong", field="old_password")
    if old_password == new_password:
        raise InvalidInput("the new password must differ from the current one", field="new_password")
    set_password(session, user, new_password, actor=f"user:{user.id}")


def set_language(session: Session, user_id: int, language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    user = get_user(session, user_id)
    if user.language != language:
        user.language = language
        audit.record(session, actor=f"user:{user.id}", action="user.language", object_type="user",
                     object_id=str(user.id), organization_id=user.organization_id, details={"language": language})


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def warn_if_fast_hashing() -> None:
    """Called when a server starts: say loudly that test-only password hashing is on."""
    if FAST_HASHING:
        logging.getLogger(__name__).warning("%s=1: weak password hashing meant for tests; never use it in "
                                            "production", FAST_HASHING_VARIABLE)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("qorgau-timing-equalizer")


def authenticate_password(session: Session, username: str, password: str) -> User:
    """Check a login. Unknown users cost the same argon2 work as wrong passwords (no user enumeration)."""
    user = session.scalar(
        select(User).where(User.username == username.strip().lower()).execution_options(qorgau_cross_tenant=True)
    )
    if user is None or not user.is_active:
        _verify(_dummy_hash(), password)
        raise AuthenticationRequired("wrong username or password", field="username")
    if not _verify(user.password_hash, password):
        audit.record(session, actor=f"user:{user.id}", action="auth.login_failed", object_type="user",
                     object_id=str(user.id), organization_id=user.organization_id)
        raise AuthenticationRequired("wrong username or password", field="username")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


# --- web sessions ------------------------------------------------------------------------------


def open_session(session: Session, user: User, hours: int) -> str:
    """Start a web session; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(
        organization_id=user.organization_id,
        token_hash=_sha256(token),
        csrf_token=secrets.token_urlsafe(32),
        user_id=user.id,
        expires_at=utcnow() + timedelta(hours=hours),
    ))
    audit.record(session, actor=f"user:{user.id}", action="auth.login", object_type="user",
                 object_id=str(user.id), organization_id=user.organization_id)
    return token


def resolve_session(session: Session, token: str) -> Principal:
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha256(token))
        .execution_options(qorgau_cross_tenant=True)
    ).first()
    if row is None:
        raise AuthenticationRequired("session expired; please log in again")
    web, user = row
    if web.expires_at <= utcnow() or not user.is_active:
        raise AuthenticationRequired("session expired; please log in again")
    return Principal("user", user.id, user.organization_id, frozenset(user.roles), user.language,
                     user.must_change_password, web.csrf_token)


def close_session(session: Session, token: str) -> None:
    web = session.scalar(
        select(WebSession).where(WebSession.token_hash == _sha256(token)).execution_options(qorgau_cross_tenant=True)
    )
    if web is not None:
        session.delete(web)
        audit.record(session, actor=f"user:{web.user_id}", action="auth.logout", object_type="user",
                     object_id=str(web.user_id), organization_id=web.organization_id)


def purge_expired_sessions(session: Session) -> int:
    rows = session.scalars(
        select(WebSession).where(WebSession.expires_at <= utcnow()).execution_options(qorgau_cross_tenant=True)
    ).all()
    for row in rows:
        session.delete(row)
    return len(rows)


# --- API keys ----------------------------------------------------------------------------------

API_KEY_PREFIX = "qk_"


def create_api_key(
    session: Session, *, organization_id: int, name: str, roles: list[str], actor: str
) -> tuple[ApiKey, str]:
    """Create an API key; the returned secret is shown once and never stored."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("key name must be 1–200 characters", field="name")
    roles = validate_roles(roles)
    if Role.CITIZEN.value in roles:
        raise InvalidInput("API keys cannot carry the citizen role", field="roles")
    prefix = "k" + secrets.token_hex(5)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(organization_id=organization_id, name=name, prefix=prefix, secret_hash=_sha256(secret),
                 roles=roles, created_by=actor)
    session.add(key)
    session.flush()
    audit.record(session, actor=actor, action="api_key.create", object_type="api_key", object_id=str(key.id),
                 organization_id=organization_id, details={"roles": roles, "prefix": prefix})
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def get_api_key(session: Session, key_id: int) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key not found", field="key_id")
    return key


def revoke_api_key(session: Session, key_id: int, *, actor: str) -> ApiKey:
    key = get_api_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session, actor=actor, action="api_key.revoke", object_type="api_key", object_id=str(key.id),
                     organization_id=key.organization_id)
    return key


def resolve_api_key(session: Session, presented: str) -> Principal:
    if not presented.startswith(API_KEY_PREFIX) or presented.count("_") < 2:
        raise AuthenticationRequired("malformed API key")
    prefix, _, secret = presented[len(API_KEY_PREFIX):].partition("_")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix).execution_options(qorgau_cross_tenant=True))
    if key is None or not hmac.compare_digest(key.secret_hash, _sha256(secret)):
        raise AuthenticationRequired("unknown API key")
    if key.revoked_at is not None:
        raise AuthenticationRequired("this API key was revoked")
    return Principal("apikey", key.id, key.organization_id, frozenset(key.roles))


TOUCH_INTERVAL = timedelta(minutes=1)


def touch_api_key(session: Session, key_id: int) -> None:
    """Record that a key was used, at most once a minute (so reads don't turn into writes)."""
    now = utcnow()
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id,
               (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - TOUCH_INTERVAL))
        .values(last_used_at=now)
        .execution_options(qorgau_cross_tenant=True)
    )


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id)).execution_options(qorgau_cross_tenant=True)) or 0


def public_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "username": user.username, "display_name": user.display_name, "roles": user.roles,
        "language": user.language, "must_change_password": user.must_change_password, "is_active": user.is_active,
        "created_at": user.created_at, "last_login_at": user.last_login_at,
    }
