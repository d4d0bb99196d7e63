"""DIP-style message envelopes: CommonBlock (S0/S1/A0/D0/M0) + CustomBlock, as Kafka records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from contract.records import OutRecord
from contract.topics import load_topic_catalogue
from market.participants import MeterPoint, Participant

SCHEMA_VERSION = "001"


@dataclass(slots=True)
class SimRecord:
    """One simulated Kafka record, before or after fault injection."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    transaction_id: str
    interface: str

    def as_out(self) -> OutRecord:
        """The record as the broker module publishes it."""
        return OutRecord(self.topic, self.key, self.value, self.headers)


class MessageFactory:
    """Builds envelopes with deterministic, unique transaction IDs and sender references."""

    def __init__(self, seed: int, environment: str = "SIM") -> None:
        self._seed = seed
        self._seq = 0
        self._env = environment
        self._topics = load_topic_catalogue()

    def next_transaction_id(self) -> str:
        self._seq += 1
        return f"T-{self._seed:04d}-{self._seq:010d}"

    def build(
        self,
        interface: str,
        event_code: str,
        sender: Participant,
        recipients: list[str],
        sent_at: str,
        custom: dict[str, Any],
        *,
        mp: MeterPoint | None = None,
        key: str | None = None,
        distributor_dip: str | None = None,
        correlation_id: str | None = None,
    ) -> tuple[dict[str, Any], SimRecord]:
        """Return the message (as a dict, for fault injection) and its encoded record."""
        txn = self.next_transaction_id()
        s1: dict[str, Any] = {
            "environmentTag": self._env,
            "senderUniqueReference": f"R{self._seq:012d}",
            "senderTimestamp": sent_at,
            "senderDIPID": sender.dip_id,
            "senderRoleID": sender.role,
        }
        if correlation_id is not None:
            s1["senderCorrelationID"] = correlation_id
        common: dict[str, Any] = {
            "S0": {"interfaceID": interface, "schemaVersion": SCHEMA_VERSION, "eventCode": event_code},
            "S1": s1,
            "A0": {"primaryRecipients": recipients, "secondaryRecipients": []},
            "D0": {
                "transactionID": txn,
                "transactionTimestamp": sent_at,
                "publicationID": "PUB-001",
                "replayIndicator": False,
            },
        }
        if mp is not None:
            common["M0"] = {
                "MPANCore": mp.mpan,
                "distributorDIPID": distributor_dip or "0000000000",
                "GSPGroupID": mp.gsp_group,
            }
        message = {"CommonBlock": common, "CustomBlock": custom}
        spec = self._topics.by_interface(interface)
        assert spec is not None, interface
        record_key = mp.mpan if mp is not None else key
        return message, encode(spec.name, record_key, message)


def encode(topic: str, key: str | None, message: dict[str, Any]) -> SimRecord:
    """Encode ``message`` as a record: JSON value, key, and the four routing headers."""
    s0 = message["CommonBlock"]["S0"]
    txn = message["CommonBlock"]["D0"]["transactionID"]
    return SimRecord(
        topic=topic,
        key=key.encode() if key is not None else None,
        value=orjson.dumps(message),
        headers=(
            ("interfaceID", s0["interfaceID"].encode()),
            ("schemaVersion", s0["schemaVersion"].encode()),
            ("eventCode", s0["eventCode"].encode()),
            ("transactionID", txn.encode()),
        ),
        transaction_id=txn,
        interface=s0["interfaceID"],
    )
