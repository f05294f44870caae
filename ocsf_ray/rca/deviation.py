"""How far a signal is from its own recent past, in standard-normal units.

Every signal gets one number per bucket, `z`, comparable across signals so that one
threshold and one ranking serve them all. Shares of events (errors, anomalies) are
tested against the share in the trailing baseline with a binomial tail, because a
service logging five events a minute has shares of 0 or 0.2 and no useful spread;
levels (latency, volume, metric values) are compared with the trailing median and
inter-quartile range, which a minority of incident buckets inside the baseline does
not move. The baseline always ends where the compared window starts.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

IQR_TO_SIGMA = 1.349
MAX_Z = 12.0


def window_sums(values: np.ndarray, width: int) -> np.ndarray:
    """Sum of the last `width` entries at each position (fewer at the start)."""
    total = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return total[ends] - total[np.maximum(ends - width, 0)]


def share_deviation(hits: np.ndarray, counts: np.ndarray, smooth: int, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """(share, z) per bucket: the share of `hits` in the last `smooth` buckets against
    the share over the `baseline` buckets before them; NaN without enough baseline."""
    k, n = window_sums(hits, smooth), window_sums(counts, smooth)
    base_k = np.concatenate([np.zeros(smooth), window_sums(hits, baseline)[:-smooth]])
    base_n = np.concatenate([np.zeros(smooth), window_sums(counts, baseline)[:-smooth]])
    p0 = (base_k + 0.5) / (base_n + 1.0)  # never exactly 0: one error after a clean hour is not infinite
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        tail = stats.binom.sf(k - 1, n, p0)
        z = np.clip(stats.norm.isf(np.clip(tail, 1e-300, 1.0)), 0.0, MAX_Z)
    enough = (n > 0) & (base_n >= 10 * smooth)
    return share, np.where(enough, z, np.nan)


def _trailing_quantiles(column: pl.Expr, width: int, lag: int, min_samples: int) -> list[pl.Expr]:
    past = column.shift(lag)
    return [past.rolling_quantile(q, window_size=width, min_samples=min_samples).alias(name)
            for q, name in ((0.25, "q1"), (0.5, "median"), (0.75, "q3"))]


def level_deviation(level: np.ndarray, smooth: int, baseline: int, noise: np.ndarray) -> np.ndarray:
    """z per bucket of an already-smoothed level against its trailing median/IQR.

    `noise` is a floor on the scale per bucket (sampling noise the IQR of a quiet
    baseline underestimates), so a flat baseline does not make every wiggle infinite.
    """
    frame = pl.DataFrame({"x": level}).with_columns(
        *_trailing_quantiles(pl.col("x"), baseline, smooth, max(baseline // 4, 2)))
    median, q1, q3 = (frame.get_column(c).to_numpy().astype(float) for c in ("median", "q1", "q3"))
    scale = np.maximum((q3 - q1) / IQR_TO_SIGMA, noise)
    with np.errstate(invalid="ignore"):
        return np.clip((level - median) / scale, -MAX_Z, MAX_Z)


def robust_scale(median: np.ndarray, q1: np.ndarray, q3: np.ndarray, relative_floor: float = 0.01) -> np.ndarray:
    """Sigma estimate from quartiles, floored at a share of the median (flat series)."""
    return np.maximum((q3 - q1) / IQR_TO_SIGMA, np.maximum(relative_floor * np.abs(median), 1e-9))
