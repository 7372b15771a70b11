"""AI decisions held for human approval, from the AI service's side (L-PD-AUTO, L-AI-DECISION).

::

    from qorgau.client import Client, Factor, Proposal, Subject, require_human_approval

    qorgau = Client("https://qorgau.bank.kz", api_key="qk_…")

    @require_human_approval(decision_type="credit_limit", system="scoring-v2", client=qorgau)
    def propose_limit(application) -> Proposal:
        score = model.predict(application)
        return Proposal(subject=Subject.pseudonym(application.pseudonym), outcome=score.limit,
                        factors=[Factor("income", 0.6, "Monthly income"), Factor("arrears", -0.3)],
                        model_version="scoring-2.4.1", confidence=score.confidence,
                        idempotency_key=f"application-{application.id}")

    handle = propose_limit(application)      # submitted; nothing is applied yet
    result = handle.wait(timeout=3600)        # a human approves, amends or rejects
    if result.effective:
        apply_limit(application, result.outcome)

**Fails closed.** The decorated function's result is a *proposal*: it never takes effect by itself. A
network error, a timeout or a server error raises (:class:`OversightUnavailable`) — never "approved"; a
refused submission raises :class:`DecisionSubmitFailed` naming the field. ``result.outcome`` is ``None``
unless the decision is effective, so a rejected, refused or timed-out decision cannot be applied by
accident. ``handle.effective`` and ``handle.outcome`` ask the server every time (an objection can later
overturn an effective decision); ``handle.result`` is the last answer seen, without a request.

**Idempotency.** Give a key that names the business event (an application id): a retried call — of the
HTTP request or of the whole function — then returns the same decision instead of making a second one.
Without one the client makes a random key per call (its own retries of the request stay safe).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import inspect
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from . import Client, Subject

__all__ = ["DecisionHandle", "DecisionResult", "DecisionSubmitFailed", "DecisionTimeout", "Factor",
           "OversightError", "OversightUnavailable", "Proposal", "WebhookRejected", "read_webhook",
           "require_human_approval", "verify_webhook"]

DECISIONS_PATH = "/api/v1/decisions"
OPEN_STATUSES = frozenset({"pending", "escalated"})
F = TypeVar("F", bound=Callable[..., Any])


class OversightError(RuntimeError):
    """Base of this module's errors. ``status`` is the HTTP status when there was one; ``code`` and
    ``field`` come from the server's error body (``field`` names what was wrong, never its value)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


class OversightUnavailable(OversightError):
    """No answer could be had (network, timeout, server error). Fail closed: apply nothing."""


class DecisionSubmitFailed(OversightError):
    """The server refused the submission (bad input: ``field`` says which; unknown system; conflict)."""


class DecisionTimeout(OversightError, TimeoutError):
    """:meth:`DecisionHandle.wait` ran out of time while the decision was still open (not approved)."""


class WebhookRejected(OversightError):
    """A webhook whose signature does not verify (wrong secret, tampered body, or too old): ignore it."""


@dataclass(frozen=True)
class Factor:
    """A key factor the subject may learn (L-AI-DECISION): ``weight`` in [-1, 1], its sign the direction."""

    code: str
    weight: float
    label: str | None = None
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": self.code, "weight": self.weight}
        if self.label is not None:
            doc["label"] = self.label
        if self.value is not None:
            doc["value"] = self.value
        return doc


def _factor(value: Factor | Mapping[str, Any] | tuple[Any, ...]) -> dict[str, Any]:
    if isinstance(value, Factor):
        return value.to_json()
    if isinstance(value, Mapping):
        return Factor(**value).to_json()
    if isinstance(value, tuple):
        return Factor(*value).to_json()
    raise TypeError("a factor is a qorgau.client.Factor, a mapping or a (code, weight[, label]) tuple")


