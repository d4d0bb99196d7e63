"""One commit-retry policy for every writer: a lost optimistic-concurrency race is retried with backoff.

Iceberg commits are optimistic: a writer that loses the race to another commit gets
``CommitFailedException`` and must re-read and try again. Every writer of the product goes
through ``retry_commit``, so they all back off the same way (exponential, capped, jittered).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from pyiceberg.exceptions import CommitFailedException

from lakehouse.errors import CommitConflictError

log = logging.getLogger(__name__)
T = TypeVar("T")

BASE_SECONDS = 0.02
CAP_SECONDS = 2.0


def backoff_seconds(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """How long to wait after losing attempt ``attempt`` (1-based): 20 ms doubling, capped at 2 s, +-50% jitter."""
    return min(CAP_SECONDS, BASE_SECONDS * (2**attempt)) * (0.5 + rng())


def retry_commit(table: str, attempt: Callable[[int], T], max_attempts: int) -> T:
    """Call ``attempt(n)`` for n = 1, 2, ... until it commits; each call re-reads what it needs.

    Raises:
        CommitConflictError: if every one of ``max_attempts`` attempts lost a race.
    """
    for n in range(1, max_attempts + 1):
        try:
            return attempt(n)
        except CommitFailedException:
            log.info("commit_conflict", extra={"table": table, "attempt": n})
            if n < max_attempts:
                time.sleep(backoff_seconds(n))
    raise CommitConflictError(table, max_attempts)
