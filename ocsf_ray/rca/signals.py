"""Per-source anomaly signals per (service, time bucket), aggregated with Ray Data.

The heavy part, reading every event, is a Ray Data groupby on (service, family,
bucket) or, for metrics, a per-series map over the archive; what reaches the driver is
one row per service, family and bucket, whatever the archive's size. Signals, each a
`z` per bucket (see `deviation`):

- events of every non-metric family (logs, spans, logins): error share, mean
  log-latency (`duration`, or the HTTP latency), and volume;
- anomaly scores of `ocsf-ray score`, when given: the share of flagged events;
- metrics: each series' (service, host, metric name and `label_*` columns) bucket mean,
  then the median of the last `smooth` of those (PromQL's `quantile_over_time(0.5, ...)`
  over the span event signals sum over: a lone spike is not an incident, a shift that
  lasts is) against the median and interquartile spread of those values in the baseline
  before the span (in log space for a series spanning orders of magnitude), from
  `MIN_HISTORY` of the baseline on;
  cumulative counters first turned into per-second rates with resets (a drop) counted as
  a restart from zero, so a restart is not an anomaly.

Config changes are not signals: they are kept as candidate cause events.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ocsf_ray.features.transform import is_error
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.rca.deviation import MIN_HISTORY, QUANTILES, level_deviation, robust_scale, share_deviation, window_sums
from ocsf_ray.rca.options import RcaOptions
from ocsf_ray.runtime import collect

SIGNAL_SCHEMA = {"service": pl.String, "signal": pl.String, "source": pl.String, "bucket": pl.Int64,
                 "value": pl.Float64, "z": pl.Float64}
CHANGE_SCHEMA = {"metadata_uid": pl.String, "time": pl.Int64, "service": pl.String, "change": pl.String,
                 "message": pl.String}
LATENCY_FIELDS = ("duration", "http_response_latency")
# What a config change is called, first present wins; then `class_<class_uid>`.
CHANGE_NAME_FIELDS = ("change_type", "class_name", "activity_name")
COUNTER_TYPES = ("counter", "sum", "cumulative")
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
SERIES_LABEL_PREFIX = "label_"
# A metric's scale is at least this share of its median: a flat gauge's every wiggle is
# not infinite. Small, since a memory leak or a shifted level may be a few per cent.
METRIC_MIN_CHANGE = 0.01
# A series whose 95th percentile of |value| is this many times its median spans orders of
# magnitude: it is judged on sign(x) log(1 + |x|), as features log heavy-tailed numerics.
HEAVY_TAIL = 10.0
EVENT_KEYS = ["service", "family", "source", "bucket"]
# metrics are judged on the IQR alone (`_series_deviation`): only these quantiles are needed
METRIC_QUANTILES = tuple((q, n) for q, n in QUANTILES if n in ("q1", "median", "q3"))


def optional(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """An optional OCSF attribute as `dtype` (values that do not convert become null),
    all null when the frame has no such column. Aliased to `name`."""
    return (pl.col(name).cast(dtype, strict=False) if name in frame.columns else pl.lit(None, dtype)).alias(name)


def _bucket(options: RcaOptions) -> pl.Expr:
    return (pl.col("time") // options.bucket_ms * options.bucket_ms).alias("bucket")


def families_of(archive: CanonicalArchive, kinds: tuple[str, ...]) -> list[str]:
    """Families whose events are of these source kinds (from `source_kind`, never names)."""
    return [f for f in archive.families
            if set(archive.sample(f, 1).get_column("source_kind").to_list()) & set(kinds)]


def _event_rows(options: RcaOptions):
    def prepare(batch: pa.Table) -> pa.Table:
        frame = pl.from_arrow(batch)
        latency = pl.coalesce([optional(frame, c, pl.Float64) for c in LATENCY_FIELDS])
        return frame.select(
            "service", "family", pl.col("source_kind").alias("source"), _bucket(options),
            is_error(frame.schema).cast(pl.Int64).alias("error"),
            latency.clip(0).log1p().alias("latency"),
        ).to_arrow()
    return prepare


def event_aggregates(archive: CanonicalArchive, families: list[str], options: RcaOptions) -> pl.DataFrame:
    """Events, errors and latency sums per (service, family, source, bucket)."""
    from ray.data.aggregate import Count, Sum

    if not families:
        return pl.DataFrame()
    datasets = [archive.dataset(f).map_batches(_event_rows(options), batch_format="pyarrow") for f in families]
    union = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    return collect(union.groupby(EVENT_KEYS).aggregate(
        Count(alias_name="events"), Sum("error", alias_name="errors"),
        Sum("latency", alias_name="latency_sum"), Count("latency", ignore_nulls=True, alias_name="latency_n")))


def score_aggregates(score_files: list[str], options: RcaOptions) -> pl.DataFrame:
    """Scored events, flagged events and score sums per (service, family, source, bucket)."""
    import ray.data
    from ray.data.aggregate import Count, Sum

    def prepare(batch: pa.Table) -> pa.Table:
        return pl.from_arrow(batch).drop_nulls("anomaly_score").select(
            "service", "family", pl.col("source_kind").alias("source"), _bucket(options),
            pl.col("is_anomaly").cast(pl.Int64)).to_arrow()

    scores = ray.data.read_parquet(score_files).map_batches(prepare, batch_format="pyarrow")
    return collect(scores.groupby(EVENT_KEYS).aggregate(
        Count(alias_name="scored"), Sum("is_anomaly", alias_name="anomalies")))


def _grid(group: pl.DataFrame, start: int, end: int, options: RcaOptions) -> pl.DataFrame:
    """The group's rows on every bucket from start to end, zeros where it had no event."""
    buckets = pl.DataFrame({"bucket": np.arange(start, end + 1, options.bucket_ms, dtype=np.int64)})
    return buckets.join(group, on="bucket", how="left").fill_null(0)


