"""Data files written by DuckDB straight into a table's location, described for an Iceberg commit.

DuckDB writes Parquet in parallel from its own vectors, so a typed table refined in DuckDB need not
be materialised as Arrow and split again by pyiceberg: ``staged_copy`` has DuckDB write a query's
rows partitioned (with the table's field IDs, so every Iceberg reader maps columns by ID), and
``publish_data_file`` moves a file into the table's location and returns its ``DataFile``
(statistics read back from the Parquet footer) for a commit.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.io.pyarrow import (
    bin_pack_arrow_table,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    pyarrow_to_schema,
    write_file,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table import Table, TableProperties, WriteTask
from pyiceberg.transforms import IdentityTransform

from lakehouse.errors import LakehouseError
from lakehouse.storage import filesystem_for_location

if TYPE_CHECKING:
    import duckdb


_CODECS = {"zstd", "snappy", "gzip", "lz4", "brotli", "uncompressed"}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _options(table: Table, columns: Iterable[str]) -> str:
    """COPY options: the table's Parquet settings and the field IDs of the columns written."""
    schema = table.schema()
    ids = ", ".join(f"{_quoted(c)}: {schema.find_field(c).field_id}" for c in columns)
    row_group = int(table.properties.get("write.parquet.row-group-limit", "122880"))
    codec = table.properties.get("write.parquet.compression-codec", "zstd").lower()
    if codec not in _CODECS:
        raise LakehouseError(f"{'.'.join(table.name())}: Parquet codec {codec!r} is not one DuckDB writes")
    return f"FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {row_group}, FIELD_IDS {{{ids}}}"


def _is_local(table: Table) -> bool:
    fs, _, _ = filesystem_for_location(table.location(), table.io.properties)
    return isinstance(fs, pafs.LocalFileSystem)


@contextmanager
def staged_copy(
    con: duckdb.DuckDBPyConnection, select_sql: str, table: Table, partition_by: str | None = None
) -> Iterator[dict[str, list[Path]]]:
    """DuckDB writes the rows of ``select_sql`` (the table's columns, then ``partition_by``) as Parquet.

    Yields the staged files by value of ``partition_by`` (a column that is not written), or all
    of them under ``""`` when there is no ``partition_by`` (one file, no partitioning work); the
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
        columns = [d[0] for d in con.execute(f"SELECT * FROM ({select_sql}) LIMIT 0").description or ()]
        options = _options(table, [c for c in columns if c != partition_by])
        staged: dict[str, list[Path]] = {}
        if partition_by is None:
            root.mkdir(exist_ok=True)
            path = root / "rows.parquet"
            con.execute(f"COPY ({select_sql}) TO {_quoted(str(path))} ({options})")
            staged[""] = [path]
        else:
            con.execute(f"COPY ({select_sql}) TO {_quoted(str(root))} ({options}, PARTITION_BY ({partition_by}))")
            for path in sorted(root.rglob("*.parquet")):
                value = unquote(path.parent.name.split("=", 1)[1])
                staged.setdefault(value, []).append(path)
        yield staged
    finally:
        shutil.rmtree(root, ignore_errors=True)


def required_nulls(table: Table, staged: Path) -> list[str]:
    """The table's required top-level columns a staged file may hold nulls in (from its footer)."""
    return _nulls_in_required(table, pq.read_metadata(staged))


def _nulls_in_required(table: Table, footer: pq.FileMetaData) -> list[str]:
    """Required top-level columns of ``table`` whose chunks in ``footer`` count nulls (or do not say)."""
    required = {f.name for f in table.schema().fields if f.required}
    found: set[str] = set()
    for g in range(footer.num_row_groups):
        group = footer.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            stats = chunk.statistics
            if chunk.path_in_schema in required and (stats is None or not stats.has_null_count or stats.null_count):
                found.add(chunk.path_in_schema)
    return sorted(found)


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
    if bad := _nulls_in_required(table, footer):
        raise LakehouseError(f"{location}: nulls in required columns {bad}; not committed")
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


def write_partition_runs(table: Table, rows: pa.Table) -> list[DataFile] | None:
    """Write ``rows``, already grouped by the table's identity partition columns, as data files.

    Each run of rows sharing the partition values is a zero-copy slice, bin-packed into files of the
    table's target size (pyiceberg's own ``append`` filters a copy of the rows per partition). None
    if the table is not identity-partitioned or the rows are not grouped (a value comes back later):
    the caller appends through pyiceberg then.
    """
    spec, schema = table.spec(), table.schema()
    if rows.num_rows == 0 or spec.is_unpartitioned() or any(f.transform != IdentityTransform() for f in spec.fields):
        return None
    names = [schema.find_column_name(f.source_id) or "" for f in spec.fields]
    change = pa.repeat(False, rows.num_rows - 1)
    for name in names:
        col = rows.column(name)
        change = pc.or_(change, pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, rows.num_rows - 1)), True))
    starts = [0, *(int(i) + 1 for i in pc.indices_nonzero(change).to_pylist())]
    keys = rows.select(names).take(starts).to_pylist()
    if len({tuple(k.values()) for k in keys}) < len(keys):
        return None
    bounds = [*starts, rows.num_rows]
    target = int(table.properties.get(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, "536870912"))
    task_schema = pyarrow_to_schema(rows.schema, name_mapping=schema.name_mapping, format_version=table.format_version)
    write_uuid, counter = uuid.uuid4(), itertools.count()
    tasks = (
        WriteTask(
            write_uuid=write_uuid,
            task_id=next(counter),
            record_batches=batches,
            partition_key=PartitionKey(
                field_values=[
                    PartitionFieldValue(field=f, value=key[n]) for f, n in zip(spec.fields, names, strict=True)
                ],
                partition_spec=spec,
                schema=schema,
            ),
            schema=task_schema,
        )
        for key, lo, hi in zip(keys, bounds, bounds[1:], strict=False)
        for batches in bin_pack_arrow_table(rows.slice(lo, hi - lo), target)
    )
    return list(write_file(io=table.io, table_metadata=table.metadata, tasks=tasks))
