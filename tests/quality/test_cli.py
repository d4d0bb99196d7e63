"""`mhhs quality`: exit codes a scheduler can act on, and clear messages for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from lakehouse.settings import LakehouseSettings
from tests.support.markets import land_records, simulated


def _mhhs(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MHHS_WAREHOUSE": str(tmp_path / "warehouse"),
        "MHHS_QUALITY_DOCS_DIR": str(tmp_path / "docs"),
        "MHHS_LOG_LEVEL": "WARNING",
    }
    return subprocess.run([sys.executable, "-m", "mhhs", "quality", *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def test_fail_on_error_exits_2_and_a_quiet_rerun_validates_nothing(tmp_path: Path) -> None:
    _, records = simulated(120, 2, date(2026, 4, 20), 707, 0.05)
    land_records(LakehouseSettings(warehouse=str(tmp_path / "warehouse")), records)
    first = _mhhs(tmp_path, "run", "--fail-on", "error")
    assert first.returncode == 2, first.stderr
    assert "findings of severity error exist" in first.stderr and "Data quality" in first.stdout
    again = _mhhs(tmp_path, "run", "--since-last")
    assert (
        again.returncode == 0 and "unchanged since the last run" in again.stderr and "0 dates validated" in again.stderr
    )
    report = _mhhs(tmp_path, "report", "--date", "2026-04-20")
    assert report.returncode == 0 and "Data Docs:" in report.stdout
    certify = _mhhs(tmp_path, "certify", "--date", "2026-04-20")
    assert certify.returncode == 0 and "consumption.if-021" in certify.stdout


def test_bad_input_ends_with_a_message(tmp_path: Path) -> None:
    bad = _mhhs(tmp_path, "run", "--fail-on", "catastrophic")
    assert bad.returncode == 1 and "--fail-on takes one of" in bad.stderr and "Traceback" not in bad.stderr
    both = _mhhs(tmp_path, "run", "--date", "2026-04-20", "--since-last")
    assert both.returncode == 1 and "not both" in both.stderr
    empty = _mhhs(tmp_path, "run", "--date", "2026-04-20")
    assert empty.returncode == 0 and "no data for this date" in empty.stderr
