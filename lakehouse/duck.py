"""DuckDB over the Iceberg tables, offline: the extensions come from PyPI packages, not the web."""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import TYPE_CHECKING

import duckdb
from pyiceberg.table import Table

from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from lakehouse.settings import LakehouseSettings


def _extension_path(package: str, name: str) -> str:
    path = resources.files(package).joinpath("extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension")
    if not path.is_file():
        raise LakehouseError(f"{package} has no {name} extension for duckdb {duckdb.__version__}")
    return str(path)


def memory_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for work over Arrow tables: no extensions, UTC, no progress bar."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.InvalidInputException):  # inside Jupyter, DuckDB wants ipywidgets for this
        conn.execute("SET enable_progress_bar = false")
    return conn


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the avro and iceberg extensions loaded from local files.

    Raises:
        LakehouseError: if the extension packages do not match the installed DuckDB.
    """
    conn = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    conn.execute(f"LOAD '{_extension_path('duckdb_extension_avro', 'avro')}'")
    conn.execute(f"LOAD '{_extension_path('duckdb_extension_iceberg', 'iceberg')}'")
    with contextlib.suppress(duckdb.InvalidInputException):  # inside Jupyter, DuckDB wants ipywidgets for this
        conn.execute("SET enable_progress_bar = false")
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    return conn


def iceberg_scan_sql(table: Table, snapshot_id: int | None = None) -> str:
    """A FROM-clause expression reading ``table`` as of ``snapshot_id`` (default: current)."""
    location = table.metadata_location.replace("'", "''")
    if snapshot_id is None:
        return f"iceberg_scan('{location}')"
    return f"iceberg_scan('{location}', snapshot_from_id => {int(snapshot_id)})"


def create_views(
    conn: duckdb.DuckDBPyConnection, tables: dict[str, Table], snapshots: dict[str, int | None] | None = None
) -> None:
    """One view per table (named as the table), each pinned to its snapshot in ``snapshots``.

    A table with no snapshot yet is an empty view with its columns, so queries over it still run.
    """
    for name, table in tables.items():
        if table.current_snapshot() is None:
            conn.register(name, table.schema().as_arrow().empty_table())
            continue
        snap = (snapshots or {}).get(name)
        conn.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {iceberg_scan_sql(table, snap)}')


def lake_connection(
    settings: LakehouseSettings | None = None,
    snapshots: dict[str, int | None] | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per table of the store, and ``consumption_latest``.

    ``consumption_latest`` is the current value of each half hour (the newest version per MPAN x
    quantity x period, ``lakehouse.current``); ``consumption`` keeps every version. Each view reads
    the table's current snapshot, or the one in ``snapshots``. For analysts and ``mhhs lake sql``.
    """
    from lakehouse.catalog import open_catalog
    from lakehouse.current import NEWEST_ONLY
    from lakehouse.settings import LakehouseSettings
    from lakehouse.tables import CONSUMPTION, TABLES, ensure_table

    settings = settings or LakehouseSettings()
    catalog = open_catalog(settings)
    conn = connect(threads)
    create_views(conn, {name: ensure_table(catalog, settings, name) for name in TABLES}, snapshots)
    conn.execute(f"CREATE OR REPLACE VIEW consumption_latest AS SELECT * FROM {CONSUMPTION} {NEWEST_ONLY}")
    return conn
