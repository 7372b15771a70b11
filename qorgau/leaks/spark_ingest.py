"""Bulk ingest of leak files with PySpark (issue 8: backfills of 10⁸-row leaks; L-PD-LEAK-REGISTER).

The job (docs/leaks-ingest.md § Bulk ingest, docs/leaks-index.md § Bulk ingest with Spark):

1. Spark reads the files as lines (CSV rows are lines too); **on the executors** the discovery engine finds
   IINs, phones and e-mails, :func:`~qorgau.leaks.register.try_normalize` keeps the valid ones; ``distinct``.
2. **On the executors** the keyed OPRF turns each ``kind:value`` into its 32-byte token. The key seed travels
   in the task closure (never logged, never in an exception); the plaintext never reaches the driver.
3. ``repartitionByRange(P, "token")`` + ``sortWithinPartitions("token")``: every partition is one contiguous
   token range, sorted; each task writes it with :func:`~qorgau.leaks.segments.stage_partition` into
   ``staging/upload-<public_id>/`` (fixed name per partition: a retried task replaces its file).
4. The driver commits the bookkeeping in one transaction — a ``LeakUpload`` row (format ``spark``, status
   ``confirmed``, "publish pending") and A's ``record_upload`` — then publishes every staged segment in **one**
   manifest replacement, clears "publish pending", refreshes the index and notifies subscribers from the new
   segments. A crash after the commit is finished by :meth:`LeakIngest.reconcile`; a failed Spark job
   commits and publishes nothing (its staging directory is deleted).

Spark runs in local mode here (``local[*]``); on a cluster the executors must see the index directory (a shared
filesystem) — see docs/leaks-index.md for staging to object storage.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import audit
from ..core.db import utcnow
from ..core.errors import InvalidInput
from .ingest import UploadView, _job, ingest_for
from .models import LeakUpload
from .register import KINDS, index_directory

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["bulk_ingest"]

_ENTITY_KINDS = {"KZ_IIN": "iin", "PHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email"}
_BATCH = 20_000


def _extract(lines: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """Executor side: (kind, normalized) of every valid identifier in a partition's lines."""
    from qorgau.discovery.engine import Scanner
    from qorgau.leaks.register import try_normalize

    scanner = Scanner.identifiers_only(entity_types=set(_ENTITY_KINDS) | {"KZ_BIN"}, min_score=0.5)
    for row in lines:
        text = row[0] if not isinstance(row, str) else row
        if not text or not any(ch.isdigit() or ch == "@" for ch in text):
            continue
        for finding in scanner.scan(text, include_text=True):
            kind = _ENTITY_KINDS.get(finding.type)
            if kind is None:
                continue
            normalized = try_normalize(kind, finding.text or "")
            if normalized is not None:
                yield kind, normalized


def _make_tokenizer(seed: bytes, info: bytes) -> Any:
    def tokenize(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[bytearray]]:
        """Executor side: the keyed OPRF of each (kind, value), batched per kind."""
        from qorgau.leaks import oprf

        server = oprf.VoprfServer.derive(seed[:oprf.NS], info)
        batch: dict[str, list[str]] = {}
        for kind, value in pairs:
            values = batch.setdefault(kind, [])
            values.append(value)
            if len(values) >= _BATCH:
                yield from ((bytearray(t[:32]),) for t in oprf.tokens(server, kind, values))
                values.clear()
        for kind, values in batch.items():
            if values:
                yield from ((bytearray(t[:32]),) for t in oprf.tokens(server, kind, values))

    return tokenize


def _make_stager(directory: str, job: str, incident_id: int) -> Any:
    def stage(batches: Iterator[Any]) -> Iterator[Any]:
        """Executor side: one token range (sorted) → one staged segment file."""
        import pandas as pd
        from pyspark import TaskContext

        from qorgau.leaks.segments import stage_partition

        parts = [np.frombuffer(b"".join(bytes(t) for t in frame["token"]), np.uint8) for frame in batches]
        tokens = np.concatenate(parts).reshape(-1, 32) if parts else np.zeros((0, 32), np.uint8)
        info = stage_partition(directory, job, tokens, incident_id, partition=TaskContext.get().partitionId())
        if info is not None:
            yield pd.DataFrame({"name": [info.name], "entries": [info.entries]})

    return stage


