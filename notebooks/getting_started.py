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
# # Getting started: what the store holds
#
# The MHHS Event Store keeps every event that crossed the market's broker in Apache Iceberg
# tables: `events` (the raw bytes exactly as received, with their Kafka coordinates), `quarantine`
# (what was technically invalid, with the reason), and typed tables refined from them
# (`consumption`: one row per half hour of every IF-021 version; `registration`: who was appointed
# to what, when).
#
# The notebook reads the store the `MHHS_*` settings name, as every `mhhs` command does
# (`MHHS_WAREHOUSE`, `MHHS_CATALOG_TYPE`, `MHHS_CATALOG_URI`, ...). After `make demo` that is
# the local store under `var/`.

# %%
import matplotlib.pyplot as plt
import polars as pl

from lakehouse.duck import lake_connection
from lakehouse.frames import scan
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import TABLES

settings = LakehouseSettings()
store = Store(settings)
con = lake_connection(settings)  # DuckDB, one view per table, pinned to the current snapshots
print(f"warehouse: {settings.warehouse}")

# %% [markdown]
# ## Tables, rows and snapshots
#
# Every commit is an immutable snapshot: the store can be read as it was at any retained one.

# %%
inventory = pl.DataFrame(
    [
        {
            "table": name,
            "rows": con.sql(f'SELECT count(*) FROM "{name}"').fetchone()[0],
            "snapshots": len(snaps := store.snapshots(name)),
            "last commit (UTC)": snaps[-1].committed_at.strftime("%Y-%m-%d %H:%M:%S") if snaps else None,
        }
        for name in sorted(TABLES)
    ]
)
inventory

# %% [markdown]
# ## Topics and settlement dates
#
# One Kafka topic per interface. `events` is partitioned by topic and settlement date, so a
# question about one day reads only that day's files.

# %%
topics = con.sql(
    """
    SELECT topic, interface_id, count(*) AS events,
           min(settlement_date) AS first_date, max(settlement_date) AS last_date
    FROM events GROUP BY ALL ORDER BY events DESC
    """
).pl()
topics

# %% [markdown]
# ## DuckDB SQL and Polars, side by side
#
# The same question, the energy imported per UTC settlement date (current values only: a revised
# half hour counts once), asked of DuckDB and of a Polars LazyFrame over the same Iceberg table.

# %%
by_sql = con.sql(
    """
    SELECT utc_settlement_date, count(DISTINCT mpan) AS mpans, sum(consumption_kwh) AS kwh
    FROM consumption_latest WHERE measurement_quantity = 'AI'
    GROUP BY ALL ORDER BY utc_settlement_date
    """
).pl()

consumption = scan(settings, "consumption")  # a LazyFrame: nothing is read until .collect()
latest = (
    consumption.filter(pl.col("measurement_quantity") == "AI")
    .sort("sender_timestamp", "source_offset")
    .group_by("mpan", "measurement_quantity", "period_end_utc")
    .last()  # the newest version of each half hour
)
by_polars = (
    latest.group_by("utc_settlement_date")
    .agg(pl.col("mpan").n_unique().alias("mpans"), pl.col("consumption_kwh").sum().alias("kwh"))
    .sort("utc_settlement_date")
    .collect()
)
assert by_sql["mpans"].to_list() == by_polars["mpans"].to_list(), "DuckDB and Polars disagree"
by_sql.join(by_polars, on="utc_settlement_date", suffix=" (polars)")

# %% [markdown]
# ## One day's consumption per GSP group
#
# `consumption` rows keep their source event's coordinates, so the GSP group the event was
# routed by comes from `events`. Local half hours run 1..48 (46 or 50 on clock-change days).

# %%
day = by_sql["utc_settlement_date"][0] if by_sql.height else None
per_gsp = con.sql(
    """
    SELECT e.gsp_group, c.local_period, sum(c.consumption_kwh) AS kwh
    FROM consumption_latest c
    JOIN events e ON e.topic = c.source_topic AND e.partition = c.source_partition AND e."offset" = c.source_offset
    WHERE c.utc_settlement_date = $day AND c.measurement_quantity = 'AI'
    GROUP BY ALL ORDER BY e.gsp_group, c.local_period
    """,
    params={"day": day},
).pl()

fig, ax = plt.subplots(figsize=(10, 4))
for (gsp,), rows in per_gsp.group_by("gsp_group", maintain_order=True):
    ax.plot(rows["local_period"], rows["kwh"].cast(pl.Float64), label=gsp.lstrip("_"))  # hides "_A"-style labels
ax.set(title=f"Import per half hour by GSP group, {day}", xlabel="local settlement period", ylabel="kWh")
ax.legend(ncol=7, fontsize="small")
plt.show()
