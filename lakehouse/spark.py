"""Apache Spark over the product's Iceberg catalog, with Iceberg's Spark runtime from Maven Central.

``spark_session`` starts a local Spark whose catalog named like the product's (``mhhs`` by default)
is the same Iceberg catalog the product writes: the embedded SQLite catalog through Iceberg's
``JdbcCatalog`` (pyiceberg's SQL catalog uses the same tables), or the REST catalog, with S3 storage
from the same settings. Spark is optional: ``pip install -e '.[interop]'`` (``make interop`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lakehouse.catalog import catalog_properties
from lakehouse.errors import LakehouseError
from lakehouse.maven import fetch_artifacts
from lakehouse.settings import LakehouseSettings

SPARK_LINE = "4.0"
ICEBERG_SPARK_RUNTIME = f"org.apache.iceberg:iceberg-spark-runtime-{SPARK_LINE}_2.13:1.10.1"
ICEBERG_AWS_BUNDLE = "org.apache.iceberg:iceberg-aws-bundle:1.10.1"
SQLITE_JDBC = "org.xerial:sqlite-jdbc:3.50.3.0"
POSTGRES_JDBC = "org.postgresql:postgresql:42.7.8"


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


def spark_jars(settings: LakehouseSettings) -> list[Path]:
    """The jars Spark needs for this catalog, fetched with Maven once."""
    coordinates = [ICEBERG_SPARK_RUNTIME]
    if settings.catalog_type == "sql":
        uri = catalog_properties(settings)["uri"]
        coordinates.append(SQLITE_JDBC if str(uri).startswith("sqlite") else POSTGRES_JDBC)
    if settings.s3_endpoint or settings.warehouse.startswith("s3://"):
        coordinates.append(ICEBERG_AWS_BUNDLE)
    name = "spark-" + "-".join(sorted(c.split(":")[1] for c in coordinates))
    libs = fetch_artifacts(name, coordinates)
    return sorted(libs.glob("*.jar"))


def spark_session(
    settings: LakehouseSettings, *more: LakehouseSettings, app_name: str = "mhhs-event-store"
) -> Any:
    """A local ``pyspark.sql.SparkSession`` reading (and able to write) the product's catalog.

    ``more`` registers further catalogs (each under its own ``catalog_name``) in the same session.

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
        .config("spark.jars", ",".join(sorted({str(j) for s in (settings, *more) for j in spark_jars(s)})))
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
