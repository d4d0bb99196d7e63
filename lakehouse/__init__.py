"""Lakehouse: the Apache Iceberg catalog, tables, history, maintenance and read paths."""
