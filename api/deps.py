"""FastAPI dependencies: the services, the caller (with the scopes a route needs) and shared parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from access.principal import Principal
from api.auth import verify_token
from api.errors import ApiError
from api.services import Services
from api.services.extracts import ExtractFilters
from contract.identifiers import is_ascii_digits
from lakehouse.formats import Format

bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT (sub, role, scope)")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_principal(
    security_scopes: SecurityScopes,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The verified caller; 401 without a valid token, 403 when it lacks a scope the route declares."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "missing_token", "send an OAuth2 bearer token: Authorization: Bearer <jwt>")
    principal = verify_token(services.api, credentials.credentials)
    for scope in security_scopes.scopes:
        if scope not in principal.scopes:
            raise ApiError(403, "missing_scope", f"this call needs the {scope!r} scope")
    return principal


PrincipalDep = Annotated[Principal, Security(get_principal)]
ReplayPrincipal = Annotated[Principal, Security(get_principal, scopes=["replay"])]
ExtractPrincipal = Annotated[Principal, Security(get_principal, scopes=["extract"])]
AuditPrincipal = Annotated[Principal, Security(get_principal, scopes=["audit"])]


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
    """The filters and pin every extract endpoint accepts, checked (400 rather than an empty answer)."""
    check_dates(date_from, date_to)
    bad = [m for m in mpans or () if len(m) != 13 or not is_ascii_digits(m)]
    if bad:
        raise ApiError(400, "invalid_mpan", f"an MPAN core is 13 digits: {', '.join(repr(m) for m in bad[:5])}")
    if as_of is not None:
        when = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        if when > datetime.now(UTC):
            raise ApiError(400, "as_of_in_future", f"as_of {as_of.isoformat()} is in the future (omit it: latest)")
    return ExtractFilters(date_from, date_to, tuple(mpans or ()), tuple(columns or ()), snapshot_id, as_of, tag, format)


def check_dates(date_from: date | None, date_to: date | None) -> None:
    """Refuse a date range that ends before it starts.

    Raises:
        ApiError: 400 ``invalid_dates``.
    """
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ApiError(400, "invalid_dates", f"date_from {date_from} is after date_to {date_to}")


FiltersDep = Annotated[ExtractFilters, Depends(extract_filters)]
