"""Root-cause analysis settings with their defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RcaOptions:
    """How signals, incident windows and causal graphs are built.

    bucket_s: width of a time bucket; signals are computed per (service, bucket).
    smooth: buckets summed into each signal value, so that a service logging a few
        events a minute still gives a usable rate.
    baseline_minutes: trailing period a value is compared with (median and IQR, or the
        event share before it); long enough that an incident stays a minority of it.
    threshold: deviation (in standard-normal units) from which a signal is anomalous.
    merge_gap_minutes: anomalous buckets closer than this belong to one window.
    max_lag_minutes: longest delay from a cause's onset to its effect's onset.
    change_lookback_minutes: config changes this long before a window are candidates.
    min_signals: a window needs anomalies on at least this many (service, signal) pairs
        within one smoothing span, or one pair anomalous in all `smooth` buckets of the
        span and at `strong_factor` times the threshold.
    strong_factor: see min_signals.
    max_window_minutes: a window longer than this is cut (at its strongest change point).
    min_buckets: a signal is a node of a window's graph when anomalous in at least this
        many of its buckets (a single blip is noise).
    damping: PageRank's probability of following an edge rather than restarting.
    """

    bucket_s: int = 60
    smooth: int = 5
    baseline_minutes: int = 120
    threshold: float = 4.0
    merge_gap_minutes: int = 10
    max_lag_minutes: int = 15
    change_lookback_minutes: int = 15
    min_signals: int = 3
    strong_factor: float = 1.5
    max_window_minutes: int = 60
    min_buckets: int = 2
    damping: float = 0.85

    @property
    def bucket_ms(self) -> int:
        return self.bucket_s * 1000

    @property
    def baseline_buckets(self) -> int:
        return max(self.baseline_minutes * 60 // self.bucket_s, 4 * self.smooth)
