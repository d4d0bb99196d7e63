"""Technical validation of one record: bytes, JSON, envelope, interface, settlement date, schema.

Business rules are not checked here (they belong to the quality suites). Every failure has a
stable error code and a readable reason, and the record is quarantined, never dropped.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jsonschema_rs
import orjson

from contract.schemas import list_schemas, load_schema
from contract.topics import TopicCatalogue, load_topic_catalogue


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is quarantined: a stable code and a readable reason."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """A technically valid message, parsed."""

    message: dict[str, Any]
    interface: str
    version: str
    settlement_date: date


class RecordValidator:
    """Compiled validators for every schema in the contract, and the topic catalogue."""

    def __init__(
        self, max_message_bytes: int, catalogue: TopicCatalogue | None = None, check_formats: bool = True
    ) -> None:
        """``check_formats=False`` checks dates and times by shape only (as the contract did before 2026-12)."""
        self._max = max_message_bytes
        self._catalogue = catalogue or load_topic_catalogue()
        # plain dicts keyed by str and (str, str): looked up once or twice per record, so no
        # dataclass hashing on the hot path (the catalogue's cached index hashed the whole catalogue)
        self._validators = {
            (key.interface, key.version): jsonschema_rs.validator_for(
                load_schema(key.interface, key.version), validate_formats=check_formats
            )
            for key in list_schemas()
        }
        self._interfaces = {interface for interface, _ in self._validators}
        self._topics = {spec.name: spec for spec in self._catalogue.topics}

    def check(self, topic: str, value: bytes | None) -> Accepted | Rejection:
        """Validate one record's value as published on ``topic``."""
        if value is None:
            return Rejection("tombstone", "record value is null (tombstone)")
        if len(value) > self._max:
            return Rejection("oversized", f"value is {len(value)} bytes, limit {self._max}")
        try:
            message = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as uexc:
                return Rejection("invalid_utf8", f"invalid UTF-8 at byte {uexc.start}: {uexc.reason}")
            return Rejection("invalid_json", f"invalid JSON: {exc}")
        return self.check_message(topic, message)

    def check_message(self, topic: str, message: Any) -> Accepted | Rejection:
        """Validate an already-parsed message as published on ``topic``."""
        try:
            s0 = message["CommonBlock"]["S0"]
            interface = s0["interfaceID"]
            version = s0["schemaVersion"]
        except (KeyError, TypeError):
            return Rejection("invalid_envelope", "expected an object with CommonBlock.S0.interfaceID and schemaVersion")
        if not isinstance(interface, str) or not isinstance(version, str):
            return Rejection("invalid_envelope", "interfaceID and schemaVersion must be strings")
        spec = self._topics.get(topic)
        if spec is None:
            return Rejection("unknown_topic", f"topic {topic!r} is not in the topic catalogue")
        if interface not in self._interfaces:
            return Rejection("unknown_interface", f"no schema for interface {interface!r}")
        if spec.interface != interface:
            return Rejection("topic_mismatch", f"{interface} published on {topic}, which carries {spec.interface}")
        validator = self._validators.get((interface, version))
        if validator is None:
            return Rejection("unknown_schema_version", f"no schema for {interface} version {version!r}")
        custom = message.get("CustomBlock")
        raw_date = custom.get(spec.settlement_date) if isinstance(custom, dict) else None
        if raw_date is None:
            return Rejection("missing_settlement_date", f"CustomBlock.{spec.settlement_date} is missing")
        try:
            if not isinstance(raw_date, str) or len(raw_date) != 10:
                raise ValueError(raw_date)
            settlement = date.fromisoformat(raw_date)
        except ValueError:
            return Rejection(
                "invalid_settlement_date",
                f"CustomBlock.{spec.settlement_date}={raw_date!r} is not YYYY-MM-DD",
            )
        if not validator.is_valid(message):
            error = next(iter(validator.iter_errors(message)))
            path = "/".join(str(p) for p in error.instance_path) or "(root)"
            return Rejection("schema_violation", f"{path}: {error.message}"[:1000])
        return Accepted(message, interface, version, settlement)


ENVELOPE = (
    "interface_id",
    "schema_version",
    "event_code",
    "transaction_id",
    "sender_dip_id",
    "sender_role",
    "sender_timestamp",
    "mpan",
    "gsp_group",
    "settlement_date",
)


@dataclass(slots=True)
class Verdicts:
    """What validation found in a batch: the accepted records (by index) with their envelope
    columns, and the rejected (by index) with code and reason."""

    accepted: list[int] = field(default_factory=list)
    envelope: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in ENVELOPE})
    rejected: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def judge(validator: RecordValidator, topics: Sequence[str], values: Sequence[bytes | None]) -> Verdicts:
    """Validate every record of a batch (``topics[i]``, ``values[i]``); parse each value once.

    The cyclic garbage collector is paused meanwhile: parsing creates hundreds of acyclic
    objects per record (freed by reference counting), and collector passes over them cost
    ~45% of the time when measured here.
    """
    out = Verdicts()
    env = out.envelope
    with gc_paused():
        for i, (topic, value) in enumerate(zip(topics, values, strict=True)):
            result = validator.check(topic, value)
            if isinstance(result, Accepted):
                out.accepted.append(i)
                _collect(env, result)
            else:
                out.rejected.append(i)
                out.codes.append(result.code)
                out.reasons.append(result.reason)
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block (reference counting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collect(env: dict[str, list[Any]], accepted: Accepted) -> None:
    common = accepted.message["CommonBlock"]
    s0, s1, d0 = common["S0"], common["S1"], common["D0"]
    m0 = common.get("M0") or {}
    env["interface_id"].append(accepted.interface)
    env["schema_version"].append(accepted.version)
    env["event_code"].append(s0.get("eventCode"))
    env["transaction_id"].append(d0.get("transactionID"))
    env["sender_dip_id"].append(s1.get("senderDIPID"))
    env["sender_role"].append(s1.get("senderRoleID"))
    env["sender_timestamp"].append(s1.get("senderTimestamp"))
    env["mpan"].append(m0.get("MPANCore"))
    env["gsp_group"].append(m0.get("GSPGroupID") or accepted.message["CustomBlock"].get("gspGroupID"))
    env["settlement_date"].append(accepted.settlement_date)
