"""Authentication and authorisation: every bypass attempt is refused with problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from api.auth import issue_token
from api.settings import ApiSettings
from tests.support.claims import bearer

TOPIC = "mhhs.consumption.if-021"


def _assert_problem(resp, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


def _claims(settings: ApiSettings) -> dict[str, object]:
    """A valid MDS token's claims for ``settings`` (tests then break one thing at a time)."""
    now = datetime.now(UTC)
    return {
        "sub": "MDSV",
        "role": "MDS",
        "scope": "replay extract",
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }


def test_no_token_is_401(client: TestClient) -> None:
    _assert_problem(client.get(f"/v1/replays/{TOPIC}"), 401, "missing_token")


def test_expired_token_is_401(client: TestClient, api_settings: ApiSettings) -> None:
    token = issue_token(api_settings, "MDSV", "MDS", ttl=timedelta(seconds=-5))
    _assert_problem(client.get("/v1/topics", headers={"Authorization": f"Bearer {token}"}), 401, "token_expired")


@pytest.mark.parametrize("case", ["bad_signature", "alg_none", "wrong_audience", "wrong_issuer", "no_role"])
def test_forged_tokens_are_401(client: TestClient, api_settings: ApiSettings, case: str) -> None:
    claims = _claims(api_settings)
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


class _JwksServer:
    """The identity provider's JWKS endpoint, on 127.0.0.1, serving whatever keys the test sets."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.body = b'{"keys": []}'
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_rs256_tokens_are_verified_against_the_jwks(api_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa

    from api.app import create_app

    ours, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ours.public_key()))
    jwks = _JwksServer()
    jwks.body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    settings = ApiSettings(
        jwt_algorithm="RS256",
        jwt_jwks_url=jwks.url,
        mask_secret="m" * 40,  # type: ignore[arg-type]
        cursor_secret="c" * 40,  # type: ignore[arg-type]
    )
    claims = _claims(settings)

    def call(token: str):  # type: ignore[no-untyped-def]
        return client.get("/v1/topics", headers={"Authorization": f"Bearer {token}"})

    try:
        with TestClient(create_app(settings, api_lake)) as client:
            assert call(jwt.encode(claims, ours, algorithm="RS256", headers={"kid": "k1"})).status_code == 200
            forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "k1"})
            _assert_problem(call(forged), 401, "invalid_token")
            unknown_kid = jwt.encode(claims, ours, algorithm="RS256", headers={"kid": "k9"})
            _assert_problem(call(unknown_kid), 401, "invalid_token")
            confused = jwt.encode(claims, "a-shared-secret-long-enough-for-hs256-0123", algorithm="HS256",
                                  headers={"kid": "k1"})  # fmt: skip
            _assert_problem(call(confused), 401, "invalid_token")
            jwks.close()
            _jwks_cache_clear()
            _assert_problem(call(unknown_kid), 503, "jwks_unavailable")
    finally:
        jwks.close()


def _jwks_cache_clear() -> None:
    from api import auth

    auth._jwks_client.cache_clear()


def test_rs256_needs_exactly_one_key_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="exactly one"):
        ApiSettings(jwt_algorithm="RS256", dev_mode=True)
    with pytest.raises(ValueError, match="MASK_SECRET"):
        ApiSettings(jwt_algorithm="RS256", jwt_jwks_url="file:///nowhere.json")


@pytest.mark.parametrize("path", ["/v1/events", "/v1/consumption", "/v1/registration", "/v1/consumption/aggregate"])
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"date_from": "2026-03-29", "date_to": "2026-03-28"}, "invalid_dates"),
        ({"mpans": "12345"}, "invalid_mpan"),
        ({"mpans": "\uff12\uff14" + "\uff19" * 10 + "\uff11"}, "invalid_mpan"),  # full-width digits are not ASCII
        ({"as_of": "2999-01-01T00:00:00Z"}, "as_of_in_future"),
    ],
)
def test_inputs_that_cannot_match_are_400_not_an_empty_200(
    client: TestClient, api_settings: ApiSettings, path: str, params: dict[str, str], code: str
) -> None:
    _assert_problem(client.get(path, params=params, headers=bearer(api_settings, "MDSV", "MDS")), 400, code)