@dataclass(frozen=True)
class Proposal:
    """What an AI service proposes about a person; the decorated function returns one.

    ``decision_type`` / ``system`` override the decorator's. ``repr`` shows no subject and no values."""

    subject: "Subject | str"
    outcome: Any
    factors: Sequence[Factor | Mapping[str, Any] | tuple[Any, ...]]
    model_version: str
    confidence: float | None = None
    legal_effect: bool | None = None
    input_ref: str | None = None
    idempotency_key: str | None = None
    decision_type: str | None = None
    system: str | None = None

    def __repr__(self) -> str:
        return (f"Proposal(decision_type={self.decision_type!r}, model_version={self.model_version!r}, "
                f"factors={len(self.factors)})")

    def body(self, *, decision_type: str | None, system: str | None) -> dict[str, Any]:
        from . import _subject

        decision_type = self.decision_type or decision_type
        system = self.system or system
        if not decision_type or not system:
            raise ValueError("a proposal needs a decision type and a system (from the decorator or the proposal)")
        doc: dict[str, Any] = {"system": system, "subject": _subject(self.subject).to_json(),
                               "decision_type": decision_type, "proposed_outcome": self.outcome,
                               "factors": [_factor(f) for f in self.factors], "model_version": self.model_version}
        for name in ("confidence", "legal_effect", "input_ref"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return doc


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class DecisionResult:
    """A decision as the server reported it (``GET /api/v1/decisions/{id}``); ``data`` is the whole JSON."""

    id: int
    status: str
    effective: bool
    path: str
    level: str
    version: int
    final_outcome: Any
    proposed_outcome: Any
    reason: str | None
    deadline_at: datetime | None
    decided_at: datetime | None
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "DecisionResult":
        return cls(id=int(doc["id"]), status=str(doc["status"]), effective=doc["effective"] is True,
                   path=str(doc["path"]), level=str(doc["level"]), version=int(doc["version"]),
                   final_outcome=doc.get("final_outcome"), proposed_outcome=doc.get("proposed_outcome"),
                   reason=doc.get("reason"), deadline_at=_when(doc.get("deadline_at")),
                   decided_at=_when(doc.get("decided_at")), data=doc)

    @property
    def final(self) -> bool:
        """A human (or policy, or the deadline) has settled it."""
        return self.status not in OPEN_STATUSES

    @property
    def outcome(self) -> Any:
        """The outcome to apply — ``None`` unless the decision is effective (fail closed)."""
        return self.final_outcome if self.effective else None


class DecisionHandle:
    """A submitted decision. ``created`` is False when the server recognized the idempotency key."""

    def __init__(self, client: "Client", result: DecisionResult, *, created: bool = True) -> None:
        self._client = client
        self.id = result.id
        self.created = created
        self.result = result

    def __repr__(self) -> str:
        return f"DecisionHandle(id={self.id}, status={self.result.status!r})"

    def refresh(self) -> DecisionResult:
        """Ask the server now (raises :class:`OversightUnavailable` when it cannot answer)."""
        response = _send(self._client, "GET", f"{DECISIONS_PATH}/{self.id}", unavailable=OversightUnavailable,
                         refused=OversightError)
        self.result = _result(response)
        return self.result

    def status(self) -> str:
        return self.refresh().status

    @property
    def effective(self) -> bool:
        return self.refresh().effective

    @property
    def outcome(self) -> Any:
        return self.refresh().outcome

    def wait(self, timeout: float | None = None, poll: float = 2.0) -> DecisionResult:
        """Poll until the decision is final and return it (effective or not — check ``.effective``).
        Raises :class:`DecisionTimeout` if it is still open after ``timeout`` seconds (None: wait forever)."""
        if poll <= 0:
            raise ValueError("poll must be positive")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.refresh()
            if result.final:
                return result
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DecisionTimeout(f"decision {self.id} is still {result.status} after {timeout} s",
                                          status=None, code="timeout")
                time.sleep(min(poll, left))
            else:
                time.sleep(poll)

    async def wait_async(self, timeout: float | None = None, poll: float = 2.0) -> DecisionResult:
        """:meth:`wait` without blocking the event loop."""
        return await asyncio.to_thread(self.wait, timeout, poll)


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json()["error"]
        return error if isinstance(error, dict) else {}
    except (ValueError, KeyError, TypeError):
        return {}


def _send(client: "Client", method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
          unavailable: type[OversightError], refused: type[OversightError], retries: int = 0) -> httpx.Response:
    """One request; connection errors retried ``retries`` times (only for idempotent requests)."""
    for attempt in range(retries + 1):
        try:
            response = client._http.request(method, path, json=json, headers=headers)  # noqa: SLF001
        except httpx.HTTPError as exc:
            if attempt < retries:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise unavailable(f"qorgau could not be reached ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            if attempt < retries:
                time.sleep(0.2 * (attempt + 1))
                continue
            error = _error_of(response)
            raise unavailable(f"qorgau could not answer: {error.get('message') or response.status_code}",
                              status=response.status_code, code=error.get("code"))
        if response.status_code >= 400:
            error = _error_of(response)
            where = f" [{error['field']}]" if error.get("field") else ""
            raise refused(f"qorgau refused the request{where}: {error.get('message') or response.status_code}",
                          status=response.status_code, code=error.get("code"), field=error.get("field"))
        return response
    raise AssertionError("unreachable")


def _result(response: httpx.Response) -> DecisionResult:
    try:
        return DecisionResult.from_json(response.json())
    except (ValueError, KeyError, TypeError):
        raise OversightUnavailable("qorgau answered with something that is not a decision",
                                   status=response.status_code) from None


def submit(client: "Client", proposal: Proposal, *, decision_type: str | None = None, system: str | None = None,
           retries: int = 2) -> DecisionHandle:
    """Submit a proposal; the idempotency key makes the request's own retries safe."""
    if not isinstance(proposal, Proposal):
        raise TypeError("a function guarded by require_human_approval must return a qorgau.client.Proposal")
    body = proposal.body(decision_type=decision_type, system=system)
    key = proposal.idempotency_key or f"qc-{uuid.uuid4().hex}"
    response = _send(client, "POST", DECISIONS_PATH, json=body, headers={"Idempotency-Key": key},
                     unavailable=OversightUnavailable, refused=DecisionSubmitFailed, retries=retries)
    return DecisionHandle(client, _result(response), created=response.status_code == 201)


def decision(client: "Client", decision_id: int) -> DecisionHandle:
    """A handle on a decision submitted earlier (e.g. by another process)."""
    response = _send(client, "GET", f"{DECISIONS_PATH}/{int(decision_id)}", unavailable=OversightUnavailable,
                     refused=OversightError)
    return DecisionHandle(client, _result(response), created=False)


def require_human_approval(*, decision_type: str, system: str, client: "Client | None" = None
                           ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@require_human_approval(decision_type="credit_limit", system="scoring-v2")``: the function returns a
    :class:`Proposal`; each call submits it and returns a :class:`DecisionHandle` to wait on. Works on
    ``async def`` functions too (the submission runs in a worker thread)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        def _client() -> "Client":
            from . import default_client

            return client or default_client()

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> DecisionHandle:
                proposal = await fn(*args, **kwargs)
                return await asyncio.to_thread(submit, _client(), proposal, decision_type=decision_type,
                                               system=system)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> DecisionHandle:
            return submit(_client(), fn(*args, **kwargs), decision_type=decision_type, system=system)

        return wrapper

    return decorate


# --- webhooks: what the AI service's receiver does ----------------------------------------------------------

SIGNATURE_HEADER = "Qorgau-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


def verify_webhook(secret: str, body: bytes, signature: str, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
                   now: float | None = None) -> bool:
    """Check a ``Qorgau-Signature`` header (``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>``; several
    ``v1`` during a secret rotation) against the *raw* request body, in constant time, and that it is at most
    ``tolerance`` seconds old (a replayed old delivery fails)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (signature or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, c) for c in candidates)


def read_webhook(secret: str, body: bytes, signature: str, *,
                 tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> tuple[str, DecisionResult]:
    """Verify a delivery and return ``(topic, decision)``; :class:`WebhookRejected` if it does not verify.
    Deduplicate on the ``Idempotency-Key`` header: a delivery may arrive more than once."""
    if not verify_webhook(secret, body, signature, tolerance=tolerance):
        raise WebhookRejected("the webhook's signature does not verify", code="bad_signature",
                              field=SIGNATURE_HEADER)
    try:
        doc = json.loads(body)
        return str(doc["topic"]), DecisionResult.from_json(doc["decision"])
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected("the webhook's body is not a decision", code="bad_body") from None
