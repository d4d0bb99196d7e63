"""Notebooks for analysts; they call the public functions of lakehouse only."""