def _signal(service: str, name: str, source: str, buckets: np.ndarray, value: np.ndarray, z: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"service": service, "signal": name, "source": source, "bucket": buckets,
                         "value": value, "z": z}, schema=SIGNAL_SCHEMA).drop_nans("z").drop_nulls("z")


def _gridded(aggregates: pl.DataFrame, options: RcaOptions):
    """(service, family, source, rows on every bucket, buckets) per (service, family)."""
    start, end = aggregates.get_column("bucket").min(), aggregates.get_column("bucket").max()
    for (service, family, source), group in aggregates.group_by(["service", "family", "source"]):
        g = _grid(group.drop("service", "family", "source"), start, end, options)
        yield service, family, source, g, g.get_column("bucket").to_numpy()


def event_signals(aggregates: pl.DataFrame, options: RcaOptions) -> pl.DataFrame:
    """Error share, latency and volume signals of each (service, family)."""
    if aggregates.is_empty():
        return pl.DataFrame(schema=SIGNAL_SCHEMA)
    w, base = options.smooth, options.baseline_buckets
    out = []
    for service, family, source, g, b in _gridded(aggregates, options):
        events, errors = g.get_column("events").to_numpy().astype(float), g.get_column("errors").to_numpy().astype(float)
        share, z = share_deviation(errors, events, w, base)
        out.append(_signal(service, f"{family}.errors", source, b, share, z))
        lat_n = window_sums(g.get_column("latency_n").to_numpy().astype(float), w)
        lat_sum = window_sums(g.get_column("latency_sum").to_numpy().astype(float), w)
        if lat_n.sum():
            with np.errstate(invalid="ignore", divide="ignore"):
                latency = np.where(lat_n > 0, lat_sum / lat_n, np.nan)
            out.append(_signal(service, f"{family}.latency", source, b, latency,
                               np.abs(level_deviation(latency, w, base, np.full(len(b), 1e-3)))))
        volume = window_sums(events, w) / w
        rise = np.maximum(level_deviation(volume, w, base, np.sqrt(np.maximum(volume, 1) / w)), 0)
        out.append(_signal(service, f"{family}.volume", source, b, volume, rise))
    return pl.concat(out)


def score_signals(aggregates: pl.DataFrame, options: RcaOptions) -> pl.DataFrame:
    """Share of flagged events of each (service, family). (The mean score is not a signal:
    over a few events a minute it is heavy-tailed, and it put noise first in rankings.)"""
    if aggregates.is_empty():
        return pl.DataFrame(schema=SIGNAL_SCHEMA)
    w, base = options.smooth, options.baseline_buckets
    out = []
    for service, family, source, g, b in _gridded(aggregates, options):
        scored = g.get_column("scored").to_numpy().astype(float)
        share, z = share_deviation(g.get_column("anomalies").to_numpy().astype(float), scored, w, base)
        out.append(_signal(service, f"{family}.anomalies", source, b, share, z))
    return pl.concat(out)


