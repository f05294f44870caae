"""Incident windows: periods where signals exceed their threshold, across services.

A bucket is busy when, within the last `smooth` buckets, at least `min_signals`
distinct (service, signal) pairs were anomalous, or one pair was anomalous in all of them
and reached `strong_factor` times the threshold: noise is
one series at a time, incidents move many, and an archive with one signal per service
(metrics only) still opens a window on one service that clearly breaks.

Busy buckets closer than `merge_gap_minutes` form a run. A run is then cut where its
incidents change: change points (PELT, Killick et al. 2012, from `ruptures`) of the
run's per-service anomaly indicators split it into segments, and a segment starts a new
window when most services anomalous in the segment before it are no longer anomalous
(a new incident replaces the old one; a fault that spreads to callers keeps its first
services anomalous and stays one window). A window longer than `max_window_minutes` is
cut at its strongest change point, or at the bound when it has none; each window says
why it starts where it does (`reason`).

A window opens `max_lag_minutes` before its first busy bucket (a root cause may lead its
symptoms by that much), but never before the previous window's end. A window where no
pair is anomalous in `min_buckets` buckets (blips only) is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from ocsf_ray.rca.options import RcaOptions

CONTINUES = 0.5  # share of the previous segment's anomalous services still anomalous: same incident


@dataclass(frozen=True)
class Window:
    """An incident window: [start, end) in epoch ms, with why it starts there."""

    id: str
    start: int  # epoch ms
    end: int  # epoch ms, end of the last busy bucket
    reason: str = ""  # why the window starts where it does

    def overlap(self, start: int, end: int) -> int:
        """Milliseconds shared with [start, end)."""
        return max(0, min(self.end, end) - max(self.start, start))


def window_id(start: int) -> str:
    """`w<UTC start as %Y%m%dT%H%M%SZ>`: stable across runs, sortable by time."""
    return "w" + datetime.fromtimestamp(start / 1000, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def busy_buckets(hot: pl.DataFrame, options: RcaOptions) -> np.ndarray:
    """Sorted buckets (epoch ms) where the anomalous pairs of the last `smooth` buckets
    weigh at least `min_signals` (a strong pair anomalous in all of them weighs
    `min_signals` alone)."""
    spread = pl.concat([hot.with_columns(pl.col("bucket") + i * options.bucket_ms) for i in range(options.smooth)])
    strong = options.strong_factor * options.threshold
    pairs = spread.group_by("bucket", "service", "signal").agg(pl.len().alias("hot"), pl.col("z").max())
    weight = pl.when((pl.col("hot") >= options.smooth) & (pl.col("z") >= strong)).then(options.min_signals).otherwise(1)
    return (pairs.group_by("bucket").agg(weight.sum().alias("weight"))
            .filter(pl.col("weight") >= options.min_signals).sort("bucket").get_column("bucket").to_numpy())


def change_points(indicators: np.ndarray, min_size: int) -> list[int]:
    """Positions (row indexes, ascending, excluding 0 and the end) where the mean of the
    [buckets, services] indicator matrix changes: PELT with a least-squares cost and a
    BIC-like penalty (log of the length, per service column)."""
    import ruptures

    rows, columns = indicators.shape
    if rows < 2 * min_size:
        return []
    penalty = np.log(rows) * max(columns, 1) * 0.25  # 0.25: the largest variance of a 0/1 series
    found = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(indicators.astype(float)).predict(pen=penalty)
    return [p for p in found if 0 < p < rows]


def _segments(run: np.ndarray, hot: pl.DataFrame, options: RcaOptions) -> list[tuple[int, int, str]]:
    """(first bucket, last bucket, reason) of each incident in one run of busy buckets."""
    step = options.bucket_ms
    buckets = np.arange(run[0], run[-1] + step, step)
    inside = hot.filter(pl.col("bucket").is_between(run[0], run[-1]))
    services = sorted(inside.get_column("service").unique().to_list())
    indicators = np.zeros((len(buckets), len(services)))
    if services:
        index = {s: i for i, s in enumerate(services)}
        indicators[(inside.get_column("bucket").to_numpy() - run[0]) // step,
                   [index[s] for s in inside.get_column("service").to_list()]] = 1.0
    cuts = [0, *change_points(indicators, options.smooth), len(buckets)]
    active = [set(np.flatnonzero(indicators[a:b].any(axis=0))) for a, b in zip(cuts, cuts[1:])]
    groups, reasons = [[0]], ["anomalous signals on several series"]
    for i in range(1, len(active)):
        previous = active[groups[-1][-1]]
        still = len(previous & active[i]) / len(previous) if previous else 0.0
        if active[i] and still < CONTINUES:
            ended = ", ".join(services[j] for j in sorted(previous - active[i])) or "none"
            begun = ", ".join(services[j] for j in sorted(active[i] - previous)) or "none"
            groups.append([i])
            reasons.append(f"change point: {begun} anomalous as {ended} recovered")
        else:
            groups[-1].append(i)
    out = []
    for group, reason in zip(groups, reasons):
        out += _bounded(buckets, cuts, group, indicators, reason, options)
    return out


def _bounded(buckets: np.ndarray, cuts: list[int], group: list[int], indicators: np.ndarray, reason: str,
             options: RcaOptions) -> list[tuple[int, int, str]]:
    """The group of segments as one window, or cut into windows of at most
    `max_window_minutes` at their strongest inner change points (else at the bound)."""
    first, last = cuts[group[0]], cuts[group[-1] + 1]
    inner = cuts[group[0] + 1: group[-1] + 1]
    limit = max(options.max_window_minutes * 60_000 // options.bucket_ms, options.smooth)
    pieces = []
    while last - first > limit:
        candidates = [c for c in inner if first < c <= first + limit]
        if candidates:
            strength = [np.abs(indicators[first:c].mean(axis=0) - indicators[c:last].mean(axis=0)).sum()
                        for c in candidates]
            cut, why = candidates[int(np.argmax(strength))], "longer than max_window_minutes: cut at its strongest change point"
        else:
            cut, why = first + limit, "longer than max_window_minutes with no change point: cut at the bound"
        pieces.append((first, cut, reason))
        first, reason = cut, why
    pieces.append((first, last, reason))
    return [(int(buckets[a]), int(buckets[b - 1]), r) for a, b, r in pieces]


def incident_windows(signals: pl.DataFrame, options: RcaOptions) -> list[Window]:
    """Windows around bursts of simultaneous anomalies (module docstring), by start."""
    hot = signals.filter(pl.col("z") >= options.threshold).select("service", "signal", "bucket", "z")
    if hot.is_empty():
        return []
    busy = busy_buckets(hot, options)
    if not len(busy):
        return []
    runs = np.split(busy, np.flatnonzero(np.diff(busy) > options.merge_gap_minutes * 60_000) + 1)
    windows: list[Window] = []
    lead = options.max_lag_minutes * 60_000
    for run in runs:
        for first, last, reason in _segments(run, hot, options):
            start = max(first - lead, windows[-1].end if windows else first - lead)
            windows.append(Window(window_id(start), start, last + options.bucket_ms, reason))
    return [w for w in windows if _sustained(hot, w, options)]


def _sustained(hot: pl.DataFrame, window: Window, options: RcaOptions) -> bool:
    """Whether some pair is anomalous in at least `min_buckets` of the window's buckets:
    a window of blips alone has nothing to rank."""
    inside = hot.filter(pl.col("bucket").is_between(window.start, window.end, closed="left"))
    return not inside.is_empty() and inside.group_by("service", "signal").len().get_column("len").max() >= options.min_buckets
