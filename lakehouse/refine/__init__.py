"""Typed tables refined from the raw events, incrementally and exactly once.

``consumption`` (IF-021 exploded per half hour) and ``registration`` (appointment intervals), each
keeping its own watermark into the events table (``watermark``).
"""

from lakehouse.refine.consumption import rebuild_consumption, refine_consumption
from lakehouse.refine.registration import rebuild_registration, refine_registration

__all__ = ["rebuild_consumption", "rebuild_registration", "refine_consumption", "refine_registration"]
