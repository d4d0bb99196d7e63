# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Data quality: what is wrong, where, and is the store complete?
#
# `mhhs quality run` checks the market's twelve business rules with Great Expectations, one UTC
# settlement date at a time, and keeps every unexpected row as a finding (`quality_findings`:
# rule, severity, MPAN, quantity, participant, transaction ID, observed and expected).
# `mhhs quality certify` writes completeness certificates per topic and date (`completeness`).
# This notebook reads both, then drills down to one MPAN.

# %%
import matplotlib.pyplot as plt
import polars as pl

from lakehouse.duck import lake_connection
from lakehouse.settings import LakehouseSettings

con = lake_connection(LakehouseSettings())
runs = con.sql(
    """
    SELECT run_id, utc_settlement_date, min(started_at) AS started_at, sum(evaluated) AS evaluated,
           sum(errors) AS errors, sum(warnings) AS warnings, bool_and(success) AS success
    FROM quality_runs GROUP BY ALL ORDER BY started_at DESC, utc_settlement_date LIMIT 20
    """
).pl()
runs

# %% [markdown]
# ## Findings per date, rule and severity
#
# Only the latest run's findings for each date count (a re-run replaces what an earlier one said).

# %%
findings = con.sql(
    """
    WITH latest AS (
        SELECT utc_settlement_date, arg_max(run_id, started_at) AS run_id FROM quality_runs GROUP BY ALL
    )
    SELECT f.* FROM quality_findings f JOIN latest USING (utc_settlement_date, run_id)
    """
).pl()
summary = (
    findings.group_by("utc_settlement_date", "rule", "severity").len("findings")
    .sort("utc_settlement_date", "rule")
)  # fmt: skip
summary.pivot(on="utc_settlement_date", index=["rule", "severity"], values="findings").fill_null(0).sort("rule")

# %%
per_day = findings.group_by("utc_settlement_date", "severity").len().sort("utc_settlement_date")
table = per_day.pivot(on="severity", index="utc_settlement_date", values="len").fill_null(0)
fig, ax = plt.subplots(figsize=(9, 4))
bottom = [0] * table.height
days = table["utc_settlement_date"].cast(pl.String).to_list()
for severity in [s for s in ("error", "warning", "info", "kpi") if s in table.columns]:
    values = table[severity].to_list()
    ax.bar(days, values, bottom=bottom, label=severity)
    bottom = [b + v for b, v in zip(bottom, values, strict=True)]
ax.set(title="Findings per settlement date", ylabel="findings")
ax.legend()
fig.autofmt_xdate()
plt.show()

# %% [markdown]
# ## Completeness
#
# Per topic and date: every Kafka offset up to the committed position is held (as an event or in
# quarantine), and every MPAN x quantity due an IF-021 on the date has one.

# %%
completeness = con.sql(
    """
    SELECT topic, utc_settlement_date, events, quarantined, gap_offsets, expected_channels,
           missing_channels, late_arrivals, complete
    FROM completeness
    QUALIFY row_number() OVER (PARTITION BY topic, utc_settlement_date ORDER BY certified_at DESC) = 1
    ORDER BY utc_settlement_date, topic
    """
).pl()
print(f"{completeness['complete'].sum()} of {completeness.height} topic x date certificates complete")
completeness.filter(pl.col("topic") == "mhhs.consumption.if-021")

# %% [markdown]
# ## Drill down: the MPAN with the most errors
#
# Its findings, its registration history and the half hours of the day in question.

# %%
errors = findings.filter((pl.col("severity") == "error") & pl.col("mpan").is_not_null())
worst = errors.group_by("mpan").len().sort("len", descending=True)
if worst.height:
    mpan = worst["mpan"][0]
    mine = findings.filter(pl.col("mpan") == mpan).sort("utc_settlement_date", "rule")
    day = mine["utc_settlement_date"][0]
    print(f"MPAN {mpan}: {mine.height} findings; first on {day}")
    display_cols = ["utc_settlement_date", "rule", "severity", "check", "measurement_quantity", "participant",
                    "transaction_id", "observed", "expected"]  # fmt: skip
    print(mine.select(display_cols))
    registration = con.sql(
        "SELECT role, participant, effective_from, effective_to, energisation FROM registration WHERE mpan = $m "
        "ORDER BY effective_from, role",
        params={"m": mpan},
    ).pl()
    print(registration)
    half_hours = con.sql(
        "SELECT measurement_quantity, local_period, consumption_kwh, quality_indicator FROM consumption_latest "
        "WHERE mpan = $m AND utc_settlement_date = $d ORDER BY measurement_quantity, local_period",
        params={"m": mpan, "d": day},
    ).pl()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for (quantity,), rows in half_hours.group_by("measurement_quantity", maintain_order=True):
        ax.step(rows["local_period"], rows["consumption_kwh"].cast(pl.Float64), where="mid", label=quantity)
    ax.set(title=f"MPAN {mpan} on {day}", xlabel="local settlement period", ylabel="kWh")
    if half_hours.height:
        ax.legend()
    plt.show()
else:
    print("no error findings with an MPAN: nothing to drill into")
