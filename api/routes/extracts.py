"""Filtered extracts: raw events, the typed tables and consumption aggregates, in four formats."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from access.aggregates import AggregateLevel
from access.principal import Principal
from api.deps import ExtractPrincipal, FiltersDep, ServicesDep
from api.errors import ApiError, problem_responses
from api.services import Services
from api.services.audit import AccessRecord, checksum_for
from api.services.extracts import Extract
from api.streaming import audited_stream, ndjson_end
from lakehouse.current import Versions
from lakehouse.formats import MEDIA_TYPES, Format, stream

router = APIRouter(prefix="/v1", tags=["extract"])


def extract_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of an extract route: the rows in any format, or problem+json."""
    return {
        **problem_responses(400, 401, 403, 404),
        200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": description},
    }


def stream_extract(
    services: Services, principal: Principal, endpoint: str, filters: Mapping[str, Any], extract: Extract, fmt: Format
) -> StreamingResponse:
    """Stream an extract in ``fmt`` (Parquet footer / Arrow trailer / NDJSON end line), audited."""
    snap, batches, schema = extract
    record = AccessRecord(principal, endpoint, filters, snapshot_id=snap, checksum_algorithm=checksum_for(fmt))

    def counted() -> Iterator[pa.RecordBatch]:
        for b in batches:
            record.rows += b.num_rows
            yield b

    def footer() -> dict[str, str]:  # what the NDJSON end line says, for the binary formats
        return {"mhhs.snapshot_id": str(snap), "mhhs.rows": str(record.rows)}

    end = ndjson_end if fmt == "ndjson" else None
    return audited_stream(services.audit, record, stream(counted(), schema, fmt, footer), MEDIA_TYPES[fmt], end)


@router.get("/events", response_class=StreamingResponse, responses=extract_responses("the rows"))
def events(
    principal: ExtractPrincipal,
    services: ServicesDep,
    filters: FiltersDep,
    topics: Annotated[list[str] | None, Query(examples=[["mhhs.consumption.if-021"]])] = None,
    interface: Annotated[str | None, Query(examples=["IF-021"], max_length=16)] = None,
) -> StreamingResponse:
    """A filtered extract of raw events from one pinned snapshot, masked for the caller's role."""
    extract = services.extracts.events(principal, filters, tuple(topics or ()), interface)
    audit = {**filters.to_json(), "topics": topics, "interface": interface}
    return stream_extract(services, principal, "/v1/events", audit, extract, filters.format)  # type: ignore[arg-type]


@router.get(
    "/consumption",
    response_class=StreamingResponse,
    summary="A filtered extract of the typed consumption table, masked and entitled",
    responses=extract_responses("the rows"),
)
def consumption(
    principal: ExtractPrincipal,
    services: ServicesDep,
    filters: FiltersDep,
    versions: Annotated[
        Versions, Query(description="latest: the current version of each half hour; all: every version sent")
    ] = "latest",
) -> StreamingResponse:
    """The typed consumption table: by default the current version of each MPAN x quantity x half hour."""
    extract = services.extracts.typed(principal, "consumption", filters, versions)
    audit = {**filters.to_json(), "versions": versions}
    return stream_extract(services, principal, "/v1/consumption", audit, extract, filters.format)  # type: ignore[arg-type]


@router.get(
    "/registration",
    response_class=StreamingResponse,
    summary="A filtered extract of the typed registration table, masked and entitled",
    responses=extract_responses("the rows"),
)
def registration(principal: ExtractPrincipal, services: ServicesDep, filters: FiltersDep) -> StreamingResponse:
    """The typed registration table: appointment intervals with the state in force over each."""
    extract = services.extracts.typed(principal, "registration", filters)
    return stream_extract(services, principal, "/v1/registration", filters.to_json(), extract, filters.format)  # type: ignore[arg-type]


@router.get(
    "/consumption/aggregate", response_class=StreamingResponse, responses=extract_responses("one row per group")
)
def consumption_aggregate(
    principal: ExtractPrincipal,
    services: ServicesDep,
    filters: FiltersDep,
    by: Annotated[AggregateLevel, Query(description="sum per UTC day or per half hour")] = "day",
) -> StreamingResponse:
    """Consumption summed over the caller's entitled MPANs, per date (or half hour), quantity and distributor.

    The aggregate-only view of half-hourly data (LDSOs, third parties): groups of fewer MPANs
    than the configured minimum are left out, and no MPAN appears in the output.
    """
    if filters.columns:
        raise ApiError(400, "unknown_column", "column selection does not apply to aggregates")
    extract = services.aggregates.consumption(principal, filters, by)
    audit = {**filters.to_json(), "by": by}
    return stream_extract(services, principal, "/v1/consumption/aggregate", audit, extract, filters.format)  # type: ignore[arg-type]
