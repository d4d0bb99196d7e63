"""Replay paging, extracts in every format, masking and entitlements, audit."""

from __future__ import annotations

import hashlib
import io

import blake3
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from contract import is_valid_mpan
from lakehouse.catalog import open_catalog
from lakehouse.offsets import committed_offsets
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, ensure_table
from tests.support.claims import bearer
from tests.support.grants import grant_mpans
from tests.support.landing import GROUP

TOPIC = "mhhs.consumption.if-021"


def _lines(text: str) -> tuple[list[dict], dict]:  # type: ignore[type-arg]
    docs = [orjson.loads(line) for line in text.splitlines() if line]
    return [d for d in docs if d.get("type") == "event"], docs[-1]


def test_replay_pages_return_every_event_once_in_order_from_one_snapshot(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    seen: list[tuple[int, int]] = []
    quarantined: list[tuple[int, int]] = []
    snapshots = set()
    params: dict[str, object] = {"limit": 37}
    while True:
        resp = client.get(f"/v1/replays/{TOPIC}", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        events, end = _lines(resp.text)
        seen += [(e["partition"], e["offset"]) for e in events]
        quarantined += [(d["partition"], d["offset"]) for d in map(orjson.loads, resp.text.splitlines())
                        if d["type"] == "quarantined"]  # fmt: skip
        snapshots.add(end["snapshot_id"])
        if not end["next_cursor"]:
            break
        params = {"cursor": end["next_cursor"]}
    table = read_table(api_lake, EVENTS, ["topic", "partition", "offset", "value"])
    expected = sorted(
        (p, o)
        for t, p, o in zip(
            table["topic"].to_pylist(), table["partition"].to_pylist(), table["offset"].to_pylist(), strict=True
        )
        if t == TOPIC
    )
    assert seen == expected
    assert len(snapshots) == 1
    q = read_table(api_lake, "quarantine", ["topic", "partition", "offset"]).to_pylist()
    assert sorted(quarantined) == sorted((r["partition"], r["offset"]) for r in q if r["topic"] == TOPIC)
    # the replay ends where the store stands: Kafka resumes after everything landed (quarantine too)
    held = committed_offsets(ensure_table(open_catalog(api_lake), api_lake, EVENTS), GROUP)
    resume = {int(p): n for p, n in end["resume_offsets"].items()}
    topic_held = {p: n for (t, p), n in held.items() if t == TOPIC}
    assert topic_held and resume == {p: topic_held.get(p, 0) for p in resume}  # nothing held: start at 0
    assert all(
        n > max(o for pp, o in expected if pp == p)
        for p, n in ((int(k), v) for k, v in end["resume_offsets"].items())
        if any(pp == p for pp, _ in expected)
    )


def test_replay_payload_is_byte_identical_for_an_unmasked_role(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    table = read_table(api_lake, EVENTS, ["topic", "partition", "offset", "value"]).to_pylist()
    stored = {(r["partition"], r["offset"]): r["value"] for r in table if r["topic"] == TOPIC}
    resp = client.get(
        f"/v1/replays/{TOPIC}",
        params={"from_offsets": "0:3,1:2", "limit": 50},
        headers=bearer(api_settings, "MDSV", "MDS"),
    )
    events, _end = _lines(resp.text)
    assert events and all(e["offset"] >= {0: 3, 1: 2}[e["partition"]] for e in events)
    for e in events:
        assert e["value"].encode("utf-8") == stored[(e["partition"], e["offset"])]


FORMATS = ["ndjson", "csv", "parquet", "arrow"]


def _extract(client: TestClient, headers: dict[str, str], fmt: str, **params: object) -> pa.Table | str:
    resp = client.get("/v1/events", params={"format": fmt, **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-mhhs-snapshot-id"]
    if fmt == "parquet":
        footer = pq.ParquetFile(io.BytesIO(resp.content)).metadata
        meta = footer.metadata or {}
        assert meta[b"mhhs.snapshot_id"].decode() == resp.headers["x-mhhs-snapshot-id"]
        assert int(meta[b"mhhs.rows"]) == footer.num_rows
        return pq.read_table(io.BytesIO(resp.content))
    if fmt == "arrow":
        reader = ipc.open_stream(io.BytesIO(resp.content))
        batches, trailer = [], None
        while True:
            try:
                got = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            batches.append(got.batch)
            trailer = got.custom_metadata or trailer
        assert trailer is not None and int(trailer[b"mhhs.rows"]) == sum(b.num_rows for b in batches)
        assert trailer[b"mhhs.snapshot_id"].decode() == resp.headers["x-mhhs-snapshot-id"]
        return pa.Table.from_batches(batches, schema=reader.schema)
    return resp.text


def _raw_mpans(api_lake: LakehouseSettings) -> set[str]:
    t = read_table(api_lake, EVENTS, ["mpan"])
    return {m for m in t["mpan"].to_pylist() if m}


def _postcodes(api_lake: LakehouseSettings) -> set[str]:
    out = set()
    for v in read_table(api_lake, EVENTS, ["interface_id", "value"]).to_pylist():
        if v["interface_id"] == "IF-036":
            out.add(orjson.loads(v["value"])["CustomBlock"]["meteringPointAddress"]["postcode"])
    return out


def _text_of(result: pa.Table | str) -> str:
    if isinstance(result, str):
        return result
    return result.to_pandas().to_csv() if result.num_rows else ""


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("role", ["analyst", "third_party"])
def test_tokenised_roles_never_see_a_raw_mpan_or_postcode(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, role: str, fmt: str
) -> None:
    mpans = _raw_mpans(api_lake)
    grant = grant_mpans(api_lake, "three", "ANLY", sorted(mpans)[:3])
    headers = bearer(api_settings, "ANLY", role, grants=[grant])
    text = _text_of(_extract(client, headers, fmt))
    assert not any(m in text for m in mpans), f"{role} saw a raw MPAN in {fmt}"
    full_postcodes = _postcodes(api_lake)
    assert not any(pc in text for pc in full_postcodes), f"{role} saw a full postcode in {fmt}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_mds_sees_mpans_but_no_addresses(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, fmt: str
) -> None:
    text = _text_of(_extract(client, bearer(api_settings, "MDSV", "MDS"), fmt, interface="IF-036"))
    assert any(m in text for m in _raw_mpans(api_lake))
    assert not any(pc in text for pc in _postcodes(api_lake))


def test_analyst_tokens_are_stable_valid_mpans(client: TestClient, api_settings: ApiSettings) -> None:
    a = _extract(client, bearer(api_settings, "ANLY", "analyst"), "arrow", interface="IF-021")
    b = _extract(client, bearer(api_settings, "ANLY", "analyst"), "arrow", interface="IF-021")
    assert isinstance(a, pa.Table) and isinstance(b, pa.Table)
    tokens = [m for m in a["mpan"].to_pylist() if m]
    assert tokens and tokens == [m for m in b["mpan"].to_pylist() if m]
    assert all(is_valid_mpan(t) for t in tokens)


def test_supplier_sees_only_its_own_mpans(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    confirmations = [
        orjson.loads(v["value"])
        for v in read_table(api_lake, EVENTS, ["interface_id", "value"]).to_pylist()
        if v["interface_id"] == "IF-036"
    ]
    supplier = confirmations[0]["CustomBlock"]["supplierMPID"]
    own = {c["CommonBlock"]["M0"]["MPANCore"] for c in confirmations if c["CustomBlock"]["supplierMPID"] == supplier}
    result = _extract(client, bearer(api_settings, supplier, "SUP"), "arrow", interface="IF-021")
    assert isinstance(result, pa.Table)
    seen = {m for m in result["mpan"].to_pylist() if m}
    assert seen and seen <= own
    other = _extract(client, bearer(api_settings, "ZZZZ", "SUP"), "arrow", interface="IF-021")
    assert isinstance(other, pa.Table) and other.num_rows == 0  # nothing of anyone else's, not even a 403


def test_every_access_is_audited(client: TestClient, api_settings: ApiSettings) -> None:
    client.get("/v1/events", params={"interface": "IF-047"}, headers=bearer(api_settings, "LSSV", "LSS"))
    client.get(f"/v1/replays/{TOPIC}", params={"limit": 5}, headers=bearer(api_settings, "MDSV", "MDS"))
    resp = client.get("/v1/audit", headers=bearer(api_settings, "AUDT", "auditor", ["audit"]))
    assert resp.status_code == 200, resp.text
    log = resp.json()
    assert any(
        r["subject"] == "LSSV" and r["endpoint"] == "/v1/events" and r["rows"] == 3 and r["checksum"] for r in log
    )
    assert any(r["endpoint"].startswith("/v1/replays/") for r in log)
    forbidden = client.get("/v1/audit", headers=bearer(api_settings, "ANLY", "analyst", ["audit"]))
    assert forbidden.status_code == 403


def test_the_access_log_checksum_is_of_the_bytes_sent_and_names_its_hash(
    client: TestClient, api_settings: ApiSettings
) -> None:
    headers = bearer(api_settings, "LSSC", "LSS")
    bodies = {
        fmt: client.get("/v1/events", params={"interface": "IF-047", "format": fmt}, headers=headers).content
        for fmt in ("arrow", "ndjson")
    }
    log = client.get("/v1/audit", headers=bearer(api_settings, "AUDT", "auditor", ["audit"])).json()
    rows = {r["checksum_algorithm"]: r for r in log if r["subject"] == "LSSC"}
    assert set(rows) == {"blake3", "sha256"}
    assert rows["blake3"]["checksum"] == blake3.blake3(bodies["arrow"]).hexdigest()  # the binary formats: BLAKE3
    lines, end = bodies["ndjson"].rsplit(b"\n", 2)[0] + b"\n", orjson.loads(bodies["ndjson"].splitlines()[-1])
    assert rows["sha256"]["checksum"] == end["sha256"] == hashlib.sha256(lines).hexdigest()  # as the end line says
    assert rows["blake3"]["bytes"] == len(bodies["arrow"])


def test_discovery_endpoints(client: TestClient, api_settings: ApiSettings) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    topics = client.get("/v1/topics", headers=headers).json()
    if021 = next(t for t in topics if t["topic"] == TOPIC)
    assert if021["rows"] > 0 and if021["next_offsets"]
    assert client.get("/v1/snapshots", headers=headers).json()
    schema = client.get("/v1/schemas/IF-021/001", headers=headers).json()
    assert schema["$id"].endswith("IF-021:001")
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    assert b"mhhs_api_requests" in client.get("/metrics").content


# in this module, not test_audit_journal's: it needs the landed market this module's client has already
def test_a_streamed_replay_is_journaled_until_its_row_is_committed(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    journal = audit._journal.path
    seen: list[bytes] = []
    note = audit._journal.note

    def spy(access_id: str, row: dict[str, object]) -> None:
        note(access_id, row)
        seen.append(journal.read_bytes())  # what a kill at this moment would leave

    monkeypatch.setattr(audit._journal, "note", spy)
    resp = client.get(
        "/v1/replays/mhhs.consumption.if-021", params={"limit": 3}, headers=bearer(api_settings, "MDSV", "MDS")
    )
    assert resp.status_code == 200
    rows = [orjson.loads(line)["row"] for line in seen[0].splitlines()]
    assert rows[-1]["outcome"] == "interrupted" and rows[-1]["endpoint"] == "/v1/replays/mhhs.consumption.if-021"
    # each chunk noted before it is handed over: a kill mid-stream leaves what was sent
    progress = [orjson.loads(s.splitlines()[-1])["row"] for s in seen[1:-1]]
    assert progress and all(r["outcome"] == "interrupted" for r in progress)
    assert progress[-1]["rows"] == 3 and progress[-1]["bytes"] > 0
    assert orjson.loads(seen[-1].splitlines()[-1])["row"]["outcome"] == "ok"  # the final row, before its commit
    assert journal.stat().st_size == 0  # committed: nothing left to recover
