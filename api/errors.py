"""HTTP errors as RFC 9457 problem+json: one error type, and the one mapping from domain errors to statuses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.services.errors import ForbiddenError, InvalidRequestError, NotFoundError, ServiceError
from lakehouse.errors import CatalogUnavailableError, LakehouseError, SnapshotNotFoundError

PROBLEM_TYPE = "https://mhhs-event-store.example/problems/"


class Problem(BaseModel):
    """RFC 9457 problem details with a stable machine-readable ``code``."""

    type: str = Field(examples=[PROBLEM_TYPE + "not_found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    code: str = Field(examples=["not_found"])
    detail: str = Field(examples=["no such topic"])
    instance: str | None = None


class ApiError(Exception):
    """An error an endpoint answers with; ``code`` is stable, ``detail`` is for people."""

    def __init__(self, status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring problem+json for ``statuses`` (and 422, 500 always; 503 with 401)."""
    out: dict[int | str, dict[str, Any]] = {}
    extra = (503,) if 401 in statuses else ()  # an authenticated route answers 503 when the JWKS is unreachable
    for status in (*statuses, *extra, 422, 500):
        out[status] = {"model": Problem, "content": {"application/problem+json": {}}, "description": "problem"}
    return out


def status_of(exc: Exception) -> tuple[int, str, str]:
    """(HTTP status, stable code, detail) for a domain error raised below the HTTP layer."""
    if isinstance(exc, ServiceError):
        if isinstance(exc, NotFoundError):
            return 404, exc.code, exc.detail
        if isinstance(exc, ForbiddenError):
            return 403, exc.code, exc.detail
        if isinstance(exc, InvalidRequestError):
            return 400, exc.code, exc.detail
        return 500, exc.code, exc.detail
    if isinstance(exc, SnapshotNotFoundError):
        return 404, "snapshot_not_found", str(exc)
    if isinstance(exc, CatalogUnavailableError):
        return 503, "catalog_unavailable", str(exc)
    if isinstance(exc, LakehouseError):
        return 400, "invalid_request", str(exc)
    return 500, "internal_error", "an unexpected error occurred; it was logged"
