"""Liveness and metrics, outside the versioned API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from ... import __version__
from ...core import audit, migrate
from ..deps import PlatformDep
from ..schemas import HealthOut

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut, summary="Is the platform up and its database reachable?")
def health(platform: PlatformDep) -> JSONResponse:
    try:
        platform.db.ping()
        revision = migrate.current_revision(platform.db.engine)
        with platform.db.reader() as session:
            size = audit.tree_size(session)
        body = HealthOut(status="ok", version=__version__, database=platform.db.dialect,
                         schema_revision=revision, audit_tree_size=size)
        status = 200 if revision == migrate.head_revision(platform.db.engine) else 503
        if status != 200:
            body.status = "degraded"
    except SQLAlchemyError as exc:
        body = HealthOut(status="degraded", version=__version__, database=f"unreachable ({type(exc).__name__})",
                         schema_revision=None, audit_tree_size=None)
        status = 503
    return JSONResponse(body.model_dump(), status_code=status)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
