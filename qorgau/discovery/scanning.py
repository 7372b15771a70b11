"""Scan sources: read chunks, find personal data in them, sum up per source — in one process or many.

``scan_paths`` is the service behind ``qorgau scan``: it opens every input (:mod:`.sources`), runs the
scanner over each chunk and yields one :class:`SourceResult` per source, in input order. With
``workers > 1`` chunks are read here and scanned by a process pool whose workers each build the
scanner once (an initializer), never per chunk; results come back in input order, with a bounded
number of batches in flight so memory stays flat on a 1 GB input.

Results keep findings by *place* (a line, a cell, a page, a record), never the scanned text. For the
HTML report a masked snippet can be kept per finding: the found value masked by its kind
(``identifiers.mask``) and every digit around it starred, so a report can be shared without leaking
what it reports (STYLE.md: personal data never leaks by accident).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..identifiers import mask
from .sources import DEFAULT_SAMPLE_ROWS, Chunk, Skipped, Source, SourceError, open_sources
from .types import Finding

BATCH_CHARS = 512 * 1024  # text per task sent to a worker: large enough to amortize pickling
BATCH_CHUNKS = 2000  # …or this many small chunks (cells), whichever comes first
IN_FLIGHT_PER_WORKER = 4  # batches queued per worker: keeps workers busy, memory bounded
SNIPPET_WIDTH = 40  # characters of context on each side of a finding in a snippet
MAX_SNIPPETS_PER_SOURCE = 200  # a report shows examples, not every finding: masking costs ~50 µs each

# Finding types that ``identifiers.mask`` knows how to mask, by the identifier kind it uses.
MASK_KIND = {"KZ_IIN": "KZ_IIN", "KZ_BIN": "KZ_BIN", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
             "IBAN_CODE": "IBAN", "CREDIT_CARD": "CARD", "KZ_PASSPORT": "KZ_PASSPORT", "KZ_ID_CARD": "KZ_ID_CARD"}


class TextScanner(Protocol):
    """What ``scan_paths`` needs from a scanner (``engine.Scanner`` has it)."""

    def scan(self, text: str, include_text: bool = False) -> list[Finding]: ...


ScannerFactory = Callable[[], TextScanner]


@dataclass(frozen=True)
class ScannerSpec:
    """A picklable recipe for the scanner, so each worker process builds its own once.

    ``entity_types``/``min_score`` are handed to the engine so it skips recognizers nobody asked for;
    ``allow``/``deny``/``custom`` are paths of the allow list, the deny list and custom recognizers (YAML).
    """

    identifiers_only: bool = False
    entity_types: tuple[str, ...] | None = None
    min_score: float | None = None
    allow: str | None = None
    deny: str | None = None
    custom: str | None = None

    def __call__(self) -> TextScanner:
        from .engine import Scanner
        from .recognizers import default_recognizers

        options: dict[str, Any] = {}
        if self.entity_types is not None:
            options["entity_types"] = self.entity_types
        if self.min_score is not None:
            options["min_score"] = self.min_score
        if self.allow is not None or self.deny is not None:
            from .lists import AllowList, DenyList

            if self.allow is not None:
                options["allow"] = AllowList.from_file(self.allow)
            if self.deny is not None:
                options["deny"] = DenyList.from_file(self.deny)
        recognizers = list(default_recognizers(include_nlp=not self.identifiers_only))
        if self.custom is not None:
            recognizers.extend(load_custom_recognizers(self.custom))
        return Scanner(recognizers, **options)


def load_custom_recognizers(path: str) -> list[Any]:
    """Custom recognizers from YAML (schema in :mod:`.custom`)."""
    from .custom import load_custom_recognizers as load

    return list(load(path))


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Findings at one place of a source: a line, a cell, a page, a JSON path, a record.

    Offsets of ``findings`` are into that place's text (a line, a cell, a record's text field).
    ``snippets`` (only when asked) are masked (before, value, after) triples aligned with ``findings``.
    """

    location: dict[str, Any]
    findings: tuple[Finding, ...]
    snippets: tuple[tuple[str, str, str], ...] = ()
    error: str | None = None


@dataclass
class SourceResult:
    """What one source held: findings by place, counts per type and category, how much was read."""

    source: str
    kind: str
    encoding: str | None = None
    places: list[Place] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    bytes_scanned: int = 0
    rows_scanned: int = 0
    chunks_scanned: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
    snippets_kept: int = 0

    @property
    def found(self) -> bool:
        return bool(self.counts)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """Increments since the last update (for a progress bar)."""

    source: str
    bytes: int
    rows: int
    finished: bool = False


