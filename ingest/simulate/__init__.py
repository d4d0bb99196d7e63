"""The market simulator: a deterministic synthetic MHHS market publishing DIP-style events."""
