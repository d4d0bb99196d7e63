"""Read paths over the product's tables: pinned snapshots, pruned by partition and offset."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from lakehouse.catalog import open_catalog
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import ensure_table


def read_table(
    settings: LakehouseSettings,
    name: str,
    columns: Sequence[str] | None = None,
    row_filter: BooleanExpression | None = None,
    snapshot_id: int | None = None,
    catalog: Catalog | None = None,
) -> pa.Table:
    """Read ``name`` (optionally some columns, a filter, as of a snapshot) into Arrow."""
    table = ensure_table(catalog or open_catalog(settings), settings, name)
    scan = table.scan(
        row_filter=row_filter if row_filter is not None else AlwaysTrue(),
        selected_fields=tuple(columns) if columns else ("*",),
        snapshot_id=snapshot_id,
    )
    return scan.to_arrow()
