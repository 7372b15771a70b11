"""The audit log over HTTP: signed tree heads, entries, inclusion and consistency proofs.

Tree heads, the signing key and consistency proofs are public (they reveal only sizes and hashes), so
anyone can watch the log for forks. Entries and their inclusion proofs belong to their organization.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ...core import audit
from ...core.errors import NotFound
from ..deps import AuditorCtx, PlatformDep
from ..schemas import MAX_ID, AuditEntryOut, ConsistencyProofOut, InclusionProofOut, PublicKeyOut, TreeHeadOut

router = APIRouter(prefix="/audit", tags=["audit"])


def _entry_out(e: audit.AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(id=e.id, created_at=e.created_at, actor=e.actor, organization_id=e.organization_id,
                         action=e.action, object_type=e.object_type, object_id=e.object_id, details=e.details,
                         details_digest=e.details_digest, leaf=audit.entry_leaf_bytes(e).hex())


@router.get("/tree-head", response_model=TreeHeadOut, summary="The newest signed tree head (public)")
def tree_head(platform: PlatformDep) -> TreeHeadOut:
    with platform.db.reader() as s:
        size = audit.tree_size(s)
    head = audit.signed_head_covering(platform.db, platform.keyring, size - 1 if size else None)
    return TreeHeadOut(**head.to_dict())


@router.get("/public-key", response_model=PublicKeyOut, summary="The Ed25519 key that signs tree heads (public)")
def public_key(platform: PlatformDep) -> PublicKeyOut:
    with platform.db.transaction() as s:  # on a platform that has signed nothing yet, this creates the key
        key = audit.public_key(s, platform.keyring)
    return PublicKeyOut(key_id=audit.SIGNING_KEY_ID, algorithm="Ed25519", public_key=key.hex())


@router.get("/consistency", response_model=ConsistencyProofOut,
            summary="Prove that the log of size `second` extends the log of size `first` (public)")
def consistency(platform: PlatformDep, first: int = Query(ge=1, le=MAX_ID), second: int = Query(ge=1, le=MAX_ID)) -> ConsistencyProofOut:
    with platform.db.reader() as s:
        proof = audit.consistency_proof(s, first, second)
    return ConsistencyProofOut(**proof.to_dict(), verified=proof.verify())


@router.get("/entries", response_model=list[AuditEntryOut], summary="My organization's audit entries, newest first")
def list_entries(ctx: AuditorCtx, limit: int = Query(50, ge=1, le=500), before: int | None = Query(None, ge=0, le=MAX_ID),
                 action: str | None = Query(None, max_length=64)) -> list[AuditEntryOut]:
    with ctx.read() as s:
        return [_entry_out(e) for e in audit.list_entries(s, limit=limit, before=before, action=action)]


@router.get("/entries/{entry_id}", response_model=AuditEntryOut, summary="One audit entry")
def get_entry(entry_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: AuditorCtx) -> AuditEntryOut:
    with ctx.read() as s:
        return _entry_out(audit.get_entry(s, entry_id))


@router.get("/entries/{entry_id}/proof", response_model=InclusionProofOut,
            summary="Inclusion proof of an entry against a signed tree head")
def entry_proof(entry_id: Annotated[int, Path(ge=0, le=MAX_ID)], ctx: AuditorCtx, tree_size: int | None = Query(None, ge=1, le=MAX_ID)) -> InclusionProofOut:
    with ctx.read() as s:
        entry = audit.get_entry(s, entry_id)  # 404 before revealing anything about other tenants' entries
    if tree_size is None:
        head = audit.signed_head_covering(ctx.platform.db, ctx.platform.keyring, entry_id)
    else:
        with ctx.read() as s:
            head = audit.tree_head_at(s, tree_size)
        if head is None:
            raise NotFound("no signed tree head of that size", field="tree_size")
    with ctx.read() as s:
        proof = audit.prove_entry(s, entry, head.tree_size)
    return InclusionProofOut(**proof.to_dict(), tree_head=TreeHeadOut(**head.to_dict()),
                             verified=proof.verify() and proof.root_hash == head.root_hash)
