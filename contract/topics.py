"""The topic catalogue: which topic carries which interface, and its settlement-date rule."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Domain = Literal["registration", "consumption", "loadshape", "isd"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One MHHS topic: its interface, domain, settlement-date field and partition count."""

    name: str
    interface: str
    title: str
    domain: Domain
    settlement_date: str
    key: str
    partitions: int


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    """All MHHS topics, indexed by name and by interface."""

    topics: tuple[TopicSpec, ...]

    def by_name(self, name: str) -> TopicSpec | None:
        """The topic called ``name``, or None when it is not an MHHS topic."""
        return _index_by_name(self).get(name)

    def by_interface(self, interface: str) -> TopicSpec | None:
        """The topic carrying ``interface`` (e.g. ``IF-021``), or None."""
        return _index_by_interface(self).get(interface)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)


@cache
def _index_by_name(catalogue: TopicCatalogue) -> dict[str, TopicSpec]:
    return {t.name: t for t in catalogue.topics}


@cache
def _index_by_interface(catalogue: TopicCatalogue) -> dict[str, TopicSpec]:
    return {t.interface: t for t in catalogue.topics}


@cache
def load_topic_catalogue() -> TopicCatalogue:
    """Load the catalogue shipped in ``contract/topics.toml``."""
    text = resources.files("contract").joinpath("topics.toml").read_text("utf-8")
    raw = tomllib.loads(text)["topic"]
    return TopicCatalogue(tuple(TopicSpec(**entry) for entry in raw))


def topic_for_interface(interface: str) -> str:
    """The topic name for ``interface``.

    Raises:
        KeyError: if the interface is not in the catalogue.
    """
    spec = load_topic_catalogue().by_interface(interface)
    if spec is None:
        raise KeyError(interface)
    return spec.name
