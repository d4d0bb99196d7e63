"""Validation in a child process, so the worker polls the next batch and commits meanwhile.

Parsing and checking every record (``ingest.validate.judge``) is most of a worker's CPU time
and holds the GIL; in a process of its own it runs beside kafka-python's fetching and the
Iceberg commit. The child imports only the validator (no pyarrow, no pyiceberg), receives a
batch's topics and values and sends back ``Verdicts``; the worker keeps its own copy of the
records and builds the Arrow tables itself. A child that dies is replaced, and the batch it held
is validated in the worker: nothing is lost.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import structlog

from ingest.memory import trim_heap
from ingest.validate import RecordValidator, Verdicts, judge

log = structlog.get_logger("ingest")

_VALIDATOR: RecordValidator | None = None


def _start(max_message_bytes: int) -> None:
    global _VALIDATOR
    # the worker decides when to stop (it commits what is in hand first): a Ctrl-C or SIGTERM to
    # the process group must not take the validator away from under it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _VALIDATOR = RecordValidator(max_message_bytes)


def _judge(topics: Sequence[str], values: Sequence[bytes | None]) -> Verdicts:
    assert _VALIDATOR is not None, "validation process not started"
    trim_heap()  # the previous batch (freed once its verdicts were sent): its pages back to the OS first
    return judge(_VALIDATOR, topics, values)


class ValidationProcess:
    """One child process validating one batch at a time."""

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._pool = self._spawn()

    def _spawn(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker has threads (kafka-python's heartbeat) by the time it asks
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start, initargs=(self._max,))

    def submit(self, topics: Sequence[str], values: Sequence[bytes | None]) -> Future[Verdicts]:
        """Start validating a batch; the future's result is its ``Verdicts``."""
        try:
            return self._pool.submit(_judge, topics, values)
        except BrokenProcessPool:
            self._replace()
            return self._pool.submit(_judge, topics, values)

    def result(
        self, future: Future[Verdicts], topics: Sequence[str], values: Sequence[bytes | None], fallback: RecordValidator
    ) -> Verdicts:
        """The verdicts of a submitted batch; if the child died meanwhile, validated here instead."""
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("validation_process_lost", records=len(values))
            self._replace()
            return judge(fallback, topics, values)

    def _replace(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._spawn()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