# --- the service ------------------------------------------------------------------------------------


def scan_paths(paths: Iterable[str], scanner_factory: ScannerFactory, *, workers: int = 1,
               sample_rows: int = DEFAULT_SAMPLE_ROWS, text_field: str | None = None, id_field: str | None = None,
               types: Iterable[str] | None = None, min_score: float = 0.0, snippets: bool = False,
               on_place: Callable[[SourceResult, Place], None] | None = None,
               on_progress: Callable[[ProgressUpdate], None] | None = None) -> Iterator[SourceResult]:
    """Scan every input and yield one :class:`SourceResult` per source, in input order.

    ``paths``: files, directories (recursive; binaries skipped with a note), ``-`` for stdin, SQLAlchemy
    URLs (``sample_rows`` rows sampled per column). ``types``/``min_score`` filter findings.
    ``on_place``: when given, called with *every* place in input order, including places without
    findings (the JSON Lines contract writes one line per record this way), and ``places`` are not
    accumulated in the results — memory stays flat however large the input.
    """
    wanted = frozenset(types) if types else None
    events = _read_events(open_sources(paths, text_field=text_field, id_field=id_field, sample_rows=sample_rows))
    current: SourceResult | None = None
    last_row: Any = None
    started = 0.0
    for event in _scan_events(events, scanner_factory, workers):
        tag = event[0]
        if tag == "start":
            source: Source = event[1]
            current, last_row, started = SourceResult(source=source.name, kind=source.kind), None, time.perf_counter()
        elif tag == "chunk":
            assert current is not None
            chunk, outcome = event[1], event[2]
            nbytes, nrows, last_row = _measure(chunk, last_row)
            current.bytes_scanned += nbytes
            current.rows_scanned += nrows
            current.chunks_scanned += 1
            _collect(current, chunk, outcome, wanted, min_score, snippets, on_place)
            if on_progress is not None:
                on_progress(ProgressUpdate(current.source, nbytes, nrows))
        elif tag == "error":
            error: SourceError = event[1]
            if current is not None and current.source == error.source:
                current.errors.append(error.reason)  # part of the source was read; what was found stays
            else:  # could not even be opened
                result = SourceResult(source=error.source, kind="unknown", errors=[error.reason])
                _progress_done(on_progress, result)
                yield result
        elif tag == "end":
            assert current is not None
            source = event[1]
            current.encoding, current.notes = source.encoding, list(source.notes)
            current.seconds = time.perf_counter() - started
            _progress_done(on_progress, current)
            yield current
            current = None
        elif tag == "skip":
            skipped: Skipped = event[1]
            yield SourceResult(source=skipped.source, kind="skipped", skipped=skipped.reason)


def _progress_done(on_progress: Callable[[ProgressUpdate], None] | None, result: SourceResult) -> None:
    if on_progress is not None:
        on_progress(ProgressUpdate(result.source, 0, 0, finished=True))


def _read_events(items: Iterator[Source | Skipped | SourceError]) -> Iterator[tuple[Any, ...]]:
    """Flatten sources into ('start', src) ('chunk', chunk) … ('error', err)? ('end', src) events."""
    for item in items:
        if isinstance(item, Skipped):
            yield ("skip", item)
        elif isinstance(item, SourceError):
            yield ("error", item)
        else:
            yield ("start", item)
            try:
                for chunk in item:
                    yield ("chunk", chunk)
            except SourceError as exc:
                yield ("error", exc)
            yield ("end", item)


# --- scanning, in process or in a pool --------------------------------------------------------------

Outcome = list[Finding] | str  # findings, or the reason the scanner failed on this chunk


def _scan_events(events: Iterator[tuple[Any, ...]], factory: ScannerFactory, workers: int) -> Iterator[tuple[Any, ...]]:
    """The same events, chunks paired with their outcome, in the same order."""
    if workers <= 1:
        scanner = factory()
        for event in events:
            yield (event[0], event[1], scan_chunk_text(scanner, event[1].text)) if event[0] == "chunk" else event
        return
    yield from _scan_events_in_pool(events, factory, workers)


def scan_chunk_text(scanner: TextScanner, text: str) -> Outcome:
    """The hot path: one scanner call. A scanner bug on one chunk is reported, not fatal to the scan."""
    if not text:
        return []
    try:
        return scanner.scan(text)
    except Exception as exc:  # noqa: BLE001 - the type only: a message could quote the text
        return f"scanner failed ({type(exc).__name__})"


