"""Screen your customers against the leak register without revealing them (issue 8; L-PD-LEAK-REGISTER).

::

    from qorgau.client.leaks import ScreeningClient

    with ScreeningClient("https://qorgau.gov.kz", api_key="qk_…") as client:
        report = client.screen_file("customers.csv", kind="auto", column="phone")
    for result in report.found:
        print(result.line, [i["reference"] for i in result.incidents])

What leaves this process: blinded ristretto255 elements (uniformly random to the server) and 32-byte index tokens
(pseudorandom values of the register's keyed PRF). Never an identifier. Steps, per batch of at most the server's
``max_batch``:

1. ``GET /api/v1/leaks/screening/key`` once: the register's VOPRF public key (or the one you pin with
   ``public_key=``: then a register that changed keys is refused);
2. normalize each identifier (:func:`qorgau.leaks.register.normalize`; invalid ones are reported by line and
   never sent), drop duplicates, blind ``"kind:value"`` (RFC 9497 VOPRF);
3. ``POST …/evaluate``; **verify the DLEQ proof** against the public key (a wrong key or a tampered element
   raises :class:`qorgau.leaks.oprf.ProofInvalid` — nothing is matched then), unblind, keep the first 32 bytes;
4. ``POST …/match``: the tokens that appear in incidents this operator may see.

Everything fails loudly: an HTTP error raises :class:`ScreeningFailed` (``retry_after_seconds`` set on 429).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..core.errors import InvalidInput, QorgauError
from ..leaks import oprf
from ..leaks.register import KINDS, index_token, normalize

__all__ = ["ScreenReport", "ScreenResult", "ScreeningClient", "ScreeningFailed", "detect_kind", "read_identifiers"]

KIND_CHOICES = (*KINDS, "auto")


class ScreeningFailed(QorgauError):
    """The register refused a request or could not be reached; ``status`` is the HTTP status (0: no answer)."""

    code = "screening_failed"

    def __init__(self, message: str, *, status: int = 0, field: str | None = None, remote_code: str | None = None,
                 retry_after_seconds: int | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.remote_code = remote_code
        self.retry_after_seconds = retry_after_seconds


@dataclass(slots=True)
class ScreenResult:
    """One input line: ``status`` is ``found``, ``not_found`` or ``invalid``. ``value`` is the normalized identifier,
    kept in memory for the caller only (the report prints it only when asked to)."""

    line: int
    kind: str | None
    status: str
    incidents: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    value: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class ScreenReport:
    results: list[ScreenResult]
    evaluated: int = 0  # distinct identifiers sent blinded (what the evaluation budget was charged)

    @property
    def found(self) -> list[ScreenResult]:
        return [r for r in self.results if r.status == "found"]

    @property
    def invalid(self) -> list[ScreenResult]:
        return [r for r in self.results if r.status == "invalid"]

    def summary(self) -> dict[str, int]:
        return {"lines": len(self.results), "found": len(self.found), "invalid": len(self.invalid),
                "not_found": sum(1 for r in self.results if r.status == "not_found"), "evaluated": self.evaluated}

    def to_csv(self, *, include_values: bool = False) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["line", "kind", "status", "incidents", "operators", "error"] +
                        (["value"] if include_values else []))
        for r in self.results:
            writer.writerow([r.line, r.kind or "", r.status, ";".join(i["reference"] for i in r.incidents),
                             ";".join(sorted({i["operator"] for i in r.incidents})), r.error or ""] +
                            ([r.value or ""] if include_values else []))
        return buffer.getvalue()

    def to_json(self, *, include_values: bool = False) -> dict[str, Any]:
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"line": r.line, "kind": r.kind, "status": r.status, "incidents": r.incidents}
            if r.error:
                row["error"] = r.error
            if include_values:
                row["value"] = r.value
            rows.append(row)
        return {"summary": self.summary(), "results": rows}


def detect_kind(raw: str) -> str | None:
    """``email`` if it has an ``@``; ``iin`` if it is a valid IIN; else ``phone`` if it is a valid phone number."""
    value = raw.strip()
    if "@" in value:
        return "email"
    for kind in ("iin", "phone"):
        try:
            normalize(kind, value)
            return kind
        except InvalidInput:
            continue
    return None


def read_identifiers(path: str | Path, *, column: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, raw value)`` from a text file (one identifier a line) or a CSV file (``column``; a CSV of
    one column needs none). Blank lines are skipped; undecodable bytes become U+FFFD (then invalid)."""
    path = Path(path)
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        if column is None and path.suffix.lower() != ".csv":
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.strip()
            return
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        if column is None:
            if len(names) != 1:
                raise InvalidInput("this CSV file has several columns: name one with --column", field="column")
            position = 0
        elif column in names:
            position = names.index(column)
        else:
            raise InvalidInput("the CSV header has no such column", field="column")
        for row in reader:
            value = row[position].strip() if position < len(row) else ""
            if value:
                yield reader.line_num, value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, field_name: str) -> bytes:
    if not isinstance(value, str):
        raise ScreeningFailed("the register's answer is malformed", field=field_name)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise ScreeningFailed("the register's answer is malformed", field=field_name) from None


