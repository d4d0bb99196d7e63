"""Handing freed memory back to the OS (glibc's ``malloc_trim``), for processes that handle big batches."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Return the C heap's free pages to the OS; without it RSS keeps the largest batch's high-water mark."""
    if _TRIM is not None:
        _TRIM(0)
