"""The simulator is deterministic, realistic and tells the truth about its faults."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
from typer.testing import CliRunner

from contract import is_valid_mpan
from ingest.validate import Accepted, RecordValidator, Rejection
from market.faults import BUSINESS_FAULTS, MALFORMED_FAULTS
from market.jsonl import read_records, write_records
from market.simulation import Simulation, SimulationParams
from mhhs.cli import app

runner = CliRunner()


def test_simulate_cli_twice_gives_identical_files(tmp_path: Path) -> None:
    args = ["simulate", "--mpans", "1000", "--days", "2", "--seed", "7"]
    digests = []
    for run in ("a", "b"):
        out, manifest = tmp_path / f"{run}.jsonl", tmp_path / f"{run}.json"
        result = runner.invoke(app, [*args, "--out", str(out), "--manifest", str(manifest)])
        assert result.exit_code == 0, result.output
        digests.append(
            (hashlib.sha256(out.read_bytes()).hexdigest(), hashlib.sha256(manifest.read_bytes()).hexdigest())
        )
    assert digests[0] == digests[1]


def test_every_mpan_passes_the_check_digit_except_those_the_manifest_marks(tmp_path: Path) -> None:
    out, manifest = tmp_path / "a.jsonl", tmp_path / "m.json"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--mpans",
            "1000",
            "--days",
            "2",
            "--seed",
            "7",
            "--out",
            str(out),
            "--manifest",
            str(manifest),
        ],
    )
    assert result.exit_code == 0, result.output
    marked = {
        f["transaction_id"] for f in orjson.loads(manifest.read_bytes())["faults"] if f["fault"] == "bad_check_digit"
    }
    bad_seen = set()
    checked = 0
    for rec in read_records(out):
        try:
            msg = orjson.loads(rec.value or b"")
            mpan = msg["CommonBlock"]["M0"]["MPANCore"]
            txn = msg["CommonBlock"]["D0"]["transactionID"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        checked += 1
        if not is_valid_mpan(mpan):
            bad_seen.add(txn)
    assert checked > 10_000
    assert bad_seen == marked


def test_high_fault_rates_inject_every_kind_and_the_validator_agrees() -> None:
    # eight days: an outlier is injected only once a channel has a week of history (rule 9 needs it)
    sim = Simulation(
        SimulationParams(
            mpans=100, days=8, start=date(2026, 3, 24), seed=3, business_fault_rate=0.1, malformed_rate=0.1
        )
    )
    records = list(sim.records())
    kinds = Counter(f.fault for f in sim.faults)
    assert set(kinds) == set(BUSINESS_FAULTS) | set(MALFORMED_FAULTS)
    validator = RecordValidator(max_message_bytes=1_048_576)
    malformed_at = {f.seq: f.expected_code for f in sim.faults if f.kind == "malformed"}
    for seq, rec in enumerate(records):
        result = validator.check(rec.topic, rec.value)
        if seq in malformed_at:
            assert isinstance(result, Rejection), (seq, rec.topic)
            assert result.code == malformed_at[seq]
        else:
            assert isinstance(result, Accepted), (seq, rec.topic, result)


def test_consumption_has_48_periods_with_3_decimals_and_utc_ends() -> None:
    sim = Simulation(
        SimulationParams(mpans=50, days=1, start=date(2026, 10, 25), seed=1, business_fault_rate=0, malformed_rate=0)
    )
    seen = 0
    for rec in sim.records():
        if rec.interface != "IF-021":
            continue
        custom = orjson.loads(rec.value or b"")["CustomBlock"]
        periods = custom["periods"]
        assert len(periods) == 48  # UTC days always have 48, even on the clock-change day
        assert periods[0]["settlementPeriodEffectiveToDateTime"] == "2026-10-25T00:30:00Z"
        assert periods[-1]["settlementPeriodEffectiveToDateTime"] == "2026-10-26T00:00:00Z"
        for p in periods:
            assert p["consumption"] >= 0 and round(p["consumption"], 3) == p["consumption"]
            if p["settlementPeriodQualityIndicator"] != "A":
                assert "estimationReasonCode" in p
        seen += 1
    assert seen >= 45  # every energised meter point, ~1% are de-energised


def test_jsonl_round_trip_keeps_bytes_tombstones_and_invalid_utf8(tmp_path: Path) -> None:
    sim = Simulation(SimulationParams(mpans=100, days=1, start=date(2026, 1, 1), seed=5, malformed_rate=0.2))
    records = list(sim.records())
    path = tmp_path / "r.jsonl"
    with path.open("wb") as fh:
        write_records(records, fh)
    back = list(read_records(path))
    assert [(r.topic, r.key, r.value, r.headers) for r in records] == [
        (r.topic, r.key, r.value, r.headers) for r in back
    ]
    assert any(r.value is None for r in back)


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    for args in (
        ["simulate", "--mpans", "0"],
        ["simulate", "--start", "2026-02-30"],
        ["simulate", "--malformed-rate", "2"],
        ["publish", str(tmp_path / "missing")],
        ["nonsense"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0, args
        assert result.output.strip(), args
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "x"}\nnot json\n')
    result = runner.invoke(app, ["publish", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output


def test_invalid_settings_and_log_level_end_with_a_message(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    env = {"MHHS_BATCH_MAX_RECORDS": "lots", "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(
        [sys.executable, "-m", "mhhs", "ingest", "--until-idle", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "batch_max_records" in bad.stderr and "Traceback" not in bad.stderr
    level = runner.invoke(app, ["--log-level", "LOUD", "topics"])
    assert level.exit_code == 2 and "LOUD" in level.output