def is_counter(name: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """Cumulative counters by declared type, or by Prometheus naming when untyped."""
    suffix = pl.any_horizontal([name.str.ends_with(s) for s in COUNTER_SUFFIXES])
    return (kind.str.to_lowercase().is_in(list(COUNTER_TYPES)).fill_null(False) | suffix.fill_null(False))


def per_second_rate(value: pl.Expr, time: pl.Expr) -> pl.Expr:
    """Counter samples → per-second increase; a drop means the counter restarted from zero,
    so the increase since the restart is the new value itself (Prometheus `rate`)."""
    step = value.diff()
    return pl.when(step < 0).then(value).otherwise(step) / (time.diff() / 1000)


def _metric_rows(options: RcaOptions):
    def prepare(batch: pa.Table) -> pa.Table:
        frame = pl.from_arrow(batch)
        labels = sorted(c for c in frame.columns if c.startswith(SERIES_LABEL_PREFIX))
        name = optional(frame, "metric_name", pl.String)
        host, kind = optional(frame, "device_hostname", pl.String), optional(frame, "metric_type", pl.String)
        series = pl.concat_str([pl.col("service"), host, name, *[pl.col(c).cast(pl.String) for c in labels]],
                               separator="|", ignore_nulls=True)
        return frame.select(
            series.alias("series"), "service", name, "time",
            optional(frame, "metric_value", pl.Float64).alias("value"),
            is_counter(name, kind).alias("counter"),
        ).drop_nulls(["metric_name", "value"]).to_arrow()
    return prepare


def _series_deviation(options: RcaOptions):
    span_ms, smooth_ms = options.baseline_minutes * 60_000, options.smooth * options.bucket_ms
    min_samples = 8

    def deviate(batch: pa.Table) -> pa.Table:
        frame = pl.from_arrow(batch).sort("time").unique("time", keep="last", maintain_order=True)
        if frame.get_column("counter").any():
            frame = frame.with_columns(per_second_rate(pl.col("value"), pl.col("time")).alias("value")).drop_nulls("value")
        frame = (frame.group_by(_bucket(options), maintain_order=True)
                 .agg(pl.col("service").first(), pl.col("metric_name").first(), pl.col("value").mean())
                 .with_columns(pl.col("value").rolling_median_by("bucket", window_size=f"{smooth_ms}i")))
        size = frame.get_column("value").abs()
        judged = pl.col("value")
        if size.quantile(0.95) > HEAVY_TAIL * size.median():  # orders of magnitude apart: judge in log space
            judged = judged.sign() * judged.abs().log1p()
        # the baseline ends where the smoothing span of the judged bucket starts
        quantiles = frame.select((pl.col("bucket") + smooth_ms).alias("bucket"), *[
            judged.rolling_quantile_by("bucket", window_size=f"{span_ms}i", quantile=q, closed="right",
                                       min_samples=min_samples).alias(n) for q, n in METRIC_QUANTILES])
        history = pl.col("bucket") - pl.col("bucket").min() >= MIN_HISTORY * span_ms + smooth_ms
        frame = (frame.with_columns(judged.alias("judged")).join_asof(quantiles, on="bucket", strategy="backward")
                 .filter(history).drop_nulls("median"))
        if frame.is_empty():
            return pa.table({"service": pa.array([], pa.large_string())})
        # the IQR alone: the 5-bucket median has removed spikes, and a short archive's
        # baseline may hold a load surge in more than the tenth of it the 10-90 spread allows
        scale = robust_scale({n: frame.get_column(n).to_numpy() for _, n in METRIC_QUANTILES}, METRIC_MIN_CHANGE,
                             tails=False)
        z = np.abs(frame.get_column("judged").to_numpy() - frame.get_column("median").to_numpy()) / scale
        return frame.with_columns(pl.Series("z", z)).select(
            "service", pl.format("metric.{}", "metric_name").alias("signal"), pl.lit("metric").alias("source"),
            "bucket", "value", "z").to_arrow()
    return deviate


def metric_signals(archive: CanonicalArchive, families: list[str], options: RcaOptions) -> pl.DataFrame:
    """The most deviating series' bucket mean per (service, metric name, bucket)."""
    if not families:
        return pl.DataFrame(schema=SIGNAL_SCHEMA)
    datasets = [archive.dataset(f).map_batches(_metric_rows(options), batch_format="pyarrow") for f in families]
    union = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    rows = collect(union.groupby("series").map_groups(_series_deviation(options), batch_format="pyarrow"))
    if rows.is_empty() or "z" not in rows.columns:
        return pl.DataFrame(schema=SIGNAL_SCHEMA)
    return rows.drop_nulls("z").sort("z", descending=True).unique(["service", "signal", "bucket"], keep="first").cast(SIGNAL_SCHEMA)


def change_name(frame: pl.DataFrame) -> pl.Expr:
    """What each config change is called: its change type, else its OCSF class or
    activity name, else `class_<class_uid>` (class_uid is always there)."""
    named = [optional(frame, c, pl.String) for c in CHANGE_NAME_FIELDS]
    return pl.coalesce([*named, pl.format("class_{}", pl.col("class_uid"))])


def config_changes(archive: CanonicalArchive, families: list[str]) -> pl.DataFrame:
    """Config change events (few: a handful per service and day), candidate causes."""
    if not families:
        return pl.DataFrame(schema=CHANGE_SCHEMA)

    def prepare(batch: pa.Table) -> pa.Table:
        frame = pl.from_arrow(batch)
        return frame.select("metadata_uid", "time", "service", change_name(frame).alias("change"),
                            optional(frame, "message", pl.String)).to_arrow()

    frames = [collect(archive.dataset(f).map_batches(prepare, batch_format="pyarrow")) for f in families]
    frames = [f for f in frames if not f.is_empty()]
    return pl.concat(frames).cast(CHANGE_SCHEMA).sort("time") if frames else pl.DataFrame(schema=CHANGE_SCHEMA)
