"""The MHHS event contract: topic catalogue, message schemas and market identifiers.

Read by ingest (validation, settlement dates), the API (discovery, schemas) and the simulator.
"""

from lakehouse.contract.identifiers import (
    DNO_BY_DISTRIBUTOR,
    GSP_GROUPS,
    is_valid_mpan,
    mpan_check_digit,
)
from lakehouse.contract.schemas import SchemaKey, list_schemas, load_schema
from lakehouse.contract.topics import TopicSpec, load_topic_catalogue, topic_for_interface

__all__ = [
    "DNO_BY_DISTRIBUTOR",
    "GSP_GROUPS",
    "SchemaKey",
    "TopicSpec",
    "is_valid_mpan",
    "list_schemas",
    "load_schema",
    "load_topic_catalogue",
    "mpan_check_digit",
    "topic_for_interface",
]
