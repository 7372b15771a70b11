#!/usr/bin/env python
"""Benchmark: how fast qorgau's scanner finds personal data, per core, against plain ``re`` and Presidio.

One run measures, on one generated corpus (>= 5 MB of ~4 KB documents: records of the labelled corpus
``qorgau/discovery/corpus/eval.jsonl`` mixed with ordinary kk/ru/en prose that holds no personal data,
seeded so every run scans the same bytes):

1. (a) baseline — plain ``re``: one ``finditer`` pass per type with the same structured patterns qorgau
   compiles (imported from ``qorgau.discovery.recognizers.structured``) plus an e-mail regex, no
   validation; (a+) the same plus simple name, address and date regexes;
2. ``Scanner.identifiers_only()`` (goal >= 20 MB/s per core) and ``Scanner.default()`` with PERSON,
   ADDRESS, DATE_OF_BIRTH (goal >= 5 MB/s per core), as ratios against (a)/(a+) and Presidio;
3. (b) Presidio with equivalent KZ recognizers (``bench/presidio_kz.py``), in a subprocess with its own
   virtualenv ``bench/.venv-presidio``; Presidio's PERSON is off (no spaCy model), so it compares with
   ``identifiers_only`` (goal: qorgau >= 10x Presidio);
4. memory flatness: ~1 GB generated on the fly (never stored) streamed through ``identifiers_only()``
   and a smaller amount through ``default()``; resident memory after the first 100 MB and at the end;
5. findings per type for every engine on the corpus (a sanity check, not a quality evaluation: that is
   ``python -m qorgau.discovery.evaluation``);
6. an additional, clearly labelled *sparse* corpus (same generator and seed, ~3 labelled entities per
   ~4 KB document, like typical operator documents) for the same engines; the dense corpus stays the
   reference for the goals;
7. with ``--compare-with DIR``, the findings of another version of qorgau (``DIR/qorgau``, e.g. the
   previous commit) on both corpora, finding by finding (type, start, end, score, recognizer): the
   equivalence check for optimisations that must not change results.

"Per core" means one process, one thread. MB = 10**6 bytes of UTF-8 (Cyrillic is 2 bytes a character;
the character rate is printed too). Rates are wall-clock and, separately, per CPU-second of this process
(less sensitive to other load on a shared machine). Nothing is asserted; goals print PASS/MISS.
Results go to the ``## scan_throughput`` section of ``bench/RESULTS.md``.

    .venv/bin/python bench/scan_throughput.py [--mb 5] [--sparse-mb 2] [--memory-gb 1] [--no-presidio] [--profile]
                                              [--compare-with DIR]

Presidio's virtualenv (once): ``python3.11 -m venv bench/.venv-presidio &&
bench/.venv-presidio/bin/pip install -r bench/requirements-presidio.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Per core means one core: numpy's BLAS (under Natasha's slovnet) would otherwise start a thread per CPU,
# and on a busy 2-CPU machine those threads spin against each other (measured: default() 3.5x slower).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_and_python  # noqa: E402
from qorgau.discovery.engine import Scanner  # noqa: E402
from qorgau.discovery.recognizers import structured  # noqa: E402

SEED = 20261122
DOC_CHARS = 4096  # target document size in characters
RECORD_SHARE = 0.35  # share of a document's pieces taken from labelled records (the rest is prose)
SPARSE_RECORD_SHARE = 0.03  # the sparse corpus: ~1 record (~3 labelled entities) per ~4 KB document
MB = 1_000_000
RESULTS = ROOT / "bench" / "RESULTS.md"
CORPUS = ROOT / "qorgau" / "discovery" / "corpus" / "eval.jsonl"
PRESIDIO_PYTHON = ROOT / "bench" / ".venv-presidio" / "bin" / "python"
PRESIDIO_SCRIPT = ROOT / "bench" / "presidio_kz.py"

# Ordinary prose without personal data: what most of an operator's documents look like. Numbers that
# are not identifiers (amounts, years, versions, percentages) are there on purpose.
PROSE = {
    "ru": [
        "Отчёт за третий квартал подготовлен отделом аналитики и направлен на согласование руководству.",
        "В 2024 году объём продаж вырос на 12,5 % по сравнению с прошлым годом, расходы остались на уровне плана.",
        "Совещание перенесено на четверг, повестка дня будет разослана заранее всем участникам проекта.",
        "Для обновления системы до версии 3.2.1 необходимо остановить сервис и сделать резервную копию базы.",
        "Погода в выходные ожидается тёплая, без осадков, температура днём до двадцати пяти градусов.",
        "Согласно регламенту, заявки рассматриваются в течение пяти рабочих дней с момента регистрации.",
        "Стоимость услуги составляет 15 000 тенге, оплата производится до конца текущего месяца.",
        "Новая версия мобильного приложения получила улучшенный интерфейс и работает быстрее на старых телефонах.",
        "Поставка оборудования задерживается из-за таможенного оформления, ориентировочный срок две недели.",
        "Компания продолжает программу обучения сотрудников основам информационной безопасности.",
        "В таблице приведены средние значения показателей по всем филиалам за отчётный период.",
        "Просим обратить внимание, что изменились правила оформления командировочных расходов.",
        "Сервер мониторинга фиксирует рост нагрузки в часы пик, рекомендуется увеличить число узлов.",
        "Итоги конкурса будут подведены после проверки всех поступивших работ экспертной комиссией.",
    ],
    "kk": [
        "Есеп үшінші тоқсан бойынша дайындалып, басшылыққа келісуге жіберілді.",
        "Биыл сатылым көлемі өткен жылмен салыстырғанда 12 пайызға өсті, шығындар жоспар деңгейінде қалды.",
        "Жиналыс бейсенбіге ауыстырылды, күн тәртібі барлық қатысушыларға алдын ала жіберіледі.",
        "Жүйені 3.2.1 нұсқасына жаңарту үшін қызметті тоқтатып, дерекқордың сақтық көшірмесін жасау қажет.",
        "Демалыс күндері ауа райы жылы, жауын-шашынсыз болады деп күтілуде.",
        "Ереже бойынша өтінімдер тіркелген сәттен бастап бес жұмыс күні ішінде қаралады.",
        "Қызмет құны 15 000 теңге, төлем ағымдағы айдың соңына дейін жүргізіледі.",
        "Мобильді қосымшаның жаңа нұсқасы ыңғайлы интерфейс алды және ескі құрылғыларда жылдам жұмыс істейді.",
        "Жабдықты жеткізу кедендік ресімдеуге байланысты кешігіп жатыр, шамамен екі апта қажет.",
        "Компания қызметкерлерді ақпараттық қауіпсіздік негіздеріне оқыту бағдарламасын жалғастыруда.",
        "Кестеде есепті кезеңдегі барлық филиалдар бойынша орташа көрсеткіштер келтірілген.",
        "Іссапар шығындарын рәсімдеу ережелері өзгергеніне назар аударыңыздар.",
    ],
    "en": [
        "The quarterly report was prepared by the analytics team and sent to management for approval.",
        "In 2024 sales grew by 12.5 percent compared with the previous year while costs stayed on plan.",
        "The meeting has been moved to Thursday and the agenda will be circulated to all participants.",
        "To upgrade the system to version 3.2.1, stop the service and take a backup of the database first.",
        "The weather this weekend is expected to be warm and dry, with daytime highs around twenty-five degrees.",
        "Under the regulation, requests are reviewed within five working days of registration.",
        "The service costs 15,000 tenge and payment is due by the end of the current month.",
        "The new release of the mobile app has a cleaner interface and runs faster on older devices.",
        "Delivery of the equipment is delayed by customs clearance; the estimated time is two weeks.",
        "The company continues its training programme on the basics of information security.",
        "The table shows average values of the indicators for all branches over the reporting period.",
        "Please note that the rules for filing travel expenses have changed this month.",
        "Monitoring shows higher load at peak hours, so adding two more nodes to the cluster is recommended.",
    ],
}

_SYLLABLES = ["ka", "na", "ly", "ar", "bek", "zhan", "ta", "ri", "mo", "sul", "ер", "ай", "нұр", "жан", "ба",
              "ма", "ра", "ол", "ик", "са", "ду", "лан", "тім", "ге"]


@dataclass
class Pool:
    """What documents are made of: the labelled records' texts and entity counts, and prose sentences."""

    records: list[str]
    labels: list[Counter]
    prose: list[tuple[str, str]]  # (language, sentence)


