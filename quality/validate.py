"""Great Expectations over the day frames: an ephemeral context, a Checkpoint per frame, findings out.

One ephemeral context per run holds the suites (``quality.suites``), a pandas data source with one
dataframe asset per frame, a ValidationDefinition per suite and a Checkpoint per frame (all the
suites over that frame, and the Data Docs action). Each date's frames are passed as batch parameters.
GX decides pass or fail; every unexpected row becomes a finding naming its entity.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from quality.frames import ENTITY, DayFrames
from quality.suites import FRAME_OF_SUITE, SUITES, check_by_key

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no-op in GX 1.24 (no analytics client); safe elsewhere

import great_expectations as gx
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig

SITE = "local_site"
FINDING_FIELDS = (
    "run_id",
    "suite",
    "rule",
    "severity",
    "check",
    "utc_settlement_date",
    "mpan",
    "measurement_quantity",
    "participant",
    "transaction_id",
    "observed",
    "expected",
)
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": list(ENTITY)}


@dataclass
class SuiteOutcome:
    """What one suite said about one date."""

    suite: str
    success: bool
    evaluated: int
    unexpected: Counter[int] = field(default_factory=Counter)  # rule -> unexpected entities
    findings: list[dict[str, Any]] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: pandas' missing value
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


class Validator:
    """The suites of every subject in one ephemeral GX context, with an optional Data Docs site."""

    def __init__(self, docs_dir: Path | None = None) -> None:
        self.docs_dir = docs_dir.resolve() if docs_dir is not None else None  # GX wants an absolute path
        docs_dir = self.docs_dir
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        if SITE in context.list_data_docs_sites():
            context.delete_data_docs_site(SITE)
        if docs_dir is not None:
            context.add_data_docs_site(
                site_name=SITE,
                site_config={  # type: ignore[typeddict-unknown-key]
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        source = context.data_sources.add_pandas(name="mhhs")
        definitions: dict[str, list[Any]] = {}
        for suite_name, checks in SUITES.items():
            frame = FRAME_OF_SUITE[suite_name]
            if frame not in definitions:
                definitions[frame] = []
                source.add_dataframe_asset(name=frame).add_batch_definition_whole_dataframe(name=f"{frame}-day")
            suite = context.suites.add(gx.ExpectationSuite(name=suite_name, meta={"subject": suite_name}))
            for check in checks:
                suite.add_expectation(check.expectation())
            batch = source.get_asset(frame).get_batch_definition(f"{frame}-day")
            definitions[frame].append(
                context.validation_definitions.add(gx.ValidationDefinition(name=suite_name, data=batch, suite=suite))
            )
        # the Data Docs are built once per run (``build_docs``), not by an action after every checkpoint
        self._checkpoints = {
            frame: context.checkpoints.add(
                gx.Checkpoint(name=frame, validation_definitions=vds, actions=[], result_format=RESULT_FORMAT)
            )
            for frame, vds in definitions.items()
        }
        self._context = context

    def validate(self, frames: DayFrames, run_id: str) -> list[SuiteOutcome]:
        """Run every suite over ``frames``; return what each found (one outcome per suite)."""
        outcomes: list[SuiteOutcome] = []
        tables: dict[str, pa.Table] = {
            "events": frames.events,
            "consumption": frames.consumption,
            "registration": frames.registration,
            "kpi": frames.kpi,
        }
        stamp = RunIdentifier(run_name=f"{frames.day.isoformat()} {run_id}", run_time=datetime.now(UTC))
        for frame, checkpoint in self._checkpoints.items():
            df = tables[frame].to_pandas()
            result = checkpoint.run(batch_parameters={"dataframe": df}, run_id=stamp)
            for suite_result in result.run_results.values():
                outcomes.append(self._outcome(suite_result, frames, run_id, len(df)))
        return outcomes

    def _outcome(self, suite_result: Any, frames: DayFrames, run_id: str, evaluated: int) -> SuiteOutcome:
        suite = suite_result.suite_name
        out = SuiteOutcome(suite, bool(suite_result.success), evaluated)
        for r in suite_result.results:
            check = check_by_key(suite, r.expectation_config.meta["check"])
            info = r.exception_info or {}
            failed = [v for v in ([info] if "raised_exception" in info else info.values()) if isinstance(v, dict)]
            if any(v.get("raised_exception") for v in failed):
                raise RuntimeError(f"{suite} {check.key}: {[v.get('exception_message') for v in failed]}")
            if r.success:
                continue
            rows = (r.result or {}).get("unexpected_index_list") or []
            out.unexpected[check.rule] += len(rows)
            for row in rows:
                expected = (
                    _text(row.get(check.expected.removeprefix("column:"))) or "(none)"
                    if check.expected.startswith("column:")
                    else check.expected
                )
                out.findings.append(
                    {
                        "run_id": run_id,
                        "suite": suite,
                        "rule": check.rule,
                        "severity": check.severity,
                        "check": check.key,
                        "utc_settlement_date": frames.day,
                        "mpan": _text(row.get("mpan")),
                        "measurement_quantity": _text(row.get("measurement_quantity")),
                        "participant": _text(row.get("participant")),
                        "transaction_id": _text(row.get("transaction_id")),
                        "observed": _text(row.get(check.observed)),
                        "expected": expected,
                    }
                )
        return out

    def build_docs(self) -> Path | None:
        """Render the Data Docs of every validation so far, then make the site work offline; return its index."""
        if self.docs_dir is None:
            return None
        from quality.datadocs import make_offline

        self._context.build_data_docs(site_names=[SITE])
        make_offline(self.docs_dir)
        return self.docs_dir / "index.html"
