"""Structured logs: kafka-python's reconnect noise while a broker starts is a warning, not an error."""

from __future__ import annotations

import logging

import orjson
import pytest

from mhhs.logs import configure_logging


def test_kafka_connection_errors_are_warnings_and_other_errors_stay_errors(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    try:
        logging.getLogger("kafka.net.connection").error("Connection failed: KafkaConnectionError: 111 ECONNREFUSED")
        logging.getLogger("kafka.net.manager").error("Bootstrap failed: KafkaTimeoutError: Unable to bootstrap")
        logging.getLogger("kafka.consumer.fetcher").error("Fetch to node 1 failed: CorruptRecordError")
        logging.getLogger("ingest.service").error("commit_failed")
    finally:
        logging.getLogger().handlers[:] = []
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    levels = {d["event"].split(":")[0]: d["level"] for d in lines}
    assert levels == {
        "Connection failed": "warning",
        "Bootstrap failed": "warning",
        "Fetch to node 1 failed": "error",
        "commit_failed": "error",
    }
