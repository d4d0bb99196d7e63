"""Bearer JWT authentication: who is calling, in which market role, with which scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from api.errors import ApiError
from api.settings import ApiSettings

Role = Literal[
    "SUP",
    "REGS",
    "SDS",
    "ADS",
    "UMSDS",
    "MSS",
    "MSA",
    "UMSO",
    "LDSO",
    "MDS",
    "LSS",
    "analyst",
    "auditor",
    "third_party",
    "admin",
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
SCOPES = ("replay", "extract", "audit", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    subject: str
    role: str
    scopes: frozenset[str]
    grants: tuple[str, ...] = ()  # third parties: the MPANs a grant lists


def issue_token(
    settings: ApiSettings,
    subject: str,
    role: str,
    scopes: list[str] | None = None,
    ttl: timedelta = timedelta(hours=1),
    grants: list[str] | None = None,
) -> str:
    """Sign a development token (HS256 only).

    Raises:
        ValueError: for an unknown role or scope, or when the API verifies RS256 tokens.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    scopes = scopes if scopes is not None else ["replay", "extract"]
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scopes {bad}; choose from {', '.join(SCOPES)}")
    if settings.jwt_algorithm != "HS256":
        raise ValueError("tokens can only be issued here for HS256; use your identity provider for RS256")
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role,
        "scope": " ".join(scopes),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    if grants:
        claims["grants"] = grants
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def verify_token(settings: ApiSettings, token: str) -> Principal:
    """Verify signature, algorithm, audience, issuer and expiry; return the caller.

    Raises:
        ApiError: 401 ``invalid_token`` for anything wrong with the token.
    """
    if settings.jwt_algorithm == "HS256":
        key: str | bytes = settings.jwt_secret.get_secret_value()
    else:
        assert settings.jwt_public_key_file is not None
        key = settings.jwt_public_key_file.read_bytes()
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(401, "token_expired", "the bearer token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise ApiError(401, "invalid_token", f"the bearer token is not valid: {exc}") from exc
    role = claims.get("role")
    if role not in ROLES:
        raise ApiError(401, "invalid_token", "the token names no known role")
    scopes = frozenset(str(claims.get("scope", "")).split())
    grants = tuple(str(g) for g in claims.get("grants", []) if isinstance(g, str))
    return Principal(str(claims["sub"]), role, scopes, grants)
