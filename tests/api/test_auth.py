"""Authentication and authorisation: every bypass attempt is refused with problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from api.auth import issue_token
from api.settings import ApiSettings
from tests.api.conftest import bearer

TOPIC = "mhhs.consumption.if-021"


def _assert_problem(resp, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


def test_no_token_is_401(client: TestClient) -> None:
    _assert_problem(client.get(f"/v1/replays/{TOPIC}"), 401, "missing_token")


def test_expired_token_is_401(client: TestClient, api_settings: ApiSettings) -> None:
    token = issue_token(api_settings, "MDSV", "MDS", ttl=timedelta(seconds=-5))
    _assert_problem(client.get("/v1/topics", headers={"Authorization": f"Bearer {token}"}), 401, "token_expired")


@pytest.mark.parametrize("case", ["bad_signature", "alg_none", "wrong_audience", "wrong_issuer", "no_role"])
def test_forged_tokens_are_401(client: TestClient, api_settings: ApiSettings, case: str) -> None:
    now = datetime.now(UTC)
    claims = {
        "sub": "MDSV",
        "role": "MDS",
        "scope": "replay extract",
        "aud": api_settings.jwt_audience,
        "iss": api_settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    secret = api_settings.jwt_secret.get_secret_value()
    if case == "bad_signature":
        token = jwt.encode(claims, "some-other-secret-that-is-long-enough-0123", algorithm="HS256")
    elif case == "alg_none":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    elif case == "wrong_audience":
        token = jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256")
    elif case == "wrong_issuer":
        token = jwt.encode({**claims, "iss": "evil"}, secret, algorithm="HS256")
    else:
        token = jwt.encode({**claims, "role": "king"}, secret, algorithm="HS256")
    _assert_problem(client.get("/v1/topics", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


def test_missing_scope_is_403(client: TestClient, api_settings: ApiSettings) -> None:
    headers = bearer(api_settings, "MDSV", "MDS", ["extract"])
    _assert_problem(client.get(f"/v1/replays/{TOPIC}", headers=headers), 403, "missing_scope")
    _assert_problem(client.get("/v1/audit", headers=headers), 403, "missing_scope")


def test_tampered_cursor_is_400(client: TestClient, api_settings: ApiSettings) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    resp = client.get(f"/v1/replays/{TOPIC}", params={"limit": 5}, headers=headers)
    end = [line for line in resp.text.splitlines() if '"type":"end"' in line][-1]
    import orjson

    cursor = orjson.loads(end)["next_cursor"]
    assert cursor
    tampered = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    _assert_problem(
        client.get(f"/v1/replays/{TOPIC}", params={"cursor": tampered}, headers=headers), 400, "invalid_cursor"
    )
    other = bearer(api_settings, "LSSV", "LSS")
    _assert_problem(client.get(f"/v1/replays/{TOPIC}", params={"cursor": cursor}, headers=other), 400, "invalid_cursor")


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValueError, match="MHHS_API_JWT_SECRET"):
        ApiSettings(dev_mode=False)


def test_unknown_topic_is_404_and_bad_offsets_400(client: TestClient, api_settings: ApiSettings) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    _assert_problem(client.get("/v1/replays/nope", headers=headers), 404, "unknown_topic")
    _assert_problem(
        client.get(f"/v1/replays/{TOPIC}", params={"from_offsets": "x"}, headers=headers), 400, "invalid_offsets"
    )
    _assert_problem(client.get("/v1/no-such-route", headers=headers), 404, "not_found")
