"""API: consumer-recovery replays and filtered extracts over HTTP, masked and audited."""
