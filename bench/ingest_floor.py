"""Where an ingest worker's time goes, per message, against what the baseline consumer pays.

Usage: python bench/ingest_floor.py [--messages 20000] [--runs 5]
No broker: the same IF-021 messages are encoded once as the producer sends them (record batches of
512 KiB, zstd, headers) and every stage runs over those bytes in one process, alternating, ``--runs``
times (the minimum of the rounds is reported: the stages are CPU-bound and this machine is shared):
- fetch: kafka-python's record path, the one both consumers pay (``PartitionRecords.take``: batch CRC,
  zstd, the pure-Python record parser, a ConsumerRecord per record);
- records: of that, the record parser alone (``MemoryRecords``, fields read, no ConsumerRecord);
- json: ``orjson.loads`` of every value (the baseline's own work);
- columns: the worker's records-to-columns step (``ingest.kafka_client.columns``);
- validate: ``ingest.validate.judge`` (parse, envelope, topic and settlement-date rules, JSON Schema);
- arrow: ``ingest.decode`` building the events and quarantine tables;
- commit: ``LandingWriter.commit`` (Parquet + Iceberg, SQLite catalog, fresh warehouse per round) of
  all ``--messages`` in one batch (a worker's 64 MiB batch is ~10 k IF-021, so its commits cost more
  a message than this: the bounds below favour the worker).

Bounds it reports: ``baseline = fetch + json``; the worker's time with Arrow and the commit free,
``fetch + columns + validate``; the ratio ``baseline / that`` is the most any design that keeps
kafka-python's record path and today's validation can reach on one core (goal 1 asks 0.8).
Optional alternatives, measured only when installed (not dependencies of the product):
- ``aiokafka`` (+ ``cramjam`` for zstd): its compiled (Cython) record parser over the same batches;
- ``msgspec``: one-pass JSON parse + type/enum/required/unknown-field checks compiled from the
  contract's IF-021 schema, with and without its string patterns (checked by Python's ``re``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import write_results

TOPIC = "mhhs.consumption.if-021"
BATCH_BYTES = 512 * 1024  # ingest.kafka_client.publish's batch_size
ZSTD = 4  # kafka-python's compression_type code


def messages(n: int) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    from market.simulation import Simulation, SimulationParams

    params = SimulationParams(
        mpans=max(1, n // 10), days=12, start=date(2026, 1, 1), seed=1, business_fault_rate=0, malformed_rate=0
    )
    sim = Simulation(params)
    out = []
    for rec in sim.records():
        if rec.interface == "IF-021" and rec.value is not None:
            out.append((rec.key, rec.value, list(rec.headers)))
            if len(out) == n:
                break
    return out


def encode(msgs: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]) -> bytes:
    """The messages as one partition's log: consecutive record batches, offsets from 0."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    def builder() -> DefaultRecordBatchBuilder:
        return DefaultRecordBatchBuilder(
            magic=2, compression_type=ZSTD, is_transactional=False, producer_id=-1, producer_epoch=-1,
            base_sequence=-1, batch_size=BATCH_BYTES,
        )  # fmt: skip

    out: list[bytes] = []
    current, base = builder(), 0
    for offset, (key, value, headers) in enumerate(msgs):
        if current.append(offset - base, timestamp=1_767_225_600_000, key=key, value=value, headers=headers) is None:
            out.append(_with_base(current.build(), base))
            current, base = builder(), offset
            current.append(0, timestamp=1_767_225_600_000, key=key, value=value, headers=headers)
    out.append(_with_base(current.build(), base))
    return b"".join(out)


def _with_base(batch: bytearray, base: int) -> bytes:
    batch[0:8] = base.to_bytes(8, "big")  # the broker assigns base offsets; the CRC does not cover them
    return bytes(batch)


def fetch(log: bytes) -> list[Any]:
    from kafka import TopicPartition
    from kafka.consumer.fetcher import Fetcher
    from kafka.record.memory_records import MemoryRecords

    return Fetcher.PartitionRecords(0, TopicPartition(TOPIC, 0), MemoryRecords(log)).take()


def records_only(log: bytes) -> int:
    from kafka.record.memory_records import MemoryRecords

    return _walk(MemoryRecords(log))


def _walk(memory: Any) -> int:
    n = 0
    batch = memory.next_batch()
    while batch is not None:
        batch.validate_crc()
        for r in batch:
            r.offset, r.timestamp, r.key, r.value, r.headers  # noqa: B018  (read, as a consumer does)
            n += 1
        batch = memory.next_batch()
    return n


def compiled_records(log: bytes) -> Callable[[], int] | None:
    try:
        from aiokafka.record.memory_records import MemoryRecords
    except ImportError:
        return None
    try:
        _walk(MemoryRecords(log))
    except Exception as exc:  # e.g. no zstd codec installed for it
        print(f"aiokafka's record parser not measured: {type(exc).__name__}: {exc}")
        return None
    return lambda: _walk(MemoryRecords(log))


