"""How far a signal is from its own recent past, in standard-normal units.

Every signal gets one number per bucket, `z`, comparable across signals so that one
threshold and one ranking serve them all. Shares of events (errors, anomalies) are
tested against the share in the trailing baseline with a binomial tail, because a
service logging five events a minute has shares of 0 or 0.2 and no useful spread;
levels (latency, volume, metric values) are compared with the trailing median and a
tail-aware robust spread (`robust_scale`), which a minority of incident buckets inside
the baseline does not move. The baseline always ends where the compared window starts,
and a value gets no `z` before its baseline has `MIN_HISTORY` of its span.

`z` is never capped: two services far beyond any threshold stay ordered by how far, so a
ranking has no ties made by a cap (a binomial tail below 1e-300 is still converted
from its logarithm).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special, stats

IQR_TO_SIGMA = 1.349  # a normal distribution's interquartile range, in standard deviations
TAIL_TO_SIGMA = 2.563  # ... and its 10th-90th percentile spread
MIN_HISTORY = 0.25  # share of the baseline span a value's baseline must cover


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
        log_tail = stats.binom.logsf(k - 1, n, p0)
        # past float range the tail is its first term's order: log P(K = k) (exact in log space)
        log_tail = np.minimum(np.where(np.isneginf(log_tail), stats.binom.logpmf(k, n, p0), log_tail), 0.0)
        z = np.maximum(-special.ndtri_exp(log_tail), 0.0)
    filled = np.arange(1, len(hits) + 1) - smooth >= MIN_HISTORY * baseline
    enough = (n > 0) & (base_n >= 10 * smooth) & filled
    return share, np.where(enough, z, np.nan)


QUANTILES = ((0.1, "q10"), (0.25, "q1"), (0.5, "median"), (0.75, "q3"), (0.9, "q90"))


def _trailing_quantiles(column: pl.Expr, width: int, lag: int, min_samples: int) -> list[pl.Expr]:
    past = column.shift(lag)
    return [past.rolling_quantile(q, window_size=width, min_samples=min_samples).alias(name) for q, name in QUANTILES]


def level_deviation(level: np.ndarray, smooth: int, baseline: int, noise: np.ndarray) -> np.ndarray:
    """z per bucket of an already-smoothed level against its trailing median and
    `robust_scale`; NaN until the baseline holds MIN_HISTORY of its span.

    `noise` is a floor on the scale per bucket (sampling noise the IQR of a quiet
    baseline underestimates), so a flat baseline does not make every wiggle infinite.
    """
    frame = pl.DataFrame({"x": level}).with_columns(
        *_trailing_quantiles(pl.col("x"), baseline, smooth, max(int(MIN_HISTORY * baseline), 2)))
    quantiles = {name: frame.get_column(name).to_numpy().astype(float) for _, name in QUANTILES}
    scale = np.maximum(robust_scale(quantiles, 0.0), noise)
    with np.errstate(invalid="ignore"):
        return (level - quantiles["median"]) / scale


def robust_scale(quantiles: dict[str, np.ndarray], relative_floor: float = 0.01, tails: bool = True) -> np.ndarray:
    """A standard deviation estimate that heavy tails do not fool: the larger of the
    interquartile range's and (`tails`) the 10th-90th percentile spread's (each divided
    by what it is for a normal distribution), floored at a share of the median (flat
    series). For a normal baseline both agree; for a heavy-tailed one the tail spread is
    wider, so its everyday spikes are not anomalies. The 10th and 90th, not the 5th and
    95th: an incident that has lasted 6 of the baseline's 120 minutes would already be its
    own 95th percentile and mute itself. Without `tails`, the IQR alone: for values whose
    spikes are already filtered out (a rolling median), where a short baseline may hold
    a surge in more than a tenth of its buckets. `quantiles`: q1, median, q3 arrays, and
    q10, q90 with `tails`."""
    spread = (quantiles["q3"] - quantiles["q1"]) / IQR_TO_SIGMA
    if tails:
        spread = np.maximum(spread, (quantiles["q90"] - quantiles["q10"]) / TAIL_TO_SIGMA)
    return np.maximum(spread, np.maximum(relative_floor * np.abs(quantiles["median"]), 1e-9))
