"""Bearer headers for API tests."""

from __future__ import annotations

from api.auth import issue_token
from api.settings import ApiSettings


def bearer(
    settings: ApiSettings, subject: str, role: str, scopes: list[str] | None = None, grants: list[str] | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, subject, role, scopes, grants=grants)}"}
