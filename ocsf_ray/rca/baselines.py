"""What the causal graph must beat, computed on the same window and signals.

- `robust_deviation`: ranking by robust deviation in the spirit of BARO (Pham et al., FSE
  2024) but without its change-point detection (the bench runs the published BARO), with no
  graph: each (service, signal) series' largest |value - median| / IQR inside the
  window, median and IQR taken over the baseline period before the window.
- `earliest_onset`: the anomalous signal that started first.
- `random`: the window's anomalous signals in random order (averaged over many orders).

Config changes are not signals, so no baseline ranks them: naming the change is what
the graph adds.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ocsf_ray.rca.accuracy import with_ranks
from ocsf_ray.rca.options import RcaOptions
from ocsf_ray.rca.windows import Window

RANDOM_ORDERS = 200


def robust_deviation(signals: pl.DataFrame, window: Window, options: RcaOptions) -> list[dict]:
    """Signals ranked by their largest |value - median| / IQR in the window against the
    baseline before it: a BARO-style robust score (Pham et al., 2024) without BARO's
    Bayesian change-point detection and without a graph."""
    before = window.start - options.baseline_minutes * 60_000
    past = (signals.filter(pl.col("bucket").is_between(before, window.start, closed="left"))
            .group_by("service", "signal").agg(
                pl.col("value").median().alias("median"),
                (pl.col("value").quantile(0.75) - pl.col("value").quantile(0.25)).alias("iqr")))
    inside = signals.filter(pl.col("bucket").is_between(window.start, window.end, closed="left"))
    scored = (inside.join(past, on=["service", "signal"])
              .with_columns(((pl.col("value") - pl.col("median")).abs()
                             / pl.max_horizontal(pl.col("iqr"), pl.col("median").abs() * 0.01, pl.lit(1e-9))).alias("score"))
              .group_by("service", "signal").agg(pl.col("score").max())
              .drop_nans("score").drop_nulls("score")
              .sort("score", "service", "signal", descending=[True, False, False]))
    return with_ranks([{"service": s, "signal": g, "score": round(float(v), 9)} for s, g, v in scored.iter_rows()])


def earliest_onset(nodes: pl.DataFrame) -> list[dict]:
    """The window's anomalous signals ranked by onset (larger magnitude first on ties)."""
    ordered = nodes.sort("onset", "magnitude", "service", "signal", descending=[False, True, False, False])
    return with_ranks([{"service": r["service"], "signal": r["signal"], "score": float(r["onset"])}
                       for r in ordered.iter_rows(named=True)])


def random_orders(nodes: pl.DataFrame, seed: int) -> list[list[str]]:
    """Service orders of `RANDOM_ORDERS` random rankings of the window's signals."""
    services = nodes.get_column("service").to_list()
    rng = np.random.default_rng(seed)
    return [[services[i] for i in rng.permutation(len(services))] for _ in range(RANDOM_ORDERS)]
