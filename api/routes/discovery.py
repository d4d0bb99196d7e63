"""Discovery: topics, snapshots and message schemas."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["discovery"])


@router.get("/topics", responses=problem_responses(401))
def topics(principal: PrincipalDep, services: ServicesDep) -> list[dict[str, Any]]:
    """Every MHHS topic: partitions, rows held, settlement dates held, next offsets per partition."""
    return services.discovery.topics()


@router.get("/snapshots", responses=problem_responses(401, 404))
def snapshots(
    principal: PrincipalDep, services: ServicesDep, table: Annotated[str, Query(examples=["events"])] = "events"
) -> list[dict[str, Any]]:
    """Retained snapshots of a table, oldest first, with tags."""
    return services.discovery.snapshots(table)


@router.get("/schemas/{interface}/{version}", responses=problem_responses(401, 404))
def schema(
    principal: PrincipalDep,
    services: ServicesDep,
    interface: Annotated[str, Path(examples=["IF-021"], max_length=16)],
    version: Annotated[str, Path(examples=["001"], max_length=8)],
) -> dict[str, Any]:
    """The JSON Schema of an interface version."""
    return services.discovery.schema(interface, version)