def load_pool() -> Pool:
    records, labels = [], []
    with CORPUS.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            records.append(rec["text"])
            labels.append(Counter(e["type"] for e in rec["entities"]))
    prose = [(lang, s) for lang, sentences in PROSE.items() for s in sentences]
    return Pool(records, labels, prose)


@dataclass
class Composition:
    documents: int = 0
    chars: int = 0
    bytes: int = 0
    record_pieces: int = 0
    record_chars: int = 0
    prose_chars: Counter = field(default_factory=Counter)
    fresh_words: int = 0
    labelled: Counter = field(default_factory=Counter)  # entities the records placed, by type


def _fresh_word(rng: random.Random) -> str:
    """A new capitalised pseudo-word: keeps per-word caches (PERSON's) from seeing only known words."""
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
    return word[0].upper() + word[1:]


def documents(pool: Pool, rng: random.Random, comp: Composition, fresh: bool = False,
              record_share: float = RECORD_SHARE) -> Iterator[str]:
    """An endless stream of ~4 KB documents: record texts and prose in paragraphs; with ``fresh``, each also
    gets one line of two never-seen capitalised words (the memory check uses it, so that per-word caches
    keep meeting new words as in real data)."""
    while True:
        pieces, size = [], 0
        while size < DOC_CHARS:
            if rng.random() < record_share:
                i = rng.randrange(len(pool.records))
                piece = pool.records[i]
                comp.record_pieces += 1
                comp.record_chars += len(piece)
                comp.labelled.update(pool.labels[i])
            else:
                lang, piece = pool.prose[rng.randrange(len(pool.prose))]
                comp.prose_chars[lang] += len(piece)
            pieces.append(piece)
            size += len(piece) + 1
        if fresh:
            pieces.append(f"Тег: {_fresh_word(rng)} {_fresh_word(rng)}.")
            comp.fresh_words += 2
        doc = "\n".join(pieces)
        comp.documents += 1
        comp.chars += len(doc)
        comp.bytes += len(doc.encode("utf-8"))
        yield doc


def generate_corpus(pool: Pool, mb: float, seed: int,
                    record_share: float = RECORD_SHARE) -> tuple[list[str], Composition]:
    comp = Composition()
    docs = []
    for doc in documents(pool, random.Random(seed), comp, record_share=record_share):
        docs.append(doc)
        if comp.bytes >= mb * MB:
            break
    return docs, comp


