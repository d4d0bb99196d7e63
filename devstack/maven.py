"""Java artifacts from Maven Central, fetched once with Maven into a cache outside git.

The local Kafka broker, the Iceberg REST catalog server used in tests and Spark's Iceberg runtime are
all plain Maven artifacts. ``fetch_artifacts`` writes a throw-away POM naming them, lets
``mvn dependency:copy-dependencies`` resolve them with their runtime dependencies, and marks the
directory complete so later calls cost nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import MavenFetchError

DEFAULT_CACHE = Path.home() / ".cache" / "mhhs-event-store"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One Maven coordinate (``group:artifact:version``)."""

    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, coordinate: str) -> Artifact:
        parts = coordinate.split(":")
        if len(parts) != 3 or not all(parts):
            raise MavenFetchError(f"not a group:artifact:version coordinate: {coordinate!r}")
        return cls(*parts)

    def xml(self) -> str:
        return (
            f"<dependency><groupId>{self.group}</groupId><artifactId>{self.artifact}</artifactId>"
            f"<version>{self.version}</version></dependency>"
        )


_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>uk.mhhs.eventstore</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    {dependencies}
  </dependencies>
</project>
"""


def fetch_artifacts(name: str, coordinates: list[str], cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Resolve ``coordinates`` and their runtime dependencies into ``cache_dir/name/libs``.

    Returns the directory of jars (a Java classpath is ``f"{libs}/*"``).

    Raises:
        MavenFetchError: if Maven is missing or cannot resolve the artifacts.
    """
    artifacts = [Artifact.parse(c) for c in coordinates]
    libs = cache_dir / name / "libs"
    marker = libs / ".complete"
    wanted = "\n".join(coordinates)
    if marker.exists() and marker.read_text(encoding="utf-8") == wanted:
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenFetchError("Maven (mvn) is not on PATH: install Maven 3 and Java 17+")
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    pom.write_text(_POM.format(name=name, dependencies="\n    ".join(a.xml() for a in artifacts)), encoding="utf-8")
    if libs.exists():
        shutil.rmtree(libs)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise MavenFetchError(f"Maven could not fetch {name}: " + " | ".join(tail))
    marker.write_text(wanted, encoding="utf-8")
    return libs


def java_binary() -> str:
    """The ``java`` launcher on PATH.

    Raises:
        MavenFetchError: if there is none.
    """
    java = shutil.which("java")
    if java is None:
        raise MavenFetchError("java is not on PATH: install Java 17+")
    return java