_worker_scanner: TextScanner | None = None


def _init_worker(factory: ScannerFactory) -> None:
    global _worker_scanner
    _worker_scanner = factory()


def _scan_batch(texts: list[str]) -> list[Outcome]:
    assert _worker_scanner is not None, "worker initializer did not run"
    scanner = _worker_scanner
    return [scan_chunk_text(scanner, text) for text in texts]


def _scan_events_in_pool(events: Iterator[tuple[Any, ...]], factory: ScannerFactory,
                         workers: int) -> Iterator[tuple[Any, ...]]:
    window = workers * IN_FLIGHT_PER_WORKER
    pending: deque[tuple[list[tuple[Any, ...]], Future[list[Outcome]] | None]] = deque()
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(factory,)) as pool:
        batch: list[tuple[Any, ...]] = []
        batch_chars = 0

        def flush() -> None:
            nonlocal batch, batch_chars
            if batch:
                pending.append((batch, pool.submit(_scan_batch, [e[1].text for e in batch])))
                batch, batch_chars = [], 0

        for event in events:
            if event[0] == "chunk":
                batch.append(event)
                batch_chars += len(event[1].text)
                if batch_chars >= BATCH_CHARS or len(batch) >= BATCH_CHUNKS:
                    flush()
            else:
                flush()
                pending.append(([event], None))
            while len(pending) > window or (pending and _ready(pending[0][1])):
                yield from _resolve(pending.popleft())
        flush()
        while pending:
            yield from _resolve(pending.popleft())


def _ready(future: Future[list[Outcome]] | None) -> bool:
    return future is None or future.done()


def _resolve(item: tuple[list[tuple[Any, ...]], Future[list[Outcome]] | None]) -> Iterator[tuple[Any, ...]]:
    events, future = item
    if future is None:
        yield from events
        return
    for event, outcome in zip(events, future.result(), strict=True):
        yield ("chunk", event[1], outcome)


# --- turning a scanned chunk into places ------------------------------------------------------------


def _measure(chunk: Chunk, last_row: Any) -> tuple[int, int, Any]:
    """Bytes (UTF-8 size of the text) and rows (lines, table rows, records) this chunk adds."""
    text = chunk.text
    nbytes = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    location = chunk.location
    if chunk.is_line_block:
        return nbytes, text.count("\n") + (0 if text.endswith("\n") else 1) - (1 if location["column"] else 0), last_row
    if "row" in location:
        key: Any = (location.get("sheet"), location.get("table"), location["row"])
    elif "line" in location:  # JSON Lines records
        key = location["line"]
    else:
        return nbytes, 0, last_row
    return nbytes, (0 if key == last_row else 1), key


def _collect(result: SourceResult, chunk: Chunk, outcome: Outcome, wanted: frozenset[str] | None, min_score: float,
             snippets: bool, on_place: Callable[[SourceResult, Place], None] | None) -> None:
    record_error = chunk.location.get("error")
    if isinstance(outcome, str):
        result.errors.append(f"{_where(chunk.location)}: {outcome}")
        findings: list[Finding] = []
    else:
        findings = [f for f in outcome if f.score >= min_score and (wanted is None or f.type in wanted)]
    if record_error:
        result.errors.append(record_error)
    for f in findings:
        result.counts[f.type] += 1
        result.categories[f.category] += 1
    if not findings and on_place is None:
        return
    budget = (MAX_SNIPPETS_PER_SOURCE - result.snippets_kept) if snippets else 0
    places = _places(chunk, findings, budget, error=record_error or (outcome if isinstance(outcome, str) else None))
    if budget > 0:
        result.snippets_kept += min(budget, len(findings))
    for place in places:
        if on_place is not None:
            on_place(result, place)
        else:
            result.places.append(place)


def _where(location: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in location.items() if k not in ("error", "id"))


def _places(chunk: Chunk, findings: list[Finding], snippet_budget: int, *, error: str | None) -> list[Place]:
    text = chunk.text
    findings.sort(key=lambda f: (f.start, f.end))
    masked = _snippets(text, findings, snippet_budget) if snippet_budget > 0 and findings else ()
    if not chunk.is_line_block:
        # Pieces of a long cell share the cell's location; offsets become offsets into the whole cell.
        location = {k: v for k, v in chunk.location.items() if k not in ("error", "offset")}
        return [Place(location, tuple(_rebase(findings, -chunk.location.get("offset", 0))), masked, error)]
    if not findings:
        return []
    return _places_by_line(chunk, findings, masked)


