"""Deliveries over HTTP: recipients list and download theirs; anyone fetches the public keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse

from api.deps import ExtractPrincipal, ServicesDep
from api.errors import problem_responses
from api.services.audit import AccessRecord
from api.streaming import audited_stream

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
IdPath = Annotated[str, Path(max_length=300, examples=["research-1-7261783649"])]


@router.get("/keys", responses=problem_responses())
def keys(services: ServicesDep) -> dict[str, Any]:
    """The public keys (JWKS, Ed25519) deliveries are signed with: `mhhs deliveries verify DIR --jwks URL`."""
    return services.deliveries.keys()


@router.get("", responses=problem_responses(401, 403))
def list_deliveries(principal: ExtractPrincipal, services: ServicesDep) -> list[dict[str, Any]]:
    """The caller's deliveries, newest first (all of them for admins and auditors)."""
    return services.deliveries.list(principal)


@router.get("/{delivery_id}/manifest", responses=problem_responses(401, 403, 404))
def manifest(principal: ExtractPrincipal, services: ServicesDep, delivery_id: IdPath) -> Response:
    """A delivery's manifest, byte for byte what was signed (`manifest.json.jws` holds the signature)."""
    body = services.deliveries.manifest(principal, delivery_id)
    record = AccessRecord(principal, "/v1/deliveries/manifest", {"delivery_id": delivery_id})
    record.nbytes = len(body)
    record.digest.update(body)
    services.audit.write(record)
    return Response(body, media_type="application/json")


@router.get(
    "/{delivery_id}/files/{name}",
    response_class=StreamingResponse,
    responses={**problem_responses(401, 403, 404), 200: {"content": {"application/octet-stream": {}}}},
)
def delivered_file(
    principal: ExtractPrincipal,
    services: ServicesDep,
    delivery_id: IdPath,
    name: Annotated[str, Path(max_length=200, examples=["part-00000.parquet"])],
) -> StreamingResponse:
    """One delivered file, streamed (the manifest lists each with its sha256)."""
    chunks, _size = services.deliveries.file(principal, delivery_id, name)
    record = AccessRecord(principal, "/v1/deliveries/files", {"delivery_id": delivery_id, "name": name})

    def body() -> Iterator[bytes]:
        yield from chunks

    return audited_stream(services.audit, record, body(), "application/octet-stream")
