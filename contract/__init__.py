"""The MHHS event contract: topic catalogue, message schemas, market identifiers and record types.

The vocabulary every package shares (ingest, lakehouse, access, api, quality, the simulator); it
imports nothing of the product's own.
"""

from contract.identifiers import (
    DNO_BY_DISTRIBUTOR,
    GSP_GROUPS,
    is_valid_mpan,
    mpan_check_digit,
)
from contract.records import TP, InRecord, OutRecord
from contract.schemas import SchemaKey, list_schemas, load_schema
from contract.topics import TopicSpec, load_topic_catalogue, topic_for_interface

__all__ = [
    "DNO_BY_DISTRIBUTOR",
    "GSP_GROUPS",
    "TP",
    "InRecord",
    "OutRecord",
    "SchemaKey",
    "TopicSpec",
    "is_valid_mpan",
    "list_schemas",
    "load_schema",
    "load_topic_catalogue",
    "mpan_check_digit",
    "topic_for_interface",
]