class ScreeningClient:
    """The client side of blinded screening; ``public_key`` (32 bytes) pins the register's key."""

    def __init__(self, base_url: str, api_key: str, *, public_key: bytes | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_key or not api_key.strip():
            raise InvalidInput("an API key is required", field="api_key")
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key.strip()}"})
        self._pinned = public_key
        self._voprf: oprf.VoprfClient | None = None
        self.max_batch = 1000
        self.key_version: int | None = None

    def __repr__(self) -> str:
        return f"ScreeningClient(base_url={str(self._http.base_url)!r})"

    def __enter__(self) -> ScreeningClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- HTTP ----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, f"/api/v1/leaks/screening/{path}", json=body)
        except httpx.HTTPError as exc:
            raise ScreeningFailed(f"the register could not be reached ({type(exc).__name__})") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            retry = response.headers.get("retry-after")
            raise ScreeningFailed(f"the register answered {response.status_code}: "
                                  f"{error.get('message') or 'no details'}", status=response.status_code,
                                  field=error.get("field"), remote_code=error.get("code"),
                                  retry_after_seconds=int(retry) if retry and retry.isdigit() else None)
        if not isinstance(payload, dict):
            raise ScreeningFailed("the register's answer is not a JSON object", status=response.status_code)
        return payload

    def key(self) -> oprf.VoprfClient:
        """Fetch the register's public key once (checked against the pinned one, if any)."""
        if self._voprf is None:
            info = self._call("GET", "key")
            if info.get("suite") != oprf.SUITE or info.get("mode") != "VOPRF":
                raise ScreeningFailed("the register uses another OPRF suite or mode", field="suite")
            public_key = _unb64(info.get("public_key"), "public_key")
            if self._pinned is not None and public_key != self._pinned:
                raise oprf.ProofInvalid("the register's public key is not the pinned one", field="public_key")
            self._voprf = oprf.VoprfClient(self._pinned or public_key)
            batch = info.get("max_batch")
            self.max_batch = batch if isinstance(batch, int) and batch > 0 else self.max_batch
            self.key_version = info.get("key_version")
        return self._voprf

    def tokens(self, kind: str, normalized: Sequence[str]) -> list[bytes]:
        """Index tokens of normalized identifiers of one kind, by blinded evaluation (verified), in order."""
        client = self.key()
        out: list[bytes] = []
        for start in range(0, len(normalized), self.max_batch):
            chunk = normalized[start:start + self.max_batch]
            blinded = client.blind_batch([oprf.token_input(kind, v) for v in chunk])
            answer = self._call("POST", "evaluate", {"blinded": [_b64(b.blinded_element) for b in blinded]})
            evaluated = answer.get("evaluated")
            if not isinstance(evaluated, list) or len(evaluated) != len(blinded):
                raise ScreeningFailed("the register returned the wrong number of elements", field="evaluated")
            elements = [_unb64(e, "evaluated") for e in evaluated]
            proof = _unb64(answer.get("proof"), "proof")
            try:
                outputs = client.finalize_batch(blinded, elements, proof)  # raises ProofInvalid
            except oprf.ProofInvalid:
                raise
            except InvalidInput:  # a malformed element from the server is as bad as a wrong proof
                raise oprf.ProofInvalid("the register returned an invalid element", field="evaluated") from None
            out.extend(index_token(o) for o in outputs)
        return out

    def match(self, tokens: Sequence[bytes]) -> dict[int, list[dict[str, Any]]]:
        """``{position: incidents}`` for the tokens that appear in incidents this operator may see."""
        self.key()
        found: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(tokens), self.max_batch):
            chunk = tokens[start:start + self.max_batch]
            answer = self._call("POST", "match", {"tokens": [_b64(t) for t in chunk]})
            matches = answer.get("matches")
            if not isinstance(matches, list):
                raise ScreeningFailed("the register's answer is malformed", field="matches")
            for item in matches:
                index = item.get("index") if isinstance(item, dict) else None
                if not isinstance(index, int) or not 0 <= index < len(chunk):
                    raise ScreeningFailed("the register's answer is malformed", field="matches")
                found[start + index] = list(item.get("incidents") or [])
        return found

    # --- screening -----------------------------------------------------------------------------------

    def screen(self, items: Iterable[tuple[int, str]], kind: str = "auto",
               progress: Callable[[int, int], None] | None = None) -> ScreenReport:
        """Screen ``(line, raw value)`` pairs; ``progress(done, total)`` after each batch of distinct identifiers."""
        if kind not in KIND_CHOICES:
            raise InvalidInput(f"kind must be one of {', '.join(KIND_CHOICES)}", field="kind")
        results: list[ScreenResult] = []
        distinct: dict[tuple[str, str], list[ScreenResult]] = {}
        for line, raw in items:
            value_kind = detect_kind(raw) if kind == "auto" else kind
            if value_kind is None:
                results.append(ScreenResult(line, None, "invalid", error="not an IIN, phone number or email"))
                continue
            try:
                value = normalize(value_kind, raw, field=f"line {line}")
            except InvalidInput as exc:
                results.append(ScreenResult(line, value_kind, "invalid", error=exc.message))
                continue
            result = ScreenResult(line, value_kind, "not_found", value=value)
            results.append(result)
            distinct.setdefault((value_kind, value), []).append(result)
        keys = list(distinct)
        total, done = len(keys), 0
        self.key()
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            by_kind.setdefault(key[0], []).append(key)
        for value_kind, group in by_kind.items():
            for start in range(0, len(group), self.max_batch):
                chunk = group[start:start + self.max_batch]
                tokens = self.tokens(value_kind, [v for _, v in chunk])
                for position, incidents in self.match(tokens).items():
                    for result in distinct[chunk[position]]:
                        result.status, result.incidents = "found", incidents
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        return ScreenReport(results=results, evaluated=total)

    def screen_values(self, values: Sequence[str], kind: str = "auto") -> ScreenReport:
        """Screen a list of raw identifiers; ``line`` in the results is the 1-based position."""
        return self.screen(((i, v) for i, v in enumerate(values, start=1)), kind)

    def screen_file(self, path: str | Path, *, kind: str = "auto", column: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> ScreenReport:
        return self.screen(list(read_identifiers(path, column=column)), kind, progress)
