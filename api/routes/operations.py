"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.errors import problem_responses

router = APIRouter(tags=["operations"])


@router.get("/health", responses=problem_responses())
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses=problem_responses(503))
def ready(services: ServicesDep) -> dict[str, str]:
    """Readiness: the Iceberg catalog answers."""
    services.store.ping()
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, responses=problem_responses())
def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
