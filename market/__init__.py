"""The market simulator: a deterministic synthetic MHHS market publishing DIP-style events.

Participants and meter points (``participants``), registration life cycles (``registration``),
daily consumption (``consumption``), reference data (``reference``) and injected faults
(``faults``), composed by ``simulation.Simulation``; ``jsonl`` is its file format. It is a
development and test tool: the product never imports it.
"""
