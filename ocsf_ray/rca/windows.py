"""Incident windows: periods where signals exceed their threshold, across services.

Anomalous buckets of any (service, signal) closer than `merge_gap_minutes` are one
window, so an incident that reaches its callers hop by hop stays one window; a window
needs `min_signals` distinct anomalous (service, signal) pairs, so a lone blip of one
series is not an incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from ocsf_ray.rca.options import RcaOptions


@dataclass(frozen=True)
class Window:
    id: str
    start: int  # epoch ms, first anomalous bucket
    end: int  # epoch ms, end of the last anomalous bucket

    def overlap(self, start: int, end: int) -> int:
        return max(0, min(self.end, end) - max(self.start, start))


def window_id(start: int) -> str:
    return "w" + datetime.fromtimestamp(start / 1000, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def incident_windows(signals: pl.DataFrame, options: RcaOptions) -> list[Window]:
    """Windows around bursts of simultaneous anomalies, opened `max_lag_minutes` early.

    A bucket is in a window's core when at least `min_signals` distinct (service,
    signal) pairs were anomalous within the last `smooth` buckets: noise is one series
    at a time, incidents move many. The window starts `max_lag_minutes` before its core
    so that a root cause whose own signal leads its symptoms by that much is inside.
    """
    hot = signals.filter(pl.col("z") >= options.threshold).select("service", "signal", "bucket").unique()
    if hot.is_empty():
        return []
    spread = pl.concat([hot.with_columns(pl.col("bucket") + i * options.bucket_ms) for i in range(options.smooth)])
    busy = (spread.unique().group_by("bucket").agg(pl.len().alias("pairs"))
            .filter(pl.col("pairs") >= options.min_signals).sort("bucket").get_column("bucket").to_numpy())
    if not len(busy):
        return []
    breaks = np.flatnonzero(np.diff(busy) > options.merge_gap_minutes * 60_000) + 1
    lead = options.max_lag_minutes * 60_000
    return [Window(window_id(int(run[0]) - lead), int(run[0]) - lead, int(run[-1]) + options.bucket_ms)
            for run in np.split(busy, breaks)]
