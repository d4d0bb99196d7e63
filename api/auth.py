"""Bearer JWT authentication: who is calling, in which market role, with which scopes."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from access.principal import ROLES, SCOPES, Principal
from api.errors import ApiError
from api.settings import ApiSettings


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


@functools.lru_cache(maxsize=8)
def _jwks_client(url: str, lifespan: int) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=max(lifespan, 1), timeout=10)


@functools.lru_cache(maxsize=8)
def _public_key(path: Path) -> bytes:
    return path.read_bytes()


def _verification_key(settings: ApiSettings, token: str) -> Any:
    """The key that must have signed ``token``: the HS256 secret, the PEM key, or the JWKS key named by ``kid``.

    Raises:
        ApiError: 401 when the token names no key the JWKS holds; 503 when the JWKS cannot be fetched.
    """
    if settings.jwt_algorithm == "HS256":
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_public_key_file is not None:
        return _public_key(settings.jwt_public_key_file)
    assert settings.jwt_jwks_url is not None
    client = _jwks_client(settings.jwt_jwks_url, settings.jwks_cache_seconds)
    try:
        return client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError as exc:
        raise ApiError(503, "jwks_unavailable", "the identity provider's keys cannot be fetched") from exc
    except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
        raise ApiError(401, "invalid_token", f"the bearer token is not valid: {exc}") from exc


def verify_token(settings: ApiSettings, token: str) -> Principal:
    """Verify signature, algorithm, audience, issuer and expiry; return the caller.

    Raises:
        ApiError: 401 ``invalid_token`` for anything wrong with the token.
    """
    key = _verification_key(settings, token)
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
