"""Where ingest finds its broker and how the catalogue's topics are created on it."""

from __future__ import annotations

from ingest.broker import TopicPlan, ensure_topics
from ingest.localbroker import read_local_broker, start_local_broker
from ingest.settings import IngestSettings
from lakehouse.contract.topics import load_topic_catalogue


def resolve_bootstrap(settings: IngestSettings, *, start: bool = True) -> str:
    """The configured bootstrap address, else the local broker's (started if ``start``).

    Raises:
        LocalBrokerError: if the local broker is needed and cannot be started.
        BrokerUnavailableError: if ``start`` is False and no broker is configured or running.
    """
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    running = read_local_broker(settings)
    if running is not None:
        return running.bootstrap
    if not start:
        from ingest.errors import BrokerUnavailableError

        raise BrokerUnavailableError("(none)", "set MHHS_KAFKA_BOOTSTRAP or run `mhhs broker up`")
    return start_local_broker(settings).bootstrap


def topic_plans(settings: IngestSettings) -> list[TopicPlan]:
    """The catalogue's topics, with the message size the ingest limit allows and more."""
    max_bytes = str(max(4 * settings.max_message_bytes, 8 * 1024 * 1024))
    return [
        TopicPlan(t.name, t.partitions, (("max.message.bytes", max_bytes), ("retention.ms", "-1")))
        for t in load_topic_catalogue().topics
    ]


def create_topics(settings: IngestSettings, bootstrap: str) -> list[str]:
    """Create every catalogue topic missing on ``bootstrap``; return those created."""
    return ensure_topics(bootstrap, settings.api_version_tuple(), topic_plans(settings))
