"""A small HTTP client for processing code: ask the decision point before touching a person's data.

::

    from qorgau.client import Client, Subject, ConsentDenied

    qorgau = Client("https://qorgau.bank.kz", api_key="qk_…")

    # 1. ask
    decision = qorgau.check(Subject.pseudonym("ps_…"), "marketing.sms", ["PHONE_NUMBER"])

    # 2. a block that runs only when allowed (ConsentDenied is raised *before* the body)
    with qorgau.processing(Subject.pseudonym(row.pseudonym), "marketing.sms"):
        send_sms(row)

    # 3. a function that runs only when allowed
    @qorgau.requires_consent(purpose="credit.scoring", subject=lambda customer, **_: Subject.pseudonym(customer.pseudonym))
    def score(customer): ...

    # 4. an AI decision about a person that takes effect only when a human approves (qorgau.client.oversight)
    @qorgau.require_human_approval(decision_type="credit_limit", system="scoring-v2")
    def propose_limit(application) -> Proposal: ...
    result = propose_limit(application).wait(timeout=3600)

**No caching, on purpose.** Every call asks the server, which reads the committed state: once a withdrawal
has returned, the next check anywhere denies (the decision point is linearizable with withdrawal, see
``docs/consent.md``). A client-side cache would re-open the window the server closes, so there is none;
use the HTTP connection pool (this client keeps connections alive) for speed. Everything fails closed:
a network error, a timeout or a server error raises (:class:`ConsentCheckFailed`) instead of allowing.

Identifiers travel in the request body only (never in URLs, which end up in access logs), and nothing in
this module prints or logs a subject: ``repr`` of :class:`Subject` and the messages of the exceptions hold
the purpose and the reason, never who.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx

__all__ = ["Client", "ConsentCheckFailed", "ConsentDenied", "Decision", "DecisionHandle", "DecisionResult",
           "DecisionSubmitFailed", "DecisionTimeout", "Factor", "OversightError", "OversightUnavailable", "Proposal",
           "Subject", "WebhookRejected", "configure", "default_client", "processing", "read_webhook",
           "require_human_approval", "requires_consent", "verify_webhook"]

F = TypeVar("F", bound=Callable[..., Any])
CHECK_PATH = "/api/v1/consent/check"


@dataclass(frozen=True)
class Subject:
    """Who: a vault pseudonym, or an identifier (type + value). ``repr`` never shows either."""

    pseudonym_value: str | None = None
    identifier_type: str | None = None
    identifier: str | None = None
    domain: str = "default"

    @classmethod
    def pseudonym(cls, value: str, domain: str = "default") -> "Subject":
        return cls(pseudonym_value=value, domain=domain)

    @classmethod
    def iin(cls, value: str) -> "Subject":
        return cls(identifier_type="KZ_IIN", identifier=value)

    @classmethod
    def phone(cls, value: str) -> "Subject":
        return cls(identifier_type="PHONE_NUMBER", identifier=value)

    def to_json(self) -> dict[str, str]:
        if self.pseudonym_value is not None:
            return {"pseudonym": self.pseudonym_value, "domain": self.domain}
        if not self.identifier_type or not self.identifier:
            raise ValueError("a Subject is a pseudonym or an identifier type and value")
        return {"identifier_type": self.identifier_type, "identifier": self.identifier, "domain": self.domain}

    def __repr__(self) -> str:
        kind = "pseudonym" if self.pseudonym_value is not None else self.identifier_type
        return f"Subject({kind}=<hidden>)"

    __str__ = __repr__


def _subject(value: Any) -> Subject:
    if isinstance(value, Subject):
        return value
    if isinstance(value, str) and value.startswith("ps_"):
        return Subject.pseudonym(value)
    raise TypeError("subject must be a qorgau.client.Subject or a pseudonym string 'ps_…'")


@dataclass(frozen=True)
class Decision:
    allow: bool
    basis: str | None
    consent_id: int | None
    legal_basis_id: int | None
    reason: str
    checked_at: datetime

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Decision":
        return cls(bool(doc["allow"]), doc.get("basis"), doc.get("consent_id"), doc.get("legal_basis_id"),
                   str(doc["reason"]), datetime.fromisoformat(doc["checked_at"]))


class ConsentDenied(PermissionError):
    """The decision point said no. ``decision`` says why (``reason``: withdrawn, expired, no_consent…)."""

    def __init__(self, purpose: str, decision: Decision) -> None:
        super().__init__(f"processing for '{purpose}' is not allowed: {decision.reason}")
        self.purpose = purpose
        self.decision = decision


class ConsentCheckFailed(RuntimeError):
    """The check could not be made (network, timeout, server or input error). Fail closed: don't process.
    ``status`` is the HTTP status when there was one; ``code``/``field`` come from the server's error body."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


