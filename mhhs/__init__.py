"""MHHS Event Store: the composition root (the ``mhhs`` command)."""
