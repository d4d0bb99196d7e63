"""Notebooks for analysts (jupytext percent scripts), over the public functions of lakehouse and ingest.

``notebooks.connect`` finds the broker and the API from the ``MHHS_*`` settings.
"""
