"""The FastAPI application: assembles the routers over the services; errors as problem+json."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, status_of
from api.routes import audit, deliveries, discovery, extracts, operations, quality, replay
from api.services import build_services
from api.services.errors import ServiceError
from api.settings import ApiSettings
from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings

log = logging.getLogger(__name__)


def _problem(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        exc.problem(str(request.url.path)),
        status_code=exc.status,
        media_type="application/problem+json",
        headers=headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    """One rendering of every error as problem+json, whoever raised it."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _problem(request, exc)

    @app.exception_handler(ServiceError)
    @app.exception_handler(LakehouseError)
    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        status, code, detail = status_of(exc)
        return _problem(request, ApiError(status, code, detail))

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
        log.error("unexpected_error", extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"})
        return _problem(request, ApiError(500, "internal_error", "an unexpected error occurred; it was logged"))


def create_app(api: ApiSettings, lake: LakehouseSettings) -> FastAPI:
    """Build the application (opens the catalog once, warms the tables up at start-up)."""
    services = build_services(api, lake)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(services.warm_up)
        except Exception as exc:  # not fatal: /ready reports the catalog, requests retry
            log.warning("warm_up_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        try:  # what API processes killed mid-stream left in their journals
            await run_in_threadpool(services.audit.recover)
        except Exception as exc:  # not fatal: the journals stay for the next start-up
            log.error("audit_recovery_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        yield
        services.audit.close()

    app = FastAPI(
        lifespan=lifespan,
        title="MHHS Event Store API",
        version="0.1.0",
        description="Consumer-recovery replays and filtered extracts of every MHHS broker event, masked per "
        "role, entitled per row and audited. Errors are RFC 9457 problem+json with a stable `code`.",
    )
    app.state.services = services
    app.state.metrics = registry = CollectorRegistry()
    requests = Counter("mhhs_api_requests", "API requests", ["route", "status"], registry=registry)
    _install_error_handlers(app)

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    for module in (operations, discovery, replay, extracts, quality, deliveries, audit):
        app.include_router(module.router)
    return app
