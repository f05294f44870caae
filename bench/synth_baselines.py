"""AUROC of single-field baselines ("latency alone", "severity alone") on a synth archive.

An archive where one field separates anomalies from normal events is too easy to
say anything about a detector; these figures are the bar later work has to beat.

    python bench/synth_baselines.py [--events 100000 --services 8 --incidents 6 --seed 0]
"""

from __future__ import annotations

import argparse
import tempfile

import polars as pl
import ray
from sklearn.metrics import roc_auc_score

from ocsf_ray.synth import SOURCES, SynthConfig, generate_archive


def _fields(out: str, source: str) -> pl.DataFrame:
    events = pl.scan_parquet(f"{out}/events/{source}/**/*.parquet")
    columns = events.collect_schema().names()
    latency = [pl.col("duration").cast(pl.Float64)] if "duration" in columns else []
    if "http_response" in columns:
        latency.append(pl.col("http_response").struct.field("latency").cast(pl.Float64))
    return events.select(
        pl.col("metadata").struct.field("uid").alias("metadata_uid"),
        pl.lit(source).alias("source"),
        pl.col("severity_id").cast(pl.Float64).alias("severity"),
        (pl.coalesce(latency) if latency else pl.lit(None, pl.Float64)).alias("latency"),
    ).collect()


def baselines(out: str) -> pl.DataFrame:
    labels = pl.read_parquet(f"{out}/ground_truth/labels.parquet")
    events = pl.concat([_fields(out, s) for s in SOURCES]).join(labels, on="metadata_uid")
    rows = []
    for scope, frame in [("all sources", events)] + [(s, events.filter(pl.col("source") == s)) for s in SOURCES]:
        for field in ("latency", "severity"):
            scored = frame.filter(pl.col(field).is_not_null())
            y = scored["is_anomaly"].to_numpy()
            auroc = roc_auc_score(y, scored[field].to_numpy()) if 0 < y.sum() < len(y) else None
            rows.append({"baseline": f"{field} alone", "scope": scope, "events": len(scored),
                         "anomalous": int(y.sum()), "auroc": auroc})
    return pl.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--incidents", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as out:
        generate_archive(SynthConfig(out=out, events=args.events, services=args.services,
                                     incidents=args.incidents, seed=args.seed))
        table = baselines(out)
    with pl.Config(tbl_rows=-1, float_precision=3):
        print(table)


if __name__ == "__main__":
    main()
