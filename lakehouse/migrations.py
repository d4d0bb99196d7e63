"""Bringing a table created by an older version up to date: schema migrations, then new properties.

Schema migrations are additive and versioned: each table records the last one applied in a
property. A migration may only add optional fields (checked: every existing field keeps its ID,
name and type), so every snapshot written before it stays readable after it. Table properties the
product added since a table was created are added to it, never overwriting one it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.update.schema import UpdateSchema
from pyiceberg.types import StringType

from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)

VERSION_PROPERTY = "mhhs.schema-version"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change of one table, applied once, in version order."""

    table: str
    version: int
    description: str
    apply: Callable[[UpdateSchema], None]


def _consumption_evidence(update: UpdateSchema) -> None:
    update.add_column("consumption_raw", StringType(), doc="the value as sent, when consumption_kwh cannot hold it")
    update.add_column("refine_flag", StringType(), doc="excess_precision or out_of_range")


def _registration_dip_ids(update: UpdateSchema) -> None:
    update.add_column("participant_dip_id", StringType(), doc="the DIP ID of that MPID in that role")


def _checksum_algorithm(update: UpdateSchema) -> None:
    update.add_column("checksum_algorithm", StringType(), doc="sha256 or blake3 (null: sha256)")


# The product's migrations, oldest first. ``lakehouse.tables`` declares every table at its latest
# schema (a new table starts at the latest version); these bring older tables up to it.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("consumption", 1, "keep the value as sent when the decimal cannot hold it", _consumption_evidence),
    Migration("registration", 1, "the participant's DIP ID (rule 7 compares it)", _registration_dip_ids),
    Migration("access_log", 1, "which hash the checksum is (blake3 for the binary extracts)", _checksum_algorithm),
)


def latest_version(name: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a table ``name`` created now starts at (its newest migration, or 0)."""
    return max((m.version for m in migrations if m.table == name), default=0)


class MigrationError(LakehouseError):
    """A migration is not additive or out of order; nothing was changed."""


def schema_version(table: Table) -> int:
    """The last migration version applied to ``table`` (0 when none)."""
    return int(table.metadata.properties.get(VERSION_PROPERTY, "0"))


def migrate(table: Table, name: str, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations of table ``name`` in order; return the versions applied.

    Processes opening the table at once (``--processes``, an API beside ingest) race to apply a
    migration: the losers re-read the table and find it applied.

    Raises:
        MigrationError: if a migration would drop, rename or retype a field (it is not committed).
        CommitConflictError: if the table keeps changing under every attempt.
    """
    from lakehouse.retry import retry_commit

    applied: list[int] = []
    for m in sorted((m for m in migrations if m.table == name), key=lambda m: m.version):

        def attempt(n: int, m: Migration = m) -> bool:
            """Apply ``m`` unless it is there; a race lost to another process re-reads and finds it."""
            if n > 1:
                table.refresh()
            if m.version <= schema_version(table):
                return False
            before = {f.field_id: (f.name, f.field_type) for f in table.schema().fields}
            with table.transaction() as tx:
                with tx.update_schema() as update:
                    m.apply(update)
                after = {f.field_id: (f.name, f.field_type) for f in tx.table_metadata.schema().fields}
                changed = [fid for fid, spec in before.items() if after.get(fid) != spec]
                if changed:
                    raise MigrationError(f"migration {m.version} of {name} is not additive (fields {changed})")
                tx.set_properties({VERSION_PROPERTY: str(m.version)})
            return True

        if retry_commit(".".join(table.name()), attempt, 10):
            applied.append(m.version)
        table.refresh()
    return applied


def add_missing_properties(table: Table, wanted: Mapping[str, str], ident: str) -> None:
    """Give ``table`` the properties of ``wanted`` it lacks (never overwriting one it has).

    Best effort: a reader without write access, or a race lost ten times, leaves the table as it is
    (logged), and the next writer to open it tries again.
    """
    from lakehouse.retry import retry_commit

    def attempt(n: int) -> None:
        if n > 1:
            table.refresh()
        have = table.metadata.properties
        missing = {k: v for k, v in wanted.items() if k != "format-version" and k not in have}
        if missing:
            with table.transaction() as tx:
                tx.set_properties(missing)

    try:
        retry_commit(ident, attempt, max_attempts=10)
    except Exception as exc:  # never fails the read or write that opened the table
        log.warning("table_properties_not_added", extra={"table": ident, "error": f"{type(exc).__name__}: {exc}"})
