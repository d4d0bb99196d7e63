"""Structured logging: one JSON object per line on stderr (structlog over stdlib logging)."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


class TransientKafkaErrors(logging.Filter):
    """kafka-python's connection errors are warnings: it reconnects by itself, and ours say when to give up.

    While a broker starts (or restarts) every refused connection is logged by kafka-python at ERROR;
    the product waits for the broker (``wait_for_broker``, ``MHHS_BROKER_WAIT_SECONDS``) and reports
    one error of its own if it never answers.
    """

    MARKERS = ("Connection", "connect", "Bootstrap", "ECONNREFUSED", "Unable to bootstrap", "node_id")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("kafka.") and record.levelno >= logging.ERROR:
            text = record.getMessage()
            if any(m in text for m in self.MARKERS):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Route structlog and stdlib logging to JSON lines on stderr at ``level``.

    Raises:
        ValueError: if ``level`` is not a logging level name.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(TransientKafkaErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # kafka-python is chatty about every reconnect, Great Expectations about its own set-up: their
    # warnings are kept, their info is not
    for chatty in ("kafka", "great_expectations"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
