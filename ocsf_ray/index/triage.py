"""After batch scoring: the top anomalies across families, explained.

Reads `<out>/scores/` in streamed batches (only the top-n survive each batch), then, per
family, fetches those events' feature rows and canonical fields by metadata_uid and
explains them with the bundle's scorer. Each metadata_uid is listed once: should
producers repeat uids across files, the uid's highest-scored row stands for it.
"""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ocsf_ray.index.explain import explain, raw_values
from ocsf_ray.index.scorer import SCORE_SCHEMA, FamilyScorer
from ocsf_ray.io.sources import filesystem_for, join_uri
from ocsf_ray.io.storage import parquet_files

TOP_COLUMNS = ["metadata_uid", "family", "anomaly_score", "time"]


def read_where_uid(root: str, uids: list[str], columns: list[str] | None = None) -> pl.DataFrame:
    """Rows of every Parquet file under `root` whose metadata_uid is in `uids`, files with
    differing columns unified (missing columns read as nulls)."""
    files, fs = parquet_files(root)
    if not files:
        return pl.DataFrame()
    schemas = []
    for path in files:
        with fs.open_input_file(path) as handle:
            schemas.append(pq.read_schema(handle))
    dataset = pads.dataset(files, schema=pa.unify_schemas(schemas, promote_options="permissive"), filesystem=fs, format="parquet")
    table = dataset.to_table(columns=columns, filter=pc.field("metadata_uid").isin(pa.array(uids, pa.string())))
    return pl.from_arrow(table)


def top_scored(out: str, n: int) -> pl.DataFrame:
    """The n highest anomaly scores across all families (ties broken by uid), n distinct
    metadata_uids: rows sharing a uid are represented by their highest-scored one."""
    files, fs = parquet_files(join_uri(out, "scores"))
    best = None
    for batch in pads.dataset(files, filesystem=fs, format="parquet").to_batches(columns=TOP_COLUMNS):
        frame = pl.from_arrow(batch).drop_nulls("anomaly_score")
        best = frame if best is None else pl.concat([best, frame])
        best = (best.sort(["anomaly_score", "metadata_uid"], descending=[True, False])
                .unique("metadata_uid", keep="first", maintain_order=True).head(n))
    return best if best is not None else pl.DataFrame(schema={c: SCORE_SCHEMA[c] for c in TOP_COLUMNS})


def once_per_uid(rows: pl.DataFrame, top: pl.DataFrame) -> pl.DataFrame:
    """One row per metadata_uid of rows fetched for the `top` events: the row at the
    time of the uid's top-scored row when there is one (rows sharing a uid are
    different events, and the flagged one is what needs explaining), else the first."""
    if rows.is_empty():
        return rows
    at = top.select("metadata_uid", pl.col("time").alias("__top_time"))
    elsewhere = (pl.col("time") != pl.col("__top_time")).fill_null(True)
    return (rows.join(at, on="metadata_uid", how="left").sort(elsewhere, maintain_order=True)
            .unique("metadata_uid", keep="first", maintain_order=True).drop("__top_time"))


def explain_top(bundle: str, out: str, n: int, top_features: int = 5) -> list[dict]:
    """Explanations of the n top-scored events (n distinct metadata_uids), best first."""
    top = top_scored(out, n)
    explained: dict[str, dict] = {}
    for (family,), part in top.partition_by("family", as_dict=True).items():
        uids = part.get_column("metadata_uid").to_list()
        scorer = FamilyScorer.load(bundle, family)
        features = once_per_uid(read_where_uid(join_uri(out, "features", family), uids), part)
        canonical = once_per_uid(read_where_uid(join_uri(out, "canonical", family), uids), part)
        raw = raw_values(canonical, scorer.model.spec) if canonical.height else None
        for item in explain(scorer, features, raw, top_features):
            explained[item["metadata_uid"]] = item
    return [explained[u] for u in top.get_column("metadata_uid").to_list() if u in explained]


def write_explanations(explanations: list[dict], out: str) -> str:
    """Write the explanations as `<out>/explanations.json`; return its location."""
    fs, inner, _ = filesystem_for(join_uri(out, "explanations.json"))
    with fs.open_output_stream(inner) as stream:
        stream.write(json.dumps(explanations, indent=1).encode())
    return join_uri(out, "explanations.json")


def score_counts(out: str) -> pl.DataFrame:
    """Per family: events, scored events, flagged events (from the written scores)."""
    files, fs = parquet_files(join_uri(out, "scores"))
    table = pads.dataset(files, filesystem=fs, format="parquet").to_table(columns=["family", "anomaly_score", "is_anomaly"])
    return pl.from_arrow(table).group_by("family").agg(
        pl.len().alias("events"), pl.col("anomaly_score").is_not_null().sum().alias("scored"),
        pl.col("is_anomaly").sum().alias("flagged"),
    ).sort("family")


def read_scores(out: str, columns: list[str], max_rows: int, seed: int = 0) -> pl.DataFrame:
    """Scored rows for plots: all of them, or a uniform sample of max_rows."""
    files, fs = parquet_files(join_uri(out, "scores"))
    dataset = pads.dataset(files, filesystem=fs, format="parquet")
    rows = dataset.count_rows(filter=pc.field("anomaly_score").is_valid())
    frame = pl.from_arrow(dataset.to_table(columns=columns, filter=pc.field("anomaly_score").is_valid()))
    return frame.sample(max_rows, seed=seed) if rows > max_rows else frame


def embedding_sample(bundle: str, out: str, family: str, rows: int, percentile: float, seed: int = 0):
    """(embeddings, anomaly scores, flags) of a uniform sample of one family's events:
    embeddings of different families come from different models and share no space."""
    import numpy as np

    files, fs = parquet_files(join_uri(out, "features", family))
    dataset = pads.dataset(files, filesystem=fs, format="parquet")
    total = dataset.count_rows()
    picks = np.sort(np.random.default_rng(seed).choice(total, size=min(rows, total), replace=False))
    features = pl.from_arrow(dataset.take(pa.array(picks)))
    scorer = FamilyScorer.load(bundle, family)
    found = scorer.neighbours(features)
    scored = scorer.score(features, percentile, found)
    return found.embeddings, scored.get_column("anomaly_score").to_numpy(), scored.get_column("is_anomaly").to_numpy()
