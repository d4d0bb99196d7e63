"""How the topic catalogue's topics are created on a broker (partitions, message size, retention)."""

from __future__ import annotations

from contract.topics import load_topic_catalogue
from ingest.kafka_client import TopicPlan, ensure_topics
from ingest.settings import IngestSettings


def topic_plans(settings: IngestSettings) -> list[TopicPlan]:
    """The catalogue's topics, with the message size the ingest limit allows and more."""
    max_bytes = str(max(4 * settings.max_message_bytes, 8 * 1024 * 1024))
    return [
        TopicPlan(t.name, t.partitions, (("max.message.bytes", max_bytes), ("retention.ms", "-1")))
        for t in load_topic_catalogue().topics
    ]


def create_topics(settings: IngestSettings, bootstrap: str) -> list[str]:
    """Create every catalogue topic missing on ``bootstrap``; return those created.

    Raises:
        BrokerUnavailableError: if the broker cannot be reached.
    """
    return ensure_topics(bootstrap, settings.api_version_tuple(), topic_plans(settings))
