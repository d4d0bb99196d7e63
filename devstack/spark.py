"""The jars Apache Spark needs to read the product's Iceberg catalog, fetched with Maven once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from devstack.maven import DEFAULT_CACHE, fetch_artifacts

SPARK_LINE = "4.0"
ICEBERG_SPARK_RUNTIME = f"org.apache.iceberg:iceberg-spark-runtime-{SPARK_LINE}_2.13:1.10.1"
ICEBERG_AWS_BUNDLE = "org.apache.iceberg:iceberg-aws-bundle:1.10.1"
SQLITE_JDBC = "org.xerial:sqlite-jdbc:3.50.3.0"
POSTGRES_JDBC = "org.postgresql:postgresql:42.7.8"

CatalogKind = Literal["sqlite", "postgresql", "rest"]
_JDBC: dict[str, str] = {"sqlite": SQLITE_JDBC, "postgresql": POSTGRES_JDBC}


def spark_coordinates(catalog: CatalogKind, s3: bool) -> list[str]:
    """The Maven coordinates for one catalog: Iceberg's Spark runtime, its JDBC driver, the AWS bundle."""
    coordinates = [ICEBERG_SPARK_RUNTIME]
    if catalog in _JDBC:
        coordinates.append(_JDBC[catalog])
    if s3:
        coordinates.append(ICEBERG_AWS_BUNDLE)
    return coordinates


def spark_jars(needs: Iterable[tuple[CatalogKind, bool]], cache_dir: Path = DEFAULT_CACHE) -> list[Path]:
    """Every jar for the given (catalog kind, on S3) pairs, fetched once and cached.

    Raises:
        MavenFetchError: if Maven is missing or cannot resolve them.
    """
    jars: set[Path] = set()
    for catalog, s3 in needs:
        coordinates = spark_coordinates(catalog, s3)
        name = "spark-" + "-".join(sorted(c.split(":")[1] for c in coordinates))
        jars.update(fetch_artifacts(name, coordinates, cache_dir).glob("*.jar"))
    return sorted(jars)
