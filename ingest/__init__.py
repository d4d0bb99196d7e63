"""Ingest: consume every MHHS broker event and land it in the lakehouse exactly once."""
