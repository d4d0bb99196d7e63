"""The access log, for auditors and admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AuditPrincipal, ServicesDep
from api.errors import ApiError, problem_responses

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit", responses=problem_responses(401, 403))
def audit(
    principal: AuditPrincipal, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[dict[str, Any]]:
    """The access log, newest first (auditors and admins)."""
    if principal.role not in ("auditor", "admin"):
        raise ApiError(403, "forbidden_role", "only auditors and admins read the access log")
    return services.audit.recent(limit)