class Client:
    """The decision point over HTTP. Thread-safe (one ``httpx.Client`` with a connection pool)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_key:
            raise ValueError("an API key is required (qorgau keys create …)")
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}", "User-Agent": "qorgau-client"})

    def __repr__(self) -> str:
        return f"Client(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, subject: Subject | str, purpose: str, data_categories: Sequence[str] = (),
              at: datetime | None = None) -> Decision:
        """Ask once. Raises :class:`ConsentCheckFailed` when no answer could be had (never allows then)."""
        body: dict[str, Any] = {"subject": _subject(subject).to_json(), "purpose": purpose,
                                "data_categories": list(data_categories)}
        if at is not None:
            body["at"] = at.isoformat()
        try:
            response = self._http.post(CHECK_PATH, json=body)
        except httpx.HTTPError as exc:
            raise ConsentCheckFailed(f"the decision point could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {}
            raise ConsentCheckFailed(f"the decision point refused the check: {error.get('message') or response.status_code}",
                                     status=response.status_code, code=error.get("code"), field=error.get("field"))
        try:
            return Decision.from_json(response.json())
        except (ValueError, KeyError, TypeError):
            raise ConsentCheckFailed("the decision point answered with something that is not a decision",
                                     status=response.status_code) from None

    def require(self, subject: Subject | str, purpose: str, data_categories: Sequence[str] = ()) -> Decision:
        """Check and raise :class:`ConsentDenied` unless allowed."""
        decision = self.check(subject, purpose, data_categories)
        if not decision.allow:
            raise ConsentDenied(purpose, decision)
        return decision

    @contextlib.contextmanager
    def processing(self, subject: Subject | str, purpose: str, data_categories: Sequence[str] = ()) -> Iterator[Decision]:
        """``with client.processing(subject, purpose):`` — the body runs only if allowed (the check is made,
        and :class:`ConsentDenied` raised, before it starts)."""
        yield self.require(subject, purpose, data_categories)

    def requires_consent(self, *, purpose: str, subject: Callable[..., Subject | str],
                         data_categories: Sequence[str] = ()) -> Callable[[F], F]:
        """Decorator: ``subject(*args, **kwargs)`` picks the subject from the call's arguments; the function
        runs only when the decision point allows (checked on every call)."""
        return requires_consent(purpose=purpose, subject=subject, data_categories=data_categories, client=self)

    # --- AI decisions held for human approval (qorgau.client.oversight) ---

    def submit_decision(self, proposal: "Proposal", *, decision_type: str | None = None,
                        system: str | None = None) -> "DecisionHandle":
        """Submit a proposed decision; returns a handle to poll or wait on (nothing takes effect yet)."""
        from .oversight import submit

        return submit(self, proposal, decision_type=decision_type, system=system)

    def decision(self, decision_id: int) -> "DecisionHandle":
        """A handle on a decision submitted earlier."""
        from .oversight import decision

        return decision(self, decision_id)

    def require_human_approval(self, *, decision_type: str, system: str) -> Callable[[F], F]:
        """Decorator: the function returns a :class:`Proposal`, each call submits it and returns a
        :class:`DecisionHandle` (see :func:`require_human_approval`)."""
        from .oversight import require_human_approval

        return require_human_approval(decision_type=decision_type, system=system, client=self)  # type: ignore[return-value]


_DEFAULT: Client | None = None


def configure(base_url: str | None = None, api_key: str | None = None, **kwargs: Any) -> Client:
    """Set the module-level client (``QORGAU_URL`` / ``QORGAU_API_KEY`` when not given)."""
    global _DEFAULT
    base_url = base_url or os.environ.get("QORGAU_URL")
    api_key = api_key or os.environ.get("QORGAU_API_KEY")
    if not base_url or not api_key:
        raise ValueError("give base_url and api_key, or set QORGAU_URL and QORGAU_API_KEY")
    if _DEFAULT is not None:
        _DEFAULT.close()
    _DEFAULT = Client(base_url, api_key, **kwargs)
    return _DEFAULT


def default_client() -> Client:
    return _DEFAULT if _DEFAULT is not None else configure()


def processing(subject: Subject | str, purpose: str, data_categories: Sequence[str] = ()) -> Any:
    """:meth:`Client.processing` on the module-level client."""
    return default_client().processing(subject, purpose, data_categories)


def requires_consent(*, purpose: str, subject: Callable[..., Subject | str], data_categories: Sequence[str] = (),
                     client: Client | None = None) -> Callable[[F], F]:
    """``@requires_consent(purpose="marketing.sms", subject=lambda customer, **_: customer.pseudonym)``.

    Works on plain functions and on ``async def`` ones (the check itself is a blocking HTTP call made in a
    worker thread, so the event loop is not blocked).
    """

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                import asyncio

                who = subject(*args, **kwargs)
                await asyncio.to_thread((client or default_client()).require, who, purpose, data_categories)
                return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            (client or default_client()).require(subject(*args, **kwargs), purpose, data_categories)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


from .oversight import (DecisionHandle, DecisionResult, DecisionSubmitFailed, DecisionTimeout,  # noqa: E402
                        Factor, OversightError, OversightUnavailable, Proposal, WebhookRejected, read_webhook,
                        require_human_approval, verify_webhook)
