"""No leaks, for every role x endpoint x format.

The oracle is computed here from the store's own tables and DOMAIN's masking matrix, not from the
API's code: which MPANs each caller is entitled to (registration intervals, distributor, grants),
and which kinds of personal data its role may receive. Every response is decoded and searched for
raw MPANs outside that set (or any raw MPAN for tokenising roles), full postcodes, and half-hourly
consumption values where the role may only see aggregates.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from access.principal import ROLES
from access.tokens import mpan_token
from api.settings import ApiSettings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, REGISTRATION
from tests.support.claims import bearer

FORMATS = ("ndjson", "csv", "parquet", "arrow")
ENDPOINTS = ("replay", "events", "consumption", "registration", "consumption/aggregate")
REPLAY_TOPICS = ("mhhs.registration.if-036", "mhhs.consumption.if-021")
TOKEN_ROLES = {"analyst", "third_party"}  # mpan: token
NO_POSTCODE_ROLES = {"MDS", "LSS", "analyst", "third_party"}  # postcode: remove or outward
NO_HALF_HOURLY_ROLES = {"LDSO", "third_party"}  # consumption: aggregate only
ALL_ROWS = {"MDS", "LSS", "analyst", "auditor", "admin"}
APPOINTED = {"SUP", "SDS", "ADS", "UMSDS", "MSS", "MSA", "UMSO"}
_CONSUMPTION_KEY = re.compile(rb'consumption(_kwh)?"+\s*[:,]')


class Oracle:
    """What the store holds, and what each caller may see of it."""

    def __init__(self, lake: LakehouseSettings, secret: bytes) -> None:
        events = read_table(lake, EVENTS, ["mpan", "interface_id", "value"])
        self.mpans = {m for m in events["mpan"].to_pylist() if m}
        self.postcodes = set()
        for iface, value in zip(events["interface_id"].to_pylist(), events["value"].to_pylist(), strict=True):
            if iface == "IF-036":
                self.postcodes.add(orjson.loads(value)["CustomBlock"]["meteringPointAddress"]["postcode"])
        self.registration = read_table(lake, REGISTRATION).to_pylist()
        self.secret = secret
        self.grants = sorted(self.mpans)[:3]

    def subject(self, role: str) -> str:
        if role in APPOINTED:
            found = sorted({r["participant"] for r in self.registration if r["role"] == role})
            return found[0] if found else "NOBODY"
        if role in ("LDSO", "REGS"):
            return sorted(self.mpans)[0][:2]  # the distributor of some MPAN in the store
        return f"T{role[:3].upper()}"

    def entitled(self, role: str, subject: str) -> set[str]:
        if role in ALL_ROWS:
            return set(self.mpans)
        if role in APPOINTED:
            return {r["mpan"] for r in self.registration if r["role"] == role and r["participant"] == subject}
        if role in ("LDSO", "REGS"):
            return {m for m in self.mpans if m.startswith(subject)}
        if role == "third_party":
            return set(self.grants)
        return set()

    def intervals(self, role: str, subject: str) -> dict[str, list[tuple[date, date | None]]]:
        out: dict[str, list[tuple[date, date | None]]] = {}
        for r in self.registration:
            if r["role"] == role and r["participant"] == subject:
                out.setdefault(r["mpan"], []).append((r["effective_from"], r["effective_to"]))
        return out


@pytest.fixture(scope="module")
def oracle(api_lake: LakehouseSettings, api_settings: ApiSettings) -> Oracle:
    return Oracle(api_lake, api_settings.mask_secret.get_secret_value().encode())


def _fetch(client: TestClient, headers: dict[str, str], endpoint: str, fmt: str) -> tuple[list[dict[str, Any]], bytes]:
    """The decoded rows and the raw body of one request."""
    if endpoint == "replay":
        rows: list[dict[str, Any]] = []
        body = b""
        for topic in REPLAY_TOPICS:
            resp = client.get(f"/v1/replays/{topic}", headers=headers)
            assert resp.status_code == 200, resp.text
            body += resp.content
            rows += [d for d in map(orjson.loads, resp.content.splitlines()) if d.get("type") != "end"]
        return rows, body
    resp = client.get(f"/v1/{endpoint}", params={"format": fmt}, headers=headers)
    assert resp.status_code == 200, resp.text
    if fmt == "ndjson":
        return [d for d in map(orjson.loads, resp.content.splitlines()) if d.get("type") != "end"], resp.content
    if fmt == "csv":
        header = resp.content.split(b"\n", 1)[0].decode().split(",")
        as_text = pacsv.ConvertOptions(column_types={name.strip('"'): pa.string() for name in header})
        table = pacsv.read_csv(io.BytesIO(resp.content), convert_options=as_text)
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(resp.content))
    else:
        table = ipc.open_stream(io.BytesIO(resp.content)).read_all()
    rows = table.to_pylist()
    # the searchable text of a binary format: every value, payload bytes decoded
    text = "\n".join(
        str({k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in row.items()}) for row in rows
    )
    return rows, text.encode()


def _row_date(row: dict[str, Any]) -> date | None:
    for key in ("settlement_date", "utc_settlement_date", "effective_from"):
        value = row.get(key)
        if isinstance(value, date):
            return value
        if isinstance(value, str) and value:
            return date.fromisoformat(value[:10])
    return None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_no_role_sees_what_it_may_not(
    client: TestClient, api_settings: ApiSettings, oracle: Oracle, role: str, endpoint: str
) -> None:
    subject = oracle.subject(role)
    scopes = ["replay", "extract", "audit"]
    grants = oracle.grants if role == "third_party" else None
    headers = bearer(api_settings, subject, role, scopes=scopes, grants=grants)
    entitled = oracle.entitled(role, subject)
    forbidden_raw = oracle.mpans if role in TOKEN_ROLES else oracle.mpans - entitled
    visible = {mpan_token(m, oracle.secret) for m in entitled} if role in TOKEN_ROLES else entitled
    intervals = oracle.intervals(role, subject)
    seen_any = False
    for fmt in FORMATS if endpoint != "replay" else ("ndjson",):
        rows, body = _fetch(client, headers, endpoint, fmt)
        leaked = sorted(m for m in forbidden_raw if m.encode() in body)
        assert not leaked, f"{role} {endpoint} {fmt}: raw MPANs {leaked[:3]}"
        if role in NO_POSTCODE_ROLES:
            assert not any(p.encode() in body for p in oracle.postcodes), f"{role} {endpoint} {fmt}: postcode"
        if endpoint == "consumption/aggregate":  # sums over enough MPANs, never one household's values
            assert all(int(r["mpans"]) >= api_settings.aggregate_min_mpans for r in rows), f"{role} {fmt}: small group"
        elif role in NO_HALF_HOURLY_ROLES:
            assert not _CONSUMPTION_KEY.search(body), f"{role} {endpoint} {fmt}: half-hourly consumption"
        for row in rows:
            mpan = row.get("mpan")
            if not mpan:
                continue  # rows without an MPAN (market-wide data) are public
            seen_any = True
            assert mpan in visible, f"{role} {endpoint} {fmt}: a row outside the entitlement"
            day = _row_date(row)
            if role in APPOINTED and day is not None:
                assert any(
                    lo <= day and (hi is None or day <= hi) for lo, hi in intervals[mpan]
                ), f"{role} {endpoint} {fmt}: {mpan} on {day} is outside the appointment"
    if endpoint == "consumption/aggregate":
        return  # no MPAN by design: the byte checks above are the test
    if role in ALL_ROWS or (role in APPOINTED | {"LDSO", "REGS", "third_party"} and entitled):
        assert seen_any, f"{role} {endpoint}: an entitled caller got nothing (the test would prove little)"
