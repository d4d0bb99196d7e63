"""The FastAPI application: thin routes over ``EventStoreService``; errors as problem+json."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from access.principal import Principal
from api.auth import verify_token
from api.errors import ApiError, problem_responses
from api.formats import MEDIA_TYPES, Format, ndjson_lines, stream
from api.service import AccessRecord, AggregateLevel, EventStoreService, ExtractFilters
from api.settings import ApiSettings
from contract.schemas import SchemaKey, list_schemas, load_schema
from lakehouse.settings import LakehouseSettings

log = logging.getLogger(__name__)


def _extract_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of an extract route: the rows in any format, or problem+json."""
    return {
        **problem_responses(400, 401, 403, 404),
        200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": description},
    }

bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT (sub, role, scope)")


def _problem(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        exc.problem(str(request.url.path)),
        status_code=exc.status,
        media_type="application/problem+json",
        headers=headers,
    )


def get_service(request: Request) -> EventStoreService:
    service: EventStoreService = request.app.state.service
    return service


ServiceDep = Annotated[EventStoreService, Depends(get_service)]


def get_principal(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing_token", "send an OAuth2 bearer token: Authorization: Bearer <jwt>")
    return verify_token(service.api, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def extract_filters(
    date_from: Annotated[date | None, Query(examples=["2026-03-28"], description="settlement date from")] = None,
    date_to: Annotated[date | None, Query(examples=["2026-03-29"], description="settlement date to")] = None,
    mpans: Annotated[list[str] | None, Query(max_length=1000)] = None,
    columns: Annotated[list[str] | None, Query()] = None,
    snapshot_id: Annotated[int | None, Query()] = None,
    as_of: Annotated[datetime | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Format, Query()] = "ndjson",
) -> ExtractFilters:
    """The filters and pin every extract endpoint accepts."""
    return ExtractFilters(date_from, date_to, tuple(mpans or ()), tuple(columns or ()), snapshot_id, as_of, tag, format)


FiltersDep = Annotated[ExtractFilters, Depends(extract_filters)]


def require(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise ApiError(403, "missing_scope", f"this call needs the {scope!r} scope")


def _parse_offsets(raw: str | None, name: str) -> dict[int, int] | None:
    if not raw:
        return None
    try:
        out = {}
        for part in raw.split(","):
            p, o = part.split(":")
            if int(p) < 0 or int(o) < 0:
                raise ValueError(part)
            out[int(p)] = int(o)
        return out
    except ValueError as exc:
        raise ApiError(400, "invalid_offsets", f"{name} must look like 0:120,1:98 (partition:offset)") from exc


def create_app(api: ApiSettings, lake: LakehouseSettings) -> FastAPI:
    """Build the application (opens the catalog once, warms the tables up at start-up)."""
    service = EventStoreService(api, lake)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(service.warm_up)
        except Exception as exc:  # not fatal: /ready reports the catalog, requests retry
            log.warning("warm_up_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="MHHS Event Store API",
        version="0.1.0",
        description="Consumer-recovery replays and filtered extracts of every MHHS broker event, masked per "
        "role, entitled per row and audited. Errors are RFC 9457 problem+json with a stable `code`.",
    )
    app.state.service = service
    registry = CollectorRegistry()
    requests = Counter("mhhs_api_requests", "API requests", ["route", "status"], registry=registry)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _problem(request, ApiError(422, "invalid_request", detail[:1000]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _problem(request, ApiError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _problem(request, ApiError(500, "internal_error", "an unexpected error occurred; it was logged"))

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.get("/health", tags=["operations"], responses=problem_responses())
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], responses=problem_responses(503))
    def ready(service: ServiceDep) -> dict[str, str]:
        """Readiness: the Iceberg catalog answers."""
        try:
            service.catalog.list_tables(service.lake.namespace)
        except Exception as exc:
            raise ApiError(503, "catalog_unavailable", f"the catalog does not answer: {exc}") from exc
        return {"status": "ready"}

    @app.get("/metrics", tags=["operations"], response_class=Response, responses=problem_responses())
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/topics", tags=["discovery"], responses=problem_responses(401))
    def topics(principal: PrincipalDep, service: ServiceDep) -> list[dict[str, Any]]:
        """Every MHHS topic: partitions, rows held, settlement dates held, next offsets per partition."""
        return service.topics()

    @app.get("/v1/snapshots", tags=["discovery"], responses=problem_responses(401, 404))
    def snapshots(
        principal: PrincipalDep, service: ServiceDep, table: Annotated[str, Query(examples=["events"])] = "events"
    ) -> list[dict[str, Any]]:
        """Retained snapshots of a table, oldest first, with tags."""
        return service.snapshots(table)

    @app.get("/v1/schemas/{interface}/{version}", tags=["discovery"], responses=problem_responses(401, 404))
    def schema(
        principal: PrincipalDep,
        interface: Annotated[str, Path(examples=["IF-021"], max_length=16)],
        version: Annotated[str, Path(examples=["001"], max_length=8)],
    ) -> dict[str, Any]:
        """The JSON Schema of an interface version."""
        if SchemaKey(interface, version) not in list_schemas():
            raise ApiError(404, "unknown_schema", f"no schema for {interface} version {version}")
        return load_schema(interface, version)

    @app.get(
        "/v1/replays/{topic}",
        tags=["replay"],
        response_class=StreamingResponse,
        responses={
            **problem_responses(400, 401, 403, 404),
            200: {
                "content": {"application/x-ndjson": {}},
                "description": "event lines, then one end line with resume_offsets",
            },
        },
    )
    def replay(
        principal: PrincipalDep,
        service: ServiceDep,
        topic: Annotated[str, Path(examples=["mhhs.consumption.if-021"], max_length=128)],
        from_offsets: Annotated[str | None, Query(examples=["0:120,1:98"], max_length=4000)] = None,
        from_time: Annotated[datetime | None, Query(examples=["2026-03-28T00:00:00Z"])] = None,
        to_offsets: Annotated[str | None, Query(examples=["0:500"], max_length=4000)] = None,
        limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
        cursor: Annotated[str | None, Query(max_length=8000)] = None,
    ) -> StreamingResponse:
        """Everything a consumer missed, from its offsets or a time, with the positions to resume Kafka."""
        require(principal, "replay")
        if from_offsets and from_time:
            raise ApiError(400, "conflicting_start", "give from_offsets or from_time, not both")
        page = service.replay(
            principal,
            topic,
            _parse_offsets(from_offsets, "from_offsets"),
            from_time,
            _parse_offsets(to_offsets, "to_offsets"),
            min(limit, service.api.max_page_size),
            cursor,
        )
        record = AccessRecord(
            principal,
            f"/v1/replays/{topic}",
            {
                "from_offsets": from_offsets,
                "from_time": from_time,
                "to_offsets": to_offsets,
                "limit": limit,
                "cursor": bool(cursor),
            },
            snapshot_id=page.snapshot_id,
        )

        def body() -> Iterator[bytes]:
            try:
                for table in page.batches(first=64, rest=service.api.batch_rows):
                    if table.num_rows == 0:
                        continue
                    chunk = ndjson_lines(table.combine_chunks().to_batches()[0], "event")
                    record.rows += table.num_rows
                    record.nbytes += len(chunk)
                    record.digest.update(chunk)
                    yield chunk
                end = (
                    orjson.dumps(
                        {
                            "type": "end",
                            "snapshot_id": page.snapshot_id,
                            "rows": record.rows,
                            "sha256": record.digest.hexdigest(),
                            "resume_offsets": {str(p): n for p, n in sorted(page.resume_offsets.items())},
                            "next_cursor": page.next_cursor,
                        }
                    )
                    + b"\n"
                )
                record.nbytes += len(end)
                yield end
            except Exception:
                record.outcome = "stream_failed"
                raise
            finally:
                service.audit(record)

        return StreamingResponse(
            body(), media_type="application/x-ndjson", headers={"X-MHHS-Snapshot-Id": str(page.snapshot_id)}
        )

    @app.get(
        "/v1/events",
        tags=["extract"],
        response_class=StreamingResponse,
        responses=_extract_responses("the rows"),
    )
    def events(
        principal: PrincipalDep,
        service: ServiceDep,
        filters: FiltersDep,
        topics: Annotated[list[str] | None, Query(examples=[["mhhs.consumption.if-021"]])] = None,
        interface: Annotated[str | None, Query(examples=["IF-021"], max_length=16)] = None,
    ) -> StreamingResponse:
        """A filtered extract of raw events from one pinned snapshot, masked for the caller's role."""
        require(principal, "extract")
        snap, batches, schema_ = service.extract_events(principal, filters, tuple(topics or ()), interface)
        audit = {**filters.to_json(), "topics": topics, "interface": interface}
        return _stream_extract(service, principal, "/v1/events", audit, snap, batches, schema_, filters.format)

    def typed_route(name: str) -> None:
        @app.get(
            f"/v1/{name}",
            tags=["extract"],
            response_class=StreamingResponse,
            name=f"extract_{name}",
            summary=f"A filtered extract of the typed {name} table, masked and entitled",
            responses=_extract_responses("the rows"),
        )
        def typed(principal: PrincipalDep, service: ServiceDep, filters: FiltersDep) -> StreamingResponse:
            require(principal, "extract")
            snap, batches, schema_ = service.extract_typed(principal, name, filters)
            return _stream_extract(
                service, principal, f"/v1/{name}", filters.to_json(), snap, batches, schema_, filters.format
            )

    typed_route("consumption")
    typed_route("registration")

    @app.get(
        "/v1/consumption/aggregate",
        tags=["extract"],
        response_class=StreamingResponse,
        responses=_extract_responses("one row per group"),
    )
    def consumption_aggregate(
        principal: PrincipalDep,
        service: ServiceDep,
        filters: FiltersDep,
        by: Annotated[AggregateLevel, Query(description="sum per UTC day or per half hour")] = "day",
    ) -> StreamingResponse:
        """Consumption summed over the caller's entitled MPANs, per date (or half hour), quantity and distributor.

        The aggregate-only view of half-hourly data (LDSOs, third parties): groups of fewer MPANs
        than the configured minimum are left out, and no MPAN appears in the output.
        """
        require(principal, "extract")
        if filters.columns:
            raise ApiError(400, "unknown_column", "column selection does not apply to aggregates")
        snap, batches, schema_ = service.extract_consumption_aggregate(principal, filters, by)
        audit = {**filters.to_json(), "by": by}
        return _stream_extract(
            service, principal, "/v1/consumption/aggregate", audit, snap, batches, schema_, filters.format
        )

    @app.get("/v1/audit", tags=["audit"], responses=problem_responses(401, 403))
    def audit(
        principal: PrincipalDep, service: ServiceDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
    ) -> list[dict[str, Any]]:
        """The access log, newest first (auditors and admins)."""
        require(principal, "audit")
        if principal.role not in ("auditor", "admin"):
            raise ApiError(403, "forbidden_role", "only auditors and admins read the access log")
        return service.audit_log(limit)

    return app


def _stream_extract(
    service: EventStoreService,
    principal: Principal,
    endpoint: str,
    filters: Mapping[str, Any],
    snap: int | None,
    batches: Iterator[Any],
    schema_: Any,
    format: Format,
) -> StreamingResponse:
    """Stream an extract in ``format``, then audit it (rows, bytes, sha256, outcome)."""
    record = AccessRecord(principal, endpoint, filters, snapshot_id=snap)

    def counted() -> Iterator[Any]:
        for b in batches:
            record.rows += b.num_rows
            yield b

    def footer() -> dict[str, str]:  # Parquet footer / Arrow trailer: what the NDJSON end line says
        return {"mhhs.snapshot_id": str(snap), "mhhs.rows": str(record.rows)}

    def body() -> Iterator[bytes]:
        try:
            for chunk in stream(counted(), schema_, format, footer):
                record.nbytes += len(chunk)
                record.digest.update(chunk)
                yield chunk
            if format == "ndjson":
                yield (
                    orjson.dumps(
                        {"type": "end", "snapshot_id": snap, "rows": record.rows, "sha256": record.digest.hexdigest()}
                    )
                    + b"\n"
                )
        except Exception:
            record.outcome = "stream_failed"
            raise
        finally:
            service.audit(record)

    return StreamingResponse(body(), media_type=MEDIA_TYPES[format], headers={"X-MHHS-Snapshot-Id": str(snap)})
