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
# # Settlement KPIs: how much of settlement rests on estimates?
#
# Rule 5 of the market's business rules: every estimated half hour (quality indicator other than
# `A`) is a KPI, tracked per data service and supplier per day. Estimates settle at a guess and
# are reconciled later, so a data service or supplier whose share of estimates climbs is where
# settlement risk sits.
#
# Only current values count: a half hour revised from an estimate to an actual reading is an
# actual (`consumption_latest`, the newest version of each half hour).

# %%
import matplotlib.pyplot as plt
import polars as pl

from lakehouse.duck import lake_connection
from lakehouse.settings import LakehouseSettings

con = lake_connection(LakehouseSettings())

# %% [markdown]
# ## Estimated share per data service, supplier and day
#
# The supplier of an MPAN on a date is the one whose registration (`role = 'SUP'`) covers it.

# %%
kpis = (
    con.sql(
        """
    WITH supplier AS (
        SELECT mpan, participant AS supplier, effective_from,
               coalesce(effective_to, DATE '9999-12-31') AS effective_to
        FROM registration WHERE role = 'SUP'
    )
    SELECT c.utc_settlement_date AS day, c.data_service_dip_id AS data_service,
           coalesce(s.supplier, '(none)') AS supplier,
           count(*) AS periods,
           count(*) FILTER (WHERE coalesce(c.quality_indicator, '') <> 'A') AS estimated
    FROM consumption_latest c
    LEFT JOIN supplier s
      ON s.mpan = c.mpan AND c.utc_settlement_date BETWEEN s.effective_from AND s.effective_to
    GROUP BY ALL
    """
    )
    .pl()
    .with_columns(estimated_share=pl.col("estimated") / pl.col("periods"))
)
print(f"{kpis.height} data service x supplier x day rows, {kpis['periods'].sum():,} half hours")
kpis.sort("estimated_share", descending=True).head(10)

# %% [markdown]
# ## The worst offenders
#
# Over the whole period, the data services with the largest share of estimated half hours (at
# least 1,000 half hours, so a tiny portfolio does not top the list by chance).

# %%
by_service = (
    kpis.group_by("data_service")
    .agg(pl.col("periods").sum(), pl.col("estimated").sum())
    .filter(pl.col("periods") >= 1000)
    .with_columns(estimated_share=pl.col("estimated") / pl.col("periods"))
    .sort("estimated_share", descending=True)
)
worst = by_service.head(8)
worst

# %%
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(worst["data_service"].to_list()[::-1], (worst["estimated_share"] * 100).to_list()[::-1])
ax.set(title="Share of estimated half hours, worst data services", xlabel="% estimated")
plt.show()

# %% [markdown]
# ## Over time
#
# The market's daily share of estimates, and the worst three data services' own.

# %%
daily = (
    kpis.group_by("day").agg(pl.col("periods").sum(), pl.col("estimated").sum()).sort("day")
    .with_columns(estimated_share=pl.col("estimated") / pl.col("periods"))
)  # fmt: skip
fig, ax = plt.subplots(figsize=(9, 4))
ax.plot(daily["day"], daily["estimated_share"] * 100, marker="o", linewidth=3, label="whole market")
for service in worst["data_service"].head(3):
    rows = (
        kpis.filter(pl.col("data_service") == service)
        .group_by("day").agg(pl.col("periods").sum(), pl.col("estimated").sum()).sort("day")
    )  # fmt: skip
    ax.plot(rows["day"], rows["estimated"] / rows["periods"] * 100, marker=".", label=service)
ax.set(title="Estimated half hours per day", ylabel="% estimated")
ax.legend()
fig.autofmt_xdate()
plt.show()