def msgspec_decoder(patterns: bool) -> Callable[[bytes], Any] | None:
    """IF-021 001 as msgspec types: required, types, const/enum, lengths, unknown fields refused."""
    try:
        import msgspec
    except ImportError:
        return None
    from contract.schemas import load_schema

    def typ(s: dict[str, Any], name: str) -> Any:
        if "const" in s:
            return Literal[s["const"]]
        if "enum" in s:
            return Literal[tuple(s["enum"])]
        t = s["type"]
        if t == "object":
            req = set(s.get("required", ()))
            fields: list[Any] = []
            for k, v in s.get("properties", {}).items():
                ft = typ(v, f"{name}_{k}")
                fields.append((k, ft) if k in req else (k, Union[ft, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
            return msgspec.defstruct(name, fields, forbid_unknown_fields=True, kw_only=True)
        if t == "array":
            meta = {m: s[k] for k, m in (("minItems", "min_length"), ("maxItems", "max_length")) if k in s}
            return Annotated[list[typ(s["items"], name + "_item")], msgspec.Meta(**meta)]  # type: ignore[misc]
        if t == "string":
            meta = {m: s[k] for k, m in (("minLength", "min_length"), ("maxLength", "max_length")) if k in s}
            if patterns and "pattern" in s:
                meta["pattern"] = s["pattern"].replace(r"\d", "[0-9]").removesuffix("$") + r"\Z"
            return Annotated[str, msgspec.Meta(**meta)]
        bounds = {m: s[k] for k, m in (("minimum", "ge"), ("maximum", "le")) if k in s}
        base = {"number": float, "integer": int, "boolean": bool}[t]
        return Annotated[base, msgspec.Meta(**bounds)] if bounds else base

    return msgspec.json.Decoder(typ(load_schema("IF-021", "001"), "IF021")).decode


def each(fn: Callable[[bytes], Any], values: list[bytes]) -> None:
    """``fn`` over every value, each result dropped at once (as the baseline consumer does)."""
    for v in values:
        fn(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="alternating rounds; the minimum per stage is reported")
    args = parser.parse_args()
    for name in ("messages", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    from ingest.decode import _split
    from ingest.kafka_client import columns
    from ingest.settings import IngestSettings
    from ingest.validate import RecordValidator, gc_paused, judge
    from lakehouse.settings import LakehouseSettings
    from lakehouse.writer import LandingWriter

    msgs = messages(args.messages)
    n = len(msgs)
    log = encode(msgs)
    got = fetch(log)
    if [r.offset for r in got] != list(range(n)) or [r.value for r in got[:3]] != [m[1] for m in msgs[:3]]:
        raise SystemExit("the encoded log does not read back as the messages")
    validator = RecordValidator(IngestSettings().max_message_bytes)
    values = [m[1] for m in msgs]
    stages: dict[str, Callable[[], Any]] = {
        "fetch": lambda: fetch(log),
        "records": lambda: records_only(log),
        "json": lambda: each(orjson.loads, values),
        "columns": lambda: columns([got]),
        "validate": lambda: judge(validator, [TOPIC] * n, values),
    }
    optional = {
        "records_compiled (aiokafka)": compiled_records(log),
        "msgspec_typed_no_patterns": (lambda d: (lambda: each(d, values)) if d else None)(msgspec_decoder(False)),
        "msgspec_typed_with_patterns": (lambda d: (lambda: each(d, values)) if d else None)(msgspec_decoder(True)),
    }
    stages.update({k: f for k, f in optional.items() if f is not None})
    best: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for name, fn in stages.items():
                timed(name, fn)
            polled = columns([got])
            verdicts = judge(validator, polled.topics, polled.values)
            with gc_paused():  # as decode_batch builds it
                decoded = timed("arrow", lambda: _split(polled, verdicts, "bench", "b", datetime.now(UTC)))  # noqa: B023
            writer = LandingWriter(LakehouseSettings(warehouse=str(Path(tmp) / f"wh-{r}")))
            writer.commit(decoded.events.slice(0, 1), decoded.quarantine, "warm", {(TOPIC, 0): 1}, {}, max_attempts=5)
            offsets = decoded.next_offsets
            timed("commit", lambda: writer.commit(decoded.events, decoded.quarantine, "g", offsets, {}, max_attempts=5))  # noqa: B023
            so_far = ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in best.items())
            print(f"round {r + 1}: {so_far} us/msg", flush=True)

    us = {k: v / n * 1e6 for k, v in best.items()}
    baseline = us["fetch"] + us["json"]
    mandatory = us["fetch"] + us["columns"] + us["validate"]
    worker = mandatory + us["arrow"] + us["commit"]
    figures: dict[str, Any] = {
        "messages": n,
        "value_bytes_mean": round(sum(map(len, values)) / n),
        "runs": args.runs,
        "us_per_message": {k: round(v, 2) for k, v in us.items()},
        "baseline_us": round(baseline, 2),
        "worker_us": round(worker, 2),
        "worker_without_arrow_and_commit_us": round(mandatory, 2),
        "ratio_bound_all_stages": round(baseline / worker, 3),
        "ratio_bound_arrow_and_commit_free": round(baseline / mandatory, 3),
        "goal_ratio": 0.8,
    }
    if "records_compiled (aiokafka)" in us:
        saved = us["records"] - us["records_compiled (aiokafka)"]
        figures["ratio_bound_compiled_records_arrow_and_commit_free"] = round(baseline / (mandatory - saved), 3)
    rows = [(k, f"{v:.2f}") for k, v in us.items()]
    rows += [
        ("baseline = fetch + json", f"{baseline:.2f}"),
        ("worker = fetch + columns + validate + arrow + commit", f"{worker:.2f}"),
        ("bound: baseline / worker", f"{baseline / worker:.3f}"),
        ("bound with Arrow and commit free", f"{baseline / mandatory:.3f}"),
    ]
    if "ratio_bound_compiled_records_arrow_and_commit_free" in figures:
        rows.append(
            ("... and a compiled record parser", f"{figures['ratio_bound_compiled_records_arrow_and_commit_free']:.3f}")
        )
    write_results("ingest_floor", figures, rows, ("stage", "us / message"))


if __name__ == "__main__":
    main()