def _seed(platform: Platform) -> tuple[bytes, bytes]:
    from .register import _KEY_ID, _KEY_INFO, _KEY_PURPOSE

    with platform.db.transaction() as session:
        return platform.keyring.get_or_create(session, _KEY_ID, _KEY_PURPOSE), _KEY_INFO


def bulk_ingest(platform: Platform, incident_id: int, input_paths: str | Sequence[str], *, partitions: int = 8,
                actor: str, organization_id: int | None = None, master: str = "local[*]",
                spark: Any = None) -> UploadView:
    """Ingest large leak files with Spark and commit them as one upload (format ``spark``). Returns its view."""
    from ..discovery.spark import build_session

    paths = [input_paths] if isinstance(input_paths, str) else list(input_paths)
    if not paths or not all(Path(p).is_file() for p in paths):
        raise InvalidInput("every input must be a readable file", field="input_paths")
    if not 1 <= int(partitions) <= 4096:
        raise InvalidInput("partitions must be between 1 and 4096", field="partitions")
    service = ingest_for(platform)
    with platform.db.reader(organization_id) as session:
        incident = service._incident(session, incident_id)
        org_id = incident.organization_id
    public_id = f"lu-{secrets.token_hex(10)}"
    job = _job(public_id)
    directory = index_directory(platform)
    directory.mkdir(parents=True, exist_ok=True)
    seed, info = _seed(platform)
    own_session = spark is None
    spark = spark or build_session(master, app_name="qorgau-leaks-ingest")
    try:
        from pyspark.sql.types import BinaryType, StructField, StructType

        lines = spark.read.text(paths).rdd
        pairs = lines.mapPartitions(_extract).distinct().cache()
        counts = {k: 0 for k in KINDS}
        counts.update({str(k): int(v) for k, v in pairs.countByKey().items()})
        tokens = spark.createDataFrame(pairs.mapPartitions(_make_tokenizer(seed, info)),
                                       StructType([StructField("token", BinaryType(), False)]))
        ranged = tokens.repartitionByRange(int(partitions), "token").sortWithinPartitions("token")
        staged = ranged.mapInPandas(_make_stager(str(directory), job, incident.id),
                                    "name string, entries long").collect()
        pairs.unpersist()
    except BaseException:
        shutil.rmtree(directory / "staging" / job, ignore_errors=True)
        raise
    finally:
        del seed
        if own_session:
            spark.stop()
    total = int(sum(r["entries"] for r in staged))
    names = sorted(r["name"] for r in staged)
    now = utcnow()
    try:
        with platform.db.transaction(org_id) as session:
            incident = service._incident(session, incident_id)
            row = LeakUpload(public_id=public_id, incident_id=incident.id,
                             filename=", ".join(Path(p).name for p in paths)[:300], format="spark",
                             status="confirmed", size_bytes=min(sum(Path(p).stat().st_size for p in paths), 2**31 - 1),
                             lines=0, counts=counts, samples={}, rejected=[], rejected_total=0,
                             spool_path=str(directory / "staging" / job),  # "publish pending" until published
                             segment_name=f"{len(names)} segments seg-{job}-p*", tokens_committed=total,
                             created_at=now, created_by=actor, expires_at=now, confirmed_at=now, confirmed_by=actor)
            session.add(row)
            session.flush()
            service._record_upload(session, incident.id, upload_public_id=public_id, tokens_committed=total,
                                   counts=counts, actor=actor)
            audit.record(session, actor=actor, action="leaks.bulk_ingested", object_type="leak_upload",
                         object_id=public_id, organization_id=org_id,
                         details={"incident_id": incident.id, "tokens_committed": total, "segments": len(names),
                                  "partitions": int(partitions), "files": len(paths)})
    except BaseException:
        shutil.rmtree(directory / "staging" / job, ignore_errors=True)
        raise
    service.finish_bulk(org_id, public_id)
    return service.get(org_id, public_id)