# --- (a) the plain-re baseline ------------------------------------------------------------------------

def _plain(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern as plain ``re.compile`` builds it from its source: the baseline never gets qorgau's
    compile-time help (``recognizers.fastre``), whatever a recognizer module does with its patterns."""
    return re.compile(pattern.pattern, pattern.flags)


def baseline_patterns(with_nlp: bool) -> list[tuple[str, re.Pattern[str]]]:
    """qorgau's own structured patterns (their sources, plain ``re``), run alone over the whole text, no validation."""
    out = [
        ("KZ_IIN/KZ_BIN", _plain(structured._TWELVE)), ("PHONE_NUMBER", _plain(structured._PHONE)),
        ("EMAIL_ADDRESS", re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")), ("IBAN_CODE", _plain(structured._IBAN)),
        ("CREDIT_CARD", _plain(structured._CARD)), ("KZ_PASSPORT", _plain(structured._PASSPORT)),
        ("KZ_ID_CARD", _plain(structured._NINE)), ("IP_ADDRESS", _plain(structured._IPV4)),
        ("KZ_VEHICLE_PLATE", _plain(structured._PLATE)),
    ]
    if with_nlp:
        up, low = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ", "a-zа-яёәғқңөұүһі"
        out += [
            ("PERSON", re.compile(rf"(?<!\w)[{up}][{low}]+(?: [{up}][{low}]+){{1,2}}(?!\w)")),
            ("ADDRESS", re.compile(r"(?<!\w)(?:ул\.|пр\.|мкр\.?|улица|проспект)\s*[\w\- ]{2,30}"
                                   r"|[\w\-]+ (?:көшесі|даңғылы|street|st\.|ave\.)")),
            ("DATE_OF_BIRTH", re.compile(r"(?<!\d)\d{2}[./]\d{2}[./]\d{4}(?!\d)")),
        ]
    return out


def baseline_scan(patterns: Sequence[tuple[str, re.Pattern[str]]], text: str, counts: Counter) -> None:
    """Hot loop of the baseline: one finditer pass per pattern, matches only counted."""
    for name, pattern in patterns:
        n = 0
        for _ in pattern.finditer(text):
            n += 1
        counts[name] += n


# --- timing -------------------------------------------------------------------------------------------

@dataclass
class Run:
    label: str
    bytes: int
    chars: int
    wall_s: float
    cpu_s: float
    counts: Counter

    @property
    def mb_s(self) -> float:
        return self.bytes / MB / self.wall_s

    @property
    def mb_cpu_s(self) -> float:
        return self.bytes / MB / self.cpu_s


def scan_all(scanner: Scanner, docs: Sequence[str], counts: Counter) -> None:
    """Hot loop: scan each document, count findings per type."""
    scan = scanner.scan
    for doc in docs:
        for f in scan(doc):
            counts[f.type] += 1


def timed(label: str, docs: Sequence[str], body: Callable[[Counter], None], repeat: int) -> Run:
    """Best wall time of ``repeat`` passes (counts from the last pass), after a warm-up on 20 documents."""
    best: Run | None = None
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    nchars = sum(len(d) for d in docs)
    for _ in range(repeat):
        counts: Counter = Counter()
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        body(counts)
        run = Run(label, nbytes, nchars, time.perf_counter() - w0, time.process_time() - c0, counts)
        if best is None or run.wall_s < best.wall_s:
            best = run
    assert best is not None
    return best


# --- Presidio (subprocess, own virtualenv) ------------------------------------------------------------

def run_presidio(docs: Sequence[str], max_mb: float | None) -> tuple[dict | None, str]:
    """Presidio's numbers from ``bench/presidio_kz.py`` in ``bench/.venv-presidio``, or (None, why not)."""
    if not PRESIDIO_PYTHON.exists():
        return None, (f"{PRESIDIO_PYTHON.relative_to(ROOT)} not found; create it with "
                      "`python3.11 -m venv bench/.venv-presidio && bench/.venv-presidio/bin/pip install "
                      "-r bench/requirements-presidio.txt`")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        path = fh.name
    try:
        cmd = [str(PRESIDIO_PYTHON), str(PRESIDIO_SCRIPT), path] + (["--max-mb", str(max_mb)] if max_mb else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"presidio_kz.py exited with {proc.returncode}: {last[:200]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


# --- memory -------------------------------------------------------------------------------------------

def rss_mib() -> float:
    """Resident set size now, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class MemoryRun:
    label: str
    total_bytes: int
    mark_bytes: int
    rss_start: float
    rss_after_100mb: float
    rss_end: float
    peak: float
    wall_s: float
    findings: int

    @property
    def growth(self) -> float:
        return self.rss_end - self.rss_after_100mb


def stream_memory(label: str, scanner: Scanner, pool: Pool, total_bytes: int, seed: int) -> MemoryRun:
    """Scan ~``total_bytes`` of documents generated on the fly; resident memory after the first 100 MB (or
    a third of ``total_bytes`` if that is less: ``default()`` is too slow to stream 1 GB here) and at the end."""
    mark = min(100 * MB, total_bytes // 3)
    comp = Composition()
    rss_start = rss_mib()
    rss_100 = None
    findings = 0
    scan = scanner.scan
    w0 = time.perf_counter()
    for doc in documents(pool, random.Random(seed), comp, fresh=True):
        findings += len(scan(doc))
        if rss_100 is None and comp.bytes >= mark:
            gc.collect()
            rss_100 = rss_mib()
        if comp.bytes >= total_bytes:
            break
    gc.collect()
    return MemoryRun(label, comp.bytes, mark, rss_start, rss_100 if rss_100 is not None else float("nan"),
                     rss_mib(), peak_rss_mib(), time.perf_counter() - w0, findings)


# --- profile ------------------------------------------------------------------------------------------

def profile_scanner(scanner: Scanner, docs: Sequence[str], top: int = 18) -> tuple[str, list[str]]:
    """cProfile of one pass: the full pstats text, and Markdown rows of the ``top // 2`` biggest own times."""
    prof = cProfile.Profile()
    prof.enable()
    scan_all(scanner, docs, Counter())
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    total = sum(tt for (_, _, tt, _, _) in stats.stats.values()) or 1.0
    biggest = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: top // 2]
    rows = []
    for (path, line, func), (_, calls, tt, ct, _) in biggest:
        where = path.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        rows.append(f"| `{where}:{line}({func})` | {calls:,} | {tt:.2f} | {tt / total:.0%} | {ct:.2f} |")
    return out.getvalue(), rows


# --- equivalence with another version -----------------------------------------------------------------

@dataclass
class Equivalence:
    """Findings of this version and of a reference version, compared finding by finding."""

    label: str
    texts: int = 0
    findings: int = 0  # this version's
    reference_findings: int = 0
    only_here: Counter = field(default_factory=Counter)  # by type
    only_reference: Counter = field(default_factory=Counter)
    score_changed: Counter = field(default_factory=Counter)  # same type and span, another score

    @property
    def differences(self) -> int:
        return sum(self.only_here.values()) + sum(self.only_reference.values()) + sum(self.score_changed.values())


def reference_scanners(root: Path) -> tuple[object, object]:
    """``Scanner.identifiers_only()`` and ``Scanner.default()`` of the qorgau package in ``root`` (another
    version's checkout), imported as ``qorgau_reference`` so that both versions run in this process (the
    scanner's modules import each other relatively)."""
    source = root / "qorgau"
    if not (source / "discovery" / "engine.py").is_file():
        raise SystemExit(f"--compare-with: {root} has no qorgau/discovery/engine.py")
    where = Path(tempfile.mkdtemp(prefix="qorgau-reference-"))
    shutil.copytree(source, where / "qorgau_reference", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(where))
    import importlib

    engine = importlib.import_module("qorgau_reference.discovery.engine")
    return engine.Scanner.identifiers_only(), engine.Scanner.default()


def compare(label: str, scanner: Scanner, reference: object, docs: Sequence[str]) -> Equivalence:
    """Findings of both scanners on ``docs``: (type, start, end, score, recognizer) must be equal. Only
    types and counts are reported, never text."""
    eq = Equivalence(label, texts=len(docs))
    for doc in docs:
        here = {(f.type, f.start, f.end, f.recognizer): f.score for f in scanner.scan(doc)}
        there = {(f.type, f.start, f.end, f.recognizer): f.score for f in reference.scan(doc)}  # type: ignore[attr-defined]
        eq.findings += len(here)
        eq.reference_findings += len(there)
        for key in here.keys() - there.keys():
            eq.only_here[key[0]] += 1
        for key in there.keys() - here.keys():
            eq.only_reference[key[0]] += 1
        for key in here.keys() & there.keys():
            if here[key] != there[key]:
                eq.score_changed[key[0]] += 1
    return eq


def recognizer_breakdown(scanner: Scanner, docs: Sequence[str], repeat: int = 3) -> list[tuple[str, float]]:
    """CPU seconds per part of ``scanner.scan`` on ``docs`` (best of ``repeat``): the numeric-cluster pass,
    each recognizer alone, PERSON split into its rules and Natasha, and the rest (lists, overlaps)."""
    from qorgau.discovery.recognizers.structured import numeric_clusters

    def best(body: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            gc.collect()
            c0 = time.process_time()
            body()
            times.append(time.process_time() - c0)
        return min(times)

    clusters = [numeric_clusters(d) for d in docs]
    parts = [("numeric clusters (shared pass)", best(lambda: [numeric_clusters(d) for d in docs]))]
    for r in scanner.recognizers:
        if hasattr(r, "find_in_clusters"):
            spent = best(lambda r=r: [r.find_in_clusters(d, c) for d, c in zip(docs, clusters)])  # type: ignore[misc]
        else:
            spent = best(lambda r=r: [list(r.find(d)) for d in docs])  # type: ignore[misc]
        if r.name == "person" and getattr(r, "use_natasha", False):
            rules = type(r)(use_natasha=False)
            alone = best(lambda: [rules.find(d) for d in docs])
            parts += [("person: rules", alone), ("person: Natasha on undecided windows", spent - alone)]
        else:
            parts.append((r.name, spent))
    total = best(lambda: [scanner.scan(d) for d in docs])
    parts.append(("engine: thresholds, lists, overlaps", max(0.0, total - sum(t for _, t in parts))))
    return parts


# --- report -------------------------------------------------------------------------------------------

def machine_info() -> list[tuple[str, str]]:
    return cpu_and_python()


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(x: float, digits: int = 2) -> str:
    if x != x:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.1f}×" if b else "—"


# What the previous figures were (the section is rewritten on every run; issue 3 keeps one line of them).
PREVIOUS = ("Before the speed work (2026-11-22, `--mb 5 --memory-gb 1 --memory-gb-default 0.1 --profile`, an AMD "
            "EPYC VM at load average 3.0-3.6): identifiers_only() 4.10 MB/s (4.74 MB/CPU-s), default() 0.53 MB/s "
            "(0.72 MB/CPU-s), Presidio 0.26 MB/s, (a) 2.32 MB/s, (a+) 1.35 MB/s.")


def build_report(args: argparse.Namespace, info: list[tuple[str, str]], comp: Composition, runs: dict[str, Run],
                 presidio: dict | None, presidio_same: Counter | None, presidio_note: str, memory: list[MemoryRun],
                 setup: dict[str, float],
                 load_start: str, load_end: str, elapsed: float, sparse: Composition | None = None,
                 presidio_sparse: dict | None = None, equivalence: Sequence[Equivalence] = ()) -> str:
    lines: list[str] = []
    add = lines.append
    add("### 2026-11-22")
    add("")
    command = " ".join([".venv/bin/python bench/scan_throughput.py"] + [shlex.quote(a) for a in sys.argv[1:]])
    add(f"Command: `{command}` ({elapsed / 60:.1f} min in all)")
    add("")
    for k, v in info:
        add(f"- {k}: {v}")
    if presidio:
        v = presidio["versions"]
        add(f"- Presidio: presidio-analyzer {v['presidio_analyzer']}, spaCy {v['spacy']}, NLP engine "
            f"{presidio['nlp_engine']}; Presidio PERSON/LOCATION therefore off")
    else:
        add(f"- Presidio: not measured ({presidio_note})")
    add("- Threads: " + ", ".join(f"{v}={os.environ.get(v)}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
        + " (one core per measurement)")
    add(f"- Scanner set-up: identifiers_only() {setup['ids']:.2f} s, default() {setup['default']:.2f} s "
        "(Natasha loaded once)")
    add(f"- Load average at start: {load_start}")
    add(f"- Load average at end: {load_end}")
    add("")
    labelled = sum(comp.labelled.values())
    add(f"Corpus (seed {SEED}): {comp.documents:,} documents of ~{DOC_CHARS:,} characters, "
        f"{comp.bytes / MB:.2f} MB UTF-8, {comp.chars / MB:.2f} M characters; "
        f"{comp.record_chars / comp.chars:.0%} of characters from {comp.record_pieces:,} labelled records "
        f"(eval.jsonl, {labelled:,} labelled entities), prose without personal data "
        + ", ".join(f"{lang} {n / comp.chars:.0%}" for lang, n in sorted(comp.prose_chars.items()))
        + ". The memory check's stream adds one line of 2 never-seen capitalised pseudo-words per document.")
    add("")
    if sparse is not None:
        add(f"Sparse corpus (additional rows, same generator and seed, records in {SPARSE_RECORD_SHARE:.0%} of pieces "
            f"instead of {RECORD_SHARE:.0%}): {sparse.documents:,} documents, {sparse.bytes / MB:.2f} MB, "
            f"{sum(sparse.labelled.values()) / sparse.documents:.1f} labelled entities per ~4 KB document "
            f"(dense: {sum(comp.labelled.values()) / comp.documents:.1f}). The goals are read on the dense corpus.")
        add("")
    ids, full = runs["qorgau identifiers_only"], runs["qorgau default"]
    base_ids, base_full = runs["(a) re baseline, identifiers"], runs["(a+) re baseline + name/address/date"]
    p_rate = p_cpu = None
    if presidio:
        p_rate = presidio["bytes"] / MB / presidio["wall_s"]
        p_cpu = presidio["bytes"] / MB / presidio["cpu_s"]
    add("| Measurement | MB/s per core | MB/CPU-s | M chars/s | × (a) or (a+) | × Presidio (b) | Goal |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | --- |")

    def row(label: str, run: Run, base: Run | None, goal: str) -> None:
        add(f"| {label} | {fmt(run.mb_s)} | {fmt(run.mb_cpu_s)} | {fmt(run.chars / MB / run.wall_s)} | "
            f"{ratio(run.mb_s, base.mb_s) if base else '1.0×'} | {ratio(run.mb_s, p_rate)} | {goal} |")

    row("(a) plain `re`, structured patterns, no validation", base_ids, None, "")
    row("(a+) plain `re`, structured + name/address/date", base_full, None, "")
    row("qorgau `Scanner.identifiers_only()`", ids, base_ids,
        f"≥ 20 MB/s: **{'PASS' if ids.mb_s >= 20 else 'MISS'}** (CPU-s: {'PASS' if ids.mb_cpu_s >= 20 else 'MISS'})"
        + (f"; ≥ 10× Presidio: **{'PASS' if ids.mb_s >= 10 * p_rate else 'MISS'}**" if p_rate else ""))
    row("qorgau `Scanner.default()` (PERSON/ADDRESS/DOB on)", full, base_full,
        f"≥ 5 MB/s: **{'PASS' if full.mb_s >= 5 else 'MISS'}** (CPU-s: {'PASS' if full.mb_cpu_s >= 5 else 'MISS'})"
        + (f"; ≥ 10× Presidio: **{'PASS' if full.mb_s >= 10 * p_rate else 'MISS'}**" if p_rate else ""))
    if presidio:
        mb = presidio["bytes"] / MB
        add(f"| (b) Presidio + KZ recognizers (identifiers only; first {mb:.2f} MB) | {fmt(p_rate)} | {fmt(p_cpu)} | "
            f"{fmt(presidio['chars'] / MB / presidio['wall_s'])} | {ratio(p_rate, base_ids.mb_s)} | 1.0× | "
            f"{mb:.2f} MB, {presidio['documents']:,} documents; set-up {presidio['setup_s']:.1f} s |")
    for key, label in (("reference identifiers_only", "(r) reference version (`--compare-with`), `identifiers_only()`"),
                       ("reference default", "(r) reference version (`--compare-with`), `default()`")):
        if key in runs:
            ours = ids if "identifiers" in key else full
            add(f"| {label} | {fmt(runs[key].mb_s)} | {fmt(runs[key].mb_cpu_s)} | "
                f"{fmt(runs[key].chars / MB / runs[key].wall_s)} | — | {ratio(runs[key].mb_s, p_rate)} | "
                f"this version: {ratio(ours.mb_s, runs[key].mb_s)} faster, in the same run |")
    if sparse is not None:
        sp_rate = presidio_sparse["bytes"] / MB / presidio_sparse["wall_s"] if presidio_sparse else None
        s_ids, s_full = runs["sparse qorgau identifiers_only"], runs["sparse qorgau default"]
        s_base_ids, s_base_full = runs["sparse (a) re baseline"], runs["sparse (a+) re baseline"]

        def sparse_row(label: str, run: Run, base: Run | None) -> None:
            add(f"| *sparse corpus:* {label} | {fmt(run.mb_s)} | {fmt(run.mb_cpu_s)} | {fmt(run.chars / MB / run.wall_s)} | "
                f"{ratio(run.mb_s, base.mb_s) if base else '1.0×'} | {ratio(run.mb_s, sp_rate)} | |")

        sparse_row("(a) plain `re`, structured", s_base_ids, None)
        sparse_row("(a+) plain `re`, + name/address/date", s_base_full, None)
        sparse_row("qorgau `identifiers_only()`", s_ids, s_base_ids)
        sparse_row("qorgau `default()`", s_full, s_base_full)
        if presidio_sparse:
            mb = presidio_sparse["bytes"] / MB
            add(f"| *sparse corpus:* (b) Presidio + KZ recognizers (first {mb:.2f} MB) | {fmt(sp_rate)} | "
                f"{fmt(presidio_sparse['bytes'] / MB / presidio_sparse['cpu_s'])} | "
                f"{fmt(presidio_sparse['chars'] / MB / presidio_sparse['wall_s'])} | {ratio(sp_rate, s_base_ids.mb_s)} | "
                f"1.0× | |")
    add("")
    add("Ratios in the × (a) column: qorgau's rate divided by the baseline's (identifiers_only vs (a), default vs "
        "(a+)); (b)'s row divides Presidio's rate by (a). × Presidio = qorgau's wall-clock rate / Presidio's "
        "(on the same corpus).")
    add("")
    add(PREVIOUS + (" The (r) rows time the reference version (`--compare-with`) again, in this run, on this machine."
                    if "reference default" in runs else ""))
    add("")
    add("Reading the table: the corpus is dense (about "
        f"{sum(comp.labelled.values()) / comp.documents:.0f} labelled entities per ~4 KB document), which costs every "
        "engine per finding. Presidio's largest single cost is its context enhancer, "
        "which finds each result's token by iterating the spaCy Doc (`LemmaContextAwareEnhancer."
        "_find_index_of_match_token`, in a separate cProfile of this corpus), so it grows with findings × tokens "
        "and on sparse text the gap to Presidio narrows. The plain `re` baseline runs qorgau's structured "
        "pattern sources as `re.compile` builds them: they begin with look-behinds, so `re` tries the whole "
        "pattern at every position. qorgau itself finds numeric clusters once (`engine.numeric_clusters`) and "
        "compiles its word and marker patterns with `recognizers.fastre` (same matches; `re` skips to possible "
        "first characters in C); with PERSON on, Natasha's network over the windows rules cannot decide "
        "dominates (`docs/discovery.md`).")
    add("")
    for eq in equivalence:
        verdict = "identical" if eq.differences == 0 else f"**{eq.differences:,} differences**"
        detail = "; ".join(f"{name}: {dict(counter)}" for name, counter in (
            ("only here", eq.only_here), ("only in the reference", eq.only_reference),
            ("score changed", eq.score_changed)) if counter)
        add(f"Equivalence with the reference version, {eq.label}: {eq.texts:,} documents, {eq.findings:,} findings "
            f"here, {eq.reference_findings:,} there: {verdict}" + (f" ({detail})" if detail else "") + ".")
    if equivalence:
        add("")
    add("Findings per type on the same corpus (sanity only; baselines count unvalidated regex matches; "
        "'labelled' = entities the records placed):")
    add("")
    types = sorted(set(full.counts) | set(ids.counts) | set(comp.labelled) | set((presidio or {}).get("counts", {})))
    same = presidio_same or Counter()
    p_mb = f"{presidio['bytes'] / MB:.2f} MB" if presidio else "n/a"
    add(f"| Type | labelled | (a+) `re` matches | qorgau identifiers_only | qorgau default | "
        f"qorgau identifiers_only, Presidio's first {p_mb} | Presidio, its {p_mb} |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in types:
        base_key = "KZ_IIN/KZ_BIN" if t in ("KZ_IIN", "KZ_BIN") else t
        base_n = base_full.counts.get(base_key, 0)
        add(f"| {t} | {comp.labelled.get(t, 0):,} | {base_n:,}{' (IIN+BIN)' if base_key != t else ''} | "
            f"{ids.counts.get(t, 0):,} | {full.counts.get(t, 0):,} | {same.get(t, 0):,} | "
            f"{(presidio or {}).get('counts', {}).get(t, 0):,}{'' if presidio else ' (n/a)'} |")
    add("")
    if memory:
        add("Memory flatness (documents generated on the fly, never stored; RSS from /proc/self/statm after a "
            "gc.collect()):")
        add("")
        add("| Scanner | streamed | MB/s | RSS at start | first part | RSS after first part | RSS at end | "
            "growth after first part | peak RSS | Goal: no growth |")
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for m in memory:
            verdict = "PASS" if m.growth <= 1.0 else "MISS"  # 1 MiB: allocator noise, not growth
            add(f"| {m.label} | {m.total_bytes / MB:,.0f} MB | {fmt(m.total_bytes / MB / m.wall_s)} | "
                f"{m.rss_start:.1f} MiB | {m.mark_bytes / MB:,.0f} MB | {m.rss_after_100mb:.1f} MiB | {m.rss_end:.1f} MiB | "
                f"{m.growth:+.1f} MiB | {m.peak:.1f} MiB | **{verdict}** |")
        add("")
    return "\n".join(lines)


def write_results(section_body: str) -> None:
    """Replace the ``## scan_throughput`` section of RESULTS.md (other sections are left untouched)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    intro = ("## scan_throughput\n\nThe discovery scanner (`qorgau/discovery/engine.py` and its recognizers): "
             "MB/s per core on a generated mixed kk/ru/en corpus, against plain `re` with the same patterns and "
             "Presidio with equivalent KZ recognizers (`bench/presidio_kz.py`), plus memory flatness over a "
             "long stream. Goals (issue 3): ≥ 20 MB/s identifiers only, ≥ 5 MB/s with PERSON/ADDRESS, "
             "≥ 10× Presidio, no memory growth after the first 100 MB.\n\n")
    new = intro + section_body.rstrip() + "\n"
    match = re.search(r"^## scan_throughput\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
    if match:
        text = text[:match.start()] + new + ("\n" if match.end() < len(text) else "") + text[match.end():]
    else:
        text = text.rstrip() + "\n\n" + new
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="corpus size in MB of UTF-8 (default 5)")
    parser.add_argument("--memory-gb", type=float, default=1.0,
                        help="GB streamed through identifiers_only() for the memory check (0 skips it)")
    parser.add_argument("--memory-gb-default", type=float, default=0.3,
                        help="GB streamed through default() (slower; default 0.3; 0 skips it)")
    parser.add_argument("--no-presidio", action="store_true", help="skip Presidio")
    parser.add_argument("--presidio-mb", type=float, default=1.0,
                        help="give Presidio only the first N MB of the corpus (default 1: it is slow; 0 = all)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds over all measurements, interleaved (each keeps its best round)")
    parser.add_argument("--profile", action="store_true", help="cProfile both scanners on 1 MB; print top costs")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--sparse-mb", type=float, default=2.0,
                        help="size of the additional sparse corpus (~3 entities per 4 KB; default 2; 0 skips it)")
    parser.add_argument("--compare-with", type=Path, metavar="DIR",
                        help="a checkout of another qorgau version (DIR/qorgau): time it and compare its findings")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    load_start = load()
    info = machine_info()
    pool = load_pool()
    docs, comp = generate_corpus(pool, args.mb, SEED)
    print(f"corpus: {comp.documents:,} documents, {comp.bytes / MB:.2f} MB UTF-8, "
          f"{comp.record_chars / comp.chars:.0%} record text, prose "
          + ", ".join(f"{lang} {n / comp.chars:.0%}" for lang, n in sorted(comp.prose_chars.items())), flush=True)

    s0 = time.perf_counter()
    ids_scanner = Scanner.identifiers_only()
    setup = {"ids": time.perf_counter() - s0}
    s0 = time.perf_counter()
    full_scanner = Scanner.default()
    setup["default"] = time.perf_counter() - s0
    for scanner in (ids_scanner, full_scanner):  # warm-up: first-call imports, lexicons, Natasha
        scan_all(scanner, docs[:20], Counter())
    sparse_docs: list[str] = []
    sparse: Composition | None = None
    if args.sparse_mb > 0:
        sparse_docs, sparse = generate_corpus(pool, args.sparse_mb, SEED, SPARSE_RECORD_SHARE)
        print(f"sparse corpus: {sparse.documents:,} documents, {sparse.bytes / MB:.2f} MB, "
              f"{sum(sparse.labelled.values()) / sparse.documents:.1f} entities per document", flush=True)
    reference = reference_scanners(args.compare_with) if args.compare_with else None
    if reference is not None:
        for scanner in reference:
            scan_all(scanner, docs[:20], Counter())  # type: ignore[arg-type]

    runs: dict[str, Run] = {}
    base_ids, base_full = baseline_patterns(False), baseline_patterns(True)
    jobs: list[tuple[str, Sequence[str], Callable[[Counter], None]]] = [
        ("(a) re baseline, identifiers", docs, lambda c: [baseline_scan(base_ids, d, c) for d in docs]),
        ("(a+) re baseline + name/address/date", docs, lambda c: [baseline_scan(base_full, d, c) for d in docs]),
        ("qorgau identifiers_only", docs, lambda c: scan_all(ids_scanner, docs, c)),
        ("qorgau default", docs, lambda c: scan_all(full_scanner, docs, c)),
    ]
    if reference is not None:
        ref_ids, ref_full = reference
        jobs += [("reference identifiers_only", docs, lambda c: scan_all(ref_ids, docs, c)),  # type: ignore[arg-type]
                 ("reference default", docs, lambda c: scan_all(ref_full, docs, c))]  # type: ignore[arg-type]
    if sparse_docs:
        jobs += [
            ("sparse (a) re baseline", sparse_docs, lambda c: [baseline_scan(base_ids, d, c) for d in sparse_docs]),
            ("sparse (a+) re baseline", sparse_docs, lambda c: [baseline_scan(base_full, d, c) for d in sparse_docs]),
            ("sparse qorgau identifiers_only", sparse_docs, lambda c: scan_all(ids_scanner, sparse_docs, c)),
            ("sparse qorgau default", sparse_docs, lambda c: scan_all(full_scanner, sparse_docs, c)),
        ]
    # Round-robin: each round times every job once, and each job keeps its best round. On a shared machine
    # the load changes from minute to minute; interleaving gives every engine the same share of it.
    for _ in range(args.repeat):
        for label, corpus, body in jobs:
            run = timed(label, corpus, body, 1)
            if label not in runs or run.wall_s < runs[label].wall_s:
                runs[label] = run
    for label, run in runs.items():
        print(f"{label}: {run.mb_s:.2f} MB/s, {run.mb_cpu_s:.2f} MB/CPU-s", flush=True)

    equivalence: list[Equivalence] = []
    if reference is not None:
        for corpus_label, corpus in (("dense corpus", docs), ("sparse corpus", sparse_docs)):
            for name, ours, theirs in (("identifiers_only()", ids_scanner, reference[0]),
                                       ("default()", full_scanner, reference[1])):
                if corpus:
                    equivalence.append(compare(f"{name}, {corpus_label}", ours, theirs, corpus))
                    print(f"equivalence {equivalence[-1].label}: {equivalence[-1].differences} differences", flush=True)

    presidio, presidio_note = (None, "--no-presidio") if args.no_presidio else run_presidio(docs, args.presidio_mb)
    presidio_same: Counter | None = None
    if presidio:
        print(f"presidio: {presidio['bytes'] / MB / presidio['wall_s']:.3f} MB/s", flush=True)
        presidio_same = Counter()  # qorgau's counts on exactly the documents Presidio got
        scan_all(ids_scanner, docs[: presidio["documents"]], presidio_same)
    elif not args.no_presidio:
        print(f"presidio not measured: {presidio_note}", flush=True)
    presidio_sparse = None
    if presidio and sparse_docs:
        presidio_sparse, _ = run_presidio(sparse_docs, args.presidio_mb)

    profile, profile_rows = "", []
    breakdown: list[tuple[str, float]] = []
    if args.profile:
        one_mb = docs[: max(1, int(len(docs) / max(1.0, args.mb)))]
        breakdown = recognizer_breakdown(full_scanner, one_mb)
        for name, scanner in (("identifiers_only()", ids_scanner), ("default()", full_scanner)):
            text, rows = profile_scanner(scanner, one_mb)
            profile += f"cProfile of Scanner.{name} on ~1 MB (top by own time):\n\n{text}\n"
            profile_rows.append((name, rows))

    memory: list[MemoryRun] = []
    if args.memory_gb > 0:
        memory.append(stream_memory("identifiers_only()", ids_scanner, pool, int(args.memory_gb * 1000 * MB), SEED + 1))
        print(f"memory identifiers_only: growth {memory[-1].growth:+.1f} MiB", flush=True)
    if args.memory_gb_default > 0:
        memory.append(stream_memory("default()", full_scanner, pool, int(args.memory_gb_default * 1000 * MB), SEED + 2))
        print(f"memory default: growth {memory[-1].growth:+.1f} MiB", flush=True)

    report = build_report(args, info, comp, runs, presidio, presidio_same, presidio_note, memory, setup, load_start, load(),
                          time.perf_counter() - t0, sparse, presidio_sparse, equivalence)
    if breakdown:
        one_mb_bytes = sum(len(d.encode("utf-8")) for d in one_mb) / MB
        total = sum(t for _, t in breakdown) or 1.0
        report += ("\nWhere `Scanner.default()` spends its time, part by part (each part timed alone on "
                   f"{one_mb_bytes:.2f} MB of the corpus, CPU time, best of 3; PERSON's Natasha share is its time "
                   "minus the rules alone):\n\n| Part | ms per MB | share |\n| --- | ---: | ---: |\n"
                   + "\n".join(f"| {name} | {t * 1000 / one_mb_bytes:,.0f} | {t / total:.0%} |" for name, t in breakdown)
                   + f"\n| **all** | {total * 1000 / one_mb_bytes:,.0f} | 100% |\n")
    for name, rows in profile_rows:
        report += (f"\nWhere `Scanner.{name}` spends its time (cProfile, ~1 MB of the corpus, top own times; "
                   "profiling overhead inflates Python-level calls):\n\n"
                   "| Function | calls | own s | share | cumulative s |\n| --- | ---: | ---: | ---: | ---: |\n"
                   + "\n".join(rows) + "\n")
    print()
    print(report)
    if profile:
        print()
        print(profile)
    if not args.no_write:
        write_results(report)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)} (## scan_throughput)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
