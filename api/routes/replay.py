"""Consumer-recovery replays over HTTP: NDJSON event lines, then an end line with resume_offsets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from api.deps import ReplayPrincipal, ServicesDep
from api.errors import ApiError, problem_responses
from api.services.audit import AccessRecord
from api.streaming import audited_stream, ndjson_end
from lakehouse.formats import ndjson_lines

router = APIRouter(prefix="/v1", tags=["replay"])


def parse_offsets(raw: str | None, name: str) -> dict[int, int] | None:
    """``0:120,1:98`` as {partition: offset}; None when not given.

    Raises:
        ApiError: 400 ``invalid_offsets`` when malformed or negative.
    """
    if not raw:
        return None
    try:
        out = {}
        for part in raw.split(","):
            p, o = part.split(":")
            if int(p) < 0 or int(o) < 0:
                raise ValueError(part)
            out[int(p)] = int(o)
        return out
    except ValueError as exc:
        raise ApiError(400, "invalid_offsets", f"{name} must look like 0:120,1:98 (partition:offset)") from exc


@router.get(
    "/replays/{topic}",
    response_class=StreamingResponse,
    responses={
        **problem_responses(400, 401, 403, 404),
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "event lines, then one end line with resume_offsets",
        },
    },
)
def replay(
    principal: ReplayPrincipal,
    services: ServicesDep,
    topic: Annotated[str, Path(examples=["mhhs.consumption.if-021"], max_length=128)],
    from_offsets: Annotated[str | None, Query(examples=["0:120,1:98"], max_length=4000)] = None,
    from_time: Annotated[datetime | None, Query(examples=["2026-03-28T00:00:00Z"])] = None,
    to_offsets: Annotated[str | None, Query(examples=["0:500"], max_length=4000)] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
    cursor: Annotated[str | None, Query(max_length=8000)] = None,
    include_quarantined: Annotated[
        bool, Query(description="also list the offsets of quarantined records (the default: every offset accounted)")
    ] = True,
) -> StreamingResponse:
    """Everything a consumer missed, from its offsets or a time, with the positions to resume Kafka.

    Lines in (partition, offset) order: ``{"type": "event", ...}`` for each event the caller is entitled
    to, ``{"type": "quarantined", "partition", "offset", "kafka_timestamp", "error_code", "error_reason"}``
    for each technically invalid record (with its raw ``value`` for auditors and admins), then one end
    line counting both, the events withheld by entitlement, the partitions whose start lies below the
    store's first offset (``not_retained``), ``resume_offsets`` and ``next_cursor``.
    """
    if from_offsets and from_time:
        raise ApiError(400, "conflicting_start", "give from_offsets or from_time, not both")
    page = services.replay.page(
        principal,
        topic,
        parse_offsets(from_offsets, "from_offsets"),
        from_time,
        parse_offsets(to_offsets, "to_offsets"),
        min(limit, services.api.max_page_size),
        cursor,
        include_quarantined,
    )
    filters = {
        "from_offsets": from_offsets,
        "from_time": from_time,
        "to_offsets": to_offsets,
        "limit": limit,
        "cursor": bool(cursor),
        "include_quarantined": include_quarantined,
    }
    record = AccessRecord(principal, f"/v1/replays/{topic}", filters, snapshot_id=page.snapshot_id)

    quarantined = 0

    def lines() -> Iterator[bytes]:
        nonlocal quarantined
        for kind, table in page.pieces(first=64, rest=services.api.batch_rows):
            if table.num_rows:
                if kind == "event":
                    record.rows += table.num_rows
                else:
                    quarantined += table.num_rows
                yield ndjson_lines(table.combine_chunks().to_batches()[0], kind)

    def end(rec: AccessRecord) -> bytes:
        return ndjson_end(
            rec,
            quarantined=quarantined,
            withheld=page.withheld,
            not_retained={str(p): n for p, n in sorted(page.not_retained.items())},
            resume_offsets={str(p): n for p, n in sorted(page.resume_offsets.items())},
            next_cursor=page.next_cursor,
        )

    return audited_stream(services.audit, record, lines(), "application/x-ndjson", end)
