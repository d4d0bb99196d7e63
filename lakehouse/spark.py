"""Apache Spark over the product's Iceberg catalog.

``spark_session`` starts a local Spark whose catalog named like the product's (``mhhs`` by default)
is the same Iceberg catalog the product writes: the embedded SQLite catalog through Iceberg's
``JdbcCatalog`` (pyiceberg's SQL catalog uses the same tables), or the REST catalog, with S3 storage
from the same settings. The caller brings the jars (Iceberg's Spark runtime and drivers, e.g. from
``devstack.spark.spark_jars(catalog_needs(settings))``); pyspark is a dev dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from lakehouse.catalog import catalog_properties
from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings

CatalogKind = Literal["sqlite", "postgresql", "rest"]


def jdbc_uri(sqlalchemy_uri: str) -> tuple[str, dict[str, str]]:
    """The JDBC URI (and credentials) for pyiceberg's SQLAlchemy catalog URI.

    Raises:
        LakehouseError: for a database this module cannot hand to Spark.
    """
    if sqlalchemy_uri.startswith("sqlite:///"):
        return "jdbc:sqlite:" + sqlalchemy_uri.removeprefix("sqlite:///"), {}
    parts = urlsplit(sqlalchemy_uri)
    if parts.scheme.split("+")[0] in {"postgresql", "postgres"}:
        creds = {"jdbc.user": parts.username or "", "jdbc.password": parts.password or ""}
        port = f":{parts.port}" if parts.port else ""
        return f"jdbc:postgresql://{parts.hostname}{port}{parts.path}", creds
    raise LakehouseError(f"Spark cannot open the SQL catalog at {parts.scheme}:// (SQLite and PostgreSQL only)")


def spark_catalog_conf(settings: LakehouseSettings) -> dict[str, str]:
    """Spark configuration registering the product's Iceberg catalog under its name."""
    props: dict[str, Any] = catalog_properties(settings)
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.warehouse": props["warehouse"],
    }
    if settings.catalog_type == "sql":
        uri, creds = jdbc_uri(props["uri"])
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = uri
        conf.update({f"{prefix}.{k}": v for k, v in creds.items()})
    else:
        conf[f"{prefix}.type"] = "rest"
        conf[f"{prefix}.uri"] = props["uri"]
        for key in ("credential", "token"):
            if key in props:
                conf[f"{prefix}.{key}"] = props[key]
    if "s3.endpoint" in props or str(props["warehouse"]).startswith("s3://"):
        conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        for key in ("s3.endpoint", "s3.path-style-access", "s3.access-key-id", "s3.secret-access-key"):
            if key in props:
                conf[f"{prefix}.{key}"] = str(props[key])
        conf[f"{prefix}.client.region"] = settings.s3_region
    return conf


def catalog_needs(settings: LakehouseSettings) -> tuple[CatalogKind, bool]:
    """What Spark needs for this catalog: its kind (sqlite, postgresql or rest) and whether data is on S3."""
    s3 = bool(settings.s3_endpoint) or settings.warehouse.startswith("s3://")
    if settings.catalog_type == "rest":
        return "rest", s3
    uri = str(catalog_properties(settings)["uri"])
    return ("sqlite" if uri.startswith("sqlite") else "postgresql"), s3


def spark_session(
    settings: LakehouseSettings,
    *more: LakehouseSettings,
    jars: Sequence[Path],
    app_name: str = "mhhs-event-store",
) -> Any:
    """A local ``pyspark.sql.SparkSession`` reading (and able to write) the product's catalog.

    ``more`` registers further catalogs (each under its own ``catalog_name``) in the same session;
    ``jars`` must hold what each needs (see ``catalog_needs``).

    Raises:
        LakehouseError: if pyspark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # optional dependency
        raise LakehouseError("pyspark is not installed: pip install -e '.[interop]'") from exc
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.jars", ",".join(sorted({str(j) for j in jars})))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "4")
    )
    for each in (settings, *more):
        for key, value in spark_catalog_conf(each).items():
            builder = builder.config(key, value)
    return builder.getOrCreate()
