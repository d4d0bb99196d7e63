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
# # Consumer recovery: replay what was missed, resume Kafka, no gap and no duplicate
#
# A market participant's consumer was offline longer than the broker keeps records, or lost its
# state. It knows the last offsets it processed. It asks the store's replay API for everything
# after them, page by page, and the end of the replay tells it exactly where to resume live
# consumption on Kafka (`resume_offsets`). Records the store set aside as technically invalid
# appear in the replay as `quarantined` lines, so every offset is accounted for.
#
# Needs the API (`mhhs serve`, `MHHS_NOTEBOOK_API_URL`) and the broker (`MHHS_KAFKA_BOOTSTRAP` or
# `make kafka-up`).

# %%
import matplotlib.pyplot as plt
import polars as pl

from ingest.kafka_client import end_offsets, read_from
from ingest.settings import IngestSettings
from notebooks.connect import ApiClient, api_token, kafka_bootstrap

TOPIC = "mhhs.consumption.if-021"
api_version = IngestSettings().api_version_tuple()
bootstrap = kafka_bootstrap()
ends = {p: n for (t, p), n in end_offsets(bootstrap, api_version, [TOPIC]).items()}
print(f"broker {bootstrap}: {sum(ends.values()):,} records in {len(ends)} partitions of {TOPIC}")

# %% [markdown]
# ## The consumer went offline halfway
#
# Say it had processed each partition up to half its current length (`stopped_at`: the next
# offset it would have read).

# %%
stopped_at = {p: n // 2 for p, n in ends.items()}

# %% [markdown]
# ## Replay over the API, page by page
#
# The token is a data service's (`MDS` role): events are entitled and masked for it exactly as on
# any other endpoint. Small pages here, to show the paging.

# %%
client = ApiClient(api_token("MDSV", "MDS"))
replay = client.replay(TOPIC, stopped_at, limit=2_000)
pages = pl.DataFrame(
    [{k: page[k] for k in ("events", "quarantined", "withheld") if k in page} for page in replay.pages]
).with_row_index("page")
print(f"{len(replay.events):,} events and {len(replay.quarantined):,} quarantined records in {pages.height} pages")
print(f"resume Kafka at {replay.resume_offsets}")
pages

# %% [markdown]
# ## Resume live consumption at `resume_offsets`
#
# A real Kafka consumer (kafka-python) reads from where the replay ended to the log end.

# %%
live = read_from(bootstrap, api_version, TOPIC, replay.resume_offsets)
print(f"{len(live):,} records only Kafka had (published after the store's last commit)")

# %% [markdown]
# ## Proof: every offset once
#
# Replayed events + quarantined lines + live records = every offset from `stopped_at` to the log
# end, each exactly once, and every replayed event byte-identical to what Kafka holds.

# %%
seen = (
    [(e["partition"], e["offset"]) for e in replay.events]
    + [(q["partition"], q["offset"]) for q in replay.quarantined]
    + [(r.partition, r.offset) for r in live]
)
expected = {(p, o) for p, n in ends.items() for o in range(stopped_at[p], n)}
truth = {(r.partition, r.offset): r.value for r in read_from(bootstrap, api_version, TOPIC, stopped_at)}
expected |= set(truth)  # and anything published while this notebook ran
duplicates = len(seen) - len(set(seen))
gaps = expected - set(seen)
altered = sum(truth[(e["partition"], e["offset"])] != e["value"].encode() for e in replay.events)
print(f"offsets expected {len(expected):,}, received {len(seen):,}: {len(gaps)} missing, {duplicates} twice")
print(f"{altered} replayed events differ from Kafka's bytes")
assert not gaps and not duplicates and not altered, "the recovery is not exact"

# %%
per_partition = (
    pl.DataFrame(
        [{"partition": e["partition"], "source": "replayed"} for e in replay.events]
        + [{"partition": q["partition"], "source": "quarantined"} for q in replay.quarantined]
        + [{"partition": r.partition, "source": "live Kafka"} for r in live]
    )
    .group_by("partition", "source").len()
    .pivot(on="source", index="partition", values="len")
    .fill_null(0).sort("partition")
)  # fmt: skip
fig, ax = plt.subplots(figsize=(9, 4))
bottom = [0] * per_partition.height
for source in [c for c in ("replayed", "quarantined", "live Kafka") if c in per_partition.columns]:
    values = per_partition[source].to_list()
    ax.bar(per_partition["partition"].to_list(), values, bottom=bottom, label=source)
    bottom = [b + v for b, v in zip(bottom, values, strict=True)]
ax.set(title=f"Records after the consumer stopped, per partition of {TOPIC}", xlabel="partition", ylabel="records")
ax.legend()
plt.show()
client.close()
