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
# # Time travel: a settlement date as the store knew it then, and now
#
# Settlement runs are repeated as data improves: late IF-021s arrive, estimates are revised to
# actuals. To explain why a figure changed between two runs, read the store as it was when the
# first one ran. Every commit to an Iceberg table is an immutable snapshot, so "as known at T"
# is an exact question with an exact answer.

# %%
import matplotlib.pyplot as plt
import polars as pl
from IPython.display import display

from lakehouse.duck import lake_connection
from lakehouse.history import read_as_known_at
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store

settings = LakehouseSettings()
store = Store(settings)
snapshots = store.snapshots("consumption")
pl.DataFrame([s.to_json(with_offsets=False) for s in snapshots]).select(
    "snapshot_id", "committed_at", "operation", "added_records", "total_records", "tags"
)

# %% [markdown]
# ## Pick a moment T
#
# Here the commit halfway through the history; in practice the time a settlement run started.

# %%
then = snapshots[max(0, len(snapshots) // 2 - 1)]
T = then.committed_at
print(f"T = {T.isoformat()} (snapshot {then.snapshot_id}); now = snapshot {snapshots[-1].snapshot_id}")

columns = ("mpan", "measurement_quantity", "utc_settlement_date", "period_end_utc", "consumption_kwh",
           "quality_indicator", "sender_timestamp", "source_offset")  # fmt: skip
known_then, how = read_as_known_at(store.table("consumption"), T, columns)
print(f"{known_then.num_rows:,} rows were known at T (answered from {how})")

# %% [markdown]
# ## What changed since T, per settlement date
#
# DuckDB reads the table pinned at both snapshots. Rows added since T are either **late data**
# (a half hour the store had not heard of at T) or **revisions** (a newer version of a half hour
# it already had).

# %%
con_then = lake_connection(settings, snapshots={"consumption": then.snapshot_id})
con_now = lake_connection(settings)
per_date = """
    SELECT utc_settlement_date, count(*) AS rows, count(DISTINCT mpan) AS mpans, sum(consumption_kwh) AS kwh
    FROM {view} WHERE measurement_quantity = 'AI' GROUP BY ALL
"""
then_df = con_then.sql(per_date.format(view="consumption_latest")).pl()
now_df = con_now.sql(per_date.format(view="consumption_latest")).pl()
compare = (
    now_df.join(then_df, on="utc_settlement_date", how="left", suffix="_at_T")
    .fill_null(0)
    .with_columns(kwh_change=pl.col("kwh") - pl.col("kwh_at_T"))
    .sort("utc_settlement_date")
)
compare

# %%
key = ["mpan", "measurement_quantity", "period_end_utc"]
utc = pl.col("period_end_utc").dt.convert_time_zone("UTC")  # DuckDB says Etc/UTC, Arrow UTC: the same instants
then_pl = pl.from_arrow(known_then).with_columns(utc)
now_pl = con_now.sql(f"SELECT {', '.join(columns)} FROM consumption").pl().with_columns(utc)
added = now_pl.join(then_pl, on=[*key, "source_offset"], how="anti")
late = added.join(then_pl.select(key).unique(), on=key, how="anti")
revisions = added.join(then_pl.select(key).unique(), on=key, how="semi")
changes = (
    pl.concat([late.with_columns(kind=pl.lit("late data")), revisions.with_columns(kind=pl.lit("revision"))])
    .group_by("utc_settlement_date", "kind").len().sort("utc_settlement_date")
)  # fmt: skip
print(f"since T: {late.height:,} late half hours, {revisions.height:,} revised half hours")
changes

# %%
fig, ax = plt.subplots(figsize=(9, 4))
dates = compare["utc_settlement_date"].cast(pl.String).to_list()
x = range(len(dates))
ax.bar([i - 0.2 for i in x], compare["rows_at_T"].to_list(), width=0.4, label=f"known at T ({T:%H:%M:%S})")
ax.bar([i + 0.2 for i in x], compare["rows"].to_list(), width=0.4, label="known now")
ax.set_xticks(list(x), dates, rotation=30)
ax.set(title="Current import half hours per settlement date", ylabel="half hours")
ax.legend()
plt.show()

# %% [markdown]
# ## One revised half hour, every version
#
# The typed table keeps every version (rule 3); the current value is the newest transaction by
# sender timestamp.

# %%
if revisions.height:
    one = revisions.row(0, named=True)
    versions = now_pl.filter(
        (pl.col("mpan") == one["mpan"])
        & (pl.col("measurement_quantity") == one["measurement_quantity"])
        & (pl.col("period_end_utc") == one["period_end_utc"])
    ).sort("sender_timestamp")
    display(versions)
else:
    print("no half hour was revised after T")
