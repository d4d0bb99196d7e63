"""Data quality over HTTP: the latest runs, the findings a caller may see, completeness, the Data Docs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, StreamingResponse

from api.deps import AuditPrincipal, ExtractPrincipal, PrincipalDep, ServicesDep, check_dates
from api.errors import ApiError, problem_responses
from api.routes.extracts import extract_responses, stream_extract
from api.services.audit import AccessRecord
from lakehouse.formats import Format

router = APIRouter(prefix="/v1", tags=["quality"])
OPERATORS = ("auditor", "admin")
DateQuery = Annotated[date | None, Query(examples=["2026-03-28"])]


@router.get("/quality/runs", responses=problem_responses(400, 401))
def quality_runs(
    principal: PrincipalDep, services: ServicesDep, date_from: DateQuery = None, date_to: DateQuery = None
) -> list[dict[str, Any]]:
    """The latest quality run of each UTC settlement date: one row per suite, counts per rule, success."""
    check_dates(date_from, date_to)
    return services.quality.runs(date_from, date_to)


@router.get("/quality/findings", response_class=StreamingResponse, responses=extract_responses("the findings"))
def quality_findings(
    principal: ExtractPrincipal,
    services: ServicesDep,
    rule: Annotated[int | None, Query(ge=1, le=12, description="DOMAIN.md's rule number")] = None,
    severity: Annotated[Literal["error", "warning", "info", "kpi"] | None, Query()] = None,
    date_from: DateQuery = None,
    date_to: DateQuery = None,
    format: Annotated[Format, Query()] = "ndjson",
) -> StreamingResponse:
    """Findings of the latest run of each date, as the caller may see them.

    A supplier sees the findings on its MPANs for its dates; analysts and third parties see tokens.
    """
    check_dates(date_from, date_to)
    batches, schema = services.quality.findings(principal, rule, severity, date_from, date_to)
    filters = {"rule": rule, "severity": severity, "date_from": date_from, "date_to": date_to, "format": format}
    extract = (services.guard.current_snapshot(), batches, schema)
    return stream_extract(services, principal, "/v1/quality/findings", filters, extract, format)


@router.get("/completeness", responses=problem_responses(400, 401))
def completeness(
    principal: PrincipalDep,
    services: ServicesDep,
    topic: Annotated[str | None, Query(examples=["mhhs.consumption.if-021"], max_length=128)] = None,
    date: DateQuery = None,
) -> list[dict[str, Any]]:
    """The latest completeness certificate of each topic x UTC settlement date (`mhhs quality certify`)."""
    return services.quality.completeness(topic, date)


@router.get(
    "/quality/docs/{path:path}",
    response_class=FileResponse,
    responses={**problem_responses(401, 403, 404), 200: {"content": {"text/html": {}}, "description": "a page"}},
)
def quality_docs(
    principal: AuditPrincipal, services: ServicesDep, path: Annotated[str, Path(max_length=500)]
) -> FileResponse:
    """The Data Docs site (static, offline), for auditors and admins."""
    if principal.role not in OPERATORS:
        raise ApiError(403, "forbidden_role", "the Data Docs are for auditors and admins")
    target = services.quality.docs_file(path)
    record = AccessRecord(principal, "/v1/quality/docs", {"path": path})
    body = target.read_bytes()  # a page of the static site: small
    record.nbytes = len(body)
    record.digest.update(body)  # logged with its checksum, as every other access
    services.audit.write(record)
    return FileResponse(target)