def _rebase(findings: list[Finding], delta: int) -> list[Finding]:
    if not delta:
        return findings
    return [_shifted(f, delta) for f in findings]


def _shifted(f: Finding, shift: int) -> Finding:
    """The finding moved left by ``shift`` characters (direct construction: ``dataclasses.replace`` is
    several times slower, and a dense file has a finding every few dozen characters)."""
    return Finding(f.type, f.start - shift, f.end - shift, f.score, f.recognizer, f.category, f.explanation, f.text)


def _places_by_line(chunk: Chunk, findings: list[Finding], masked: tuple[tuple[str, str, str], ...]) -> list[Place]:
    """Split a block of lines into one place per line, offsets re-based to the line's start."""
    text = chunk.text
    first_line, first_column = chunk.location["line"], chunk.location["column"]
    line, line_start = first_line, 0
    places: list[Place] = []
    group: list[Finding] = []
    group_snippets: list[tuple[str, str, str]] = []
    for i, f in enumerate(findings):
        newline = text.find("\n", line_start, f.start)
        if newline >= 0 and group:
            places.append(Place({"line": line}, tuple(group), tuple(group_snippets)))
            group, group_snippets = [], []
        while newline >= 0:
            line, line_start = line + 1, newline + 1
            newline = text.find("\n", line_start, f.start)
        shift = line_start - (first_column if line == first_line else 0)
        group.append(_shifted(f, shift) if shift else f)
        if i < len(masked):
            group_snippets.append(masked[i])
    places.append(Place({"line": line}, tuple(group), tuple(group_snippets)))
    return places


# --- masking for reports ----------------------------------------------------------------------------


def _snippets(text: str, findings: list[Finding], budget: int) -> tuple[tuple[str, str, str], ...]:
    """Masked snippets for the first ``budget`` findings; each looks only at the findings near it (bisect)."""
    starts = [f.start for f in findings]
    ends = sorted(f.end for f in findings)
    out = []
    for f in findings[:budget]:
        lo, hi = f.start - SNIPPET_WIDTH, f.end + SNIPPET_WIDTH
        # Findings are sorted and, after overlap resolution, disjoint: neighbours are a contiguous slice.
        first = min(bisect.bisect_right(ends, lo), bisect.bisect_left(starts, f.start))
        last = bisect.bisect_left(starts, hi)
        out.append(masked_snippet(text, f, findings[first:last]))
    return tuple(out)


def mask_value(entity_type: str, value: str) -> str:
    """A found value as a report may show it: masked by its identifier kind, else every letter/digit starred."""
    kind = MASK_KIND.get(entity_type)
    if kind is not None:
        try:
            return mask(kind, value)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            pass
    return "".join("*" if ch.isalnum() else ch for ch in value)


def masked_snippet(text: str, finding: Finding, others: list[Finding],
                   width: int = SNIPPET_WIDTH) -> tuple[str, str, str]:
    """(before, value, after) around ``finding``: every finding masked, every other digit starred."""
    lo, hi = max(0, finding.start - width), min(len(text), finding.end + width)
    before = _mask_span(text, lo, finding.start, others)
    after = _mask_span(text, finding.end, hi, others)
    value = mask_value(finding.type, text[finding.start:finding.end])
    return _one_line(before), _one_line(value), _one_line(after)


def _mask_span(text: str, lo: int, hi: int, findings: list[Finding]) -> str:
    parts: list[str] = []
    pos = lo
    for f in findings:
        if f.end <= lo or f.start >= hi:
            continue
        s, e = max(f.start, lo), min(f.end, hi)
        if s > pos:
            parts.append(_star_digits(text[pos:s]))
        if e > pos:
            parts.append(mask_value(f.type, text[max(s, pos):e]))
            pos = e
    if pos < hi:
        parts.append(_star_digits(text[pos:hi]))
    return "".join(parts)


def _star_digits(text: str) -> str:
    # Digits near a finding may be personal data the scanner scored too low to report.
    if text.isascii():
        return text.translate(_ASCII_DIGITS_TO_STARS)
    return "".join("*" if ch.isdigit() else ch for ch in text)


_ASCII_DIGITS_TO_STARS = str.maketrans("0123456789", "*" * 10)


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).replace("\r", " ").replace("\t", " ")
