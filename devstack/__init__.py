"""Development infrastructure: a local Apache Kafka broker, Iceberg's REST catalog server, Spark's jars.

All of it is Java fetched from Maven Central with Maven. Plain arguments in, nothing of the
product imported: the composition root (``mhhs``), the tests and the benchmarks use it; the
product's packages never do.
"""
