"""Data files written by DuckDB straight into a table's location, described for an Iceberg commit.

DuckDB writes Parquet in parallel from its own vectors, so a typed table refined in DuckDB need not
be materialised as Arrow and split again by pyiceberg: ``staged_copy`` has DuckDB write a query's
rows partitioned (with the table's field IDs, so every Iceberg reader maps columns by ID), and
``publish_data_file`` moves a file into the table's location and returns its ``DataFile``
(statistics read back from the Parquet footer) for a commit.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table

from lakehouse.storage import filesystem_for_location


def _options(table: Table) -> str:
    ids = ", ".join(f"'{f.name}': {f.field_id}" for f in table.schema().fields)
    row_group = int(table.properties.get("write.parquet.row-group-limit", "122880"))
    codec = table.properties.get("write.parquet.compression-codec", "zstd")
    return f"FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {row_group}, FIELD_IDS {{{ids}}}"


def _is_local(table: Table) -> bool:
    fs, _, _ = filesystem_for_location(table.location(), table.io.properties)
    return isinstance(fs, pafs.LocalFileSystem)


@contextmanager
def staged_copy(
    con: duckdb.DuckDBPyConnection, select_sql: str, table: Table, partition_by: str
) -> Iterator[dict[str, list[Path]]]:
    """DuckDB writes the rows of ``select_sql`` (the table's columns, then ``partition_by``) as Parquet.

    Yields the staged files by value of ``partition_by`` (a column that is not written); the
    staging directory (beside the table's data on the local disk, so publishing is a rename;
    a temporary one otherwise) is removed afterwards, with whatever was not published.
    """
    if _is_local(table):
        _, base, _ = filesystem_for_location(table.location(), table.io.properties)
        root = Path(base) / "data" / f".staging-{uuid.uuid4()}"
        root.parent.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="mhhs-staging-"))
    try:
        con.execute(f"COPY ({select_sql}) TO '{root}' ({_options(table)}, PARTITION_BY ({partition_by}))")
        staged: dict[str, list[Path]] = {}
        for path in sorted(root.rglob("*.parquet")):
            value = unquote(path.parent.name.split("=", 1)[1])
            staged.setdefault(value, []).append(path)
        yield staged
    finally:
        shutil.rmtree(root, ignore_errors=True)


def publish_data_file(table: Table, staged: Path, partition: Mapping[str, date | str]) -> DataFile:
    """Move a staged file into the table's data location under ``partition`` and describe it for a commit."""
    part = "/".join(f"{k}={v.isoformat() if isinstance(v, date) else v}" for k, v in partition.items())
    location = f"{table.location().rstrip('/')}/data/{part}/{uuid.uuid4()}.parquet"
    fs, path, _ = filesystem_for_location(location, table.io.properties)
    if isinstance(fs, pafs.LocalFileSystem):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        staged.rename(path)
    else:
        pafs.copy_files(str(staged), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    return _data_file(table, location)


def delete_data_files(table: Table, files: Iterable[DataFile]) -> None:
    """Remove files that were written but will not be committed."""
    for f in files:
        table.io.delete(f.file_path)


def _data_file(table: Table, location: str) -> DataFile:
    """The ``DataFile`` of a written file: statistics and the partition from its footer.

    Like pyiceberg's ``parquet_file_to_data_file`` without its schema check, which refuses DuckDB's
    files because DuckDB marks every Parquet column optional; the columns are the table's by field
    ID and type (``write_data_file``), and a required column holds no nulls (its query filters them).
    """
    metadata = table.metadata
    schema = metadata.schema()
    input_file = table.io.new_input(location)
    with input_file.open() as stream:
        footer = pq.read_metadata(stream)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=footer,
        stats_columns=compute_statistics_plan(schema, metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=statistics.partition(metadata.spec(), schema),
        file_size_in_bytes=len(input_file),
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )
