"""Feature extraction: pure Polars functions from canonical events to model inputs.

`extract(events, spec)` gives, per event, under prefixed names (`cat__`, `num__`,
`time__`, `win__` + the canonical column) so a feature always leads back to its field, int32 categorical codes, float32 scaled
numerics with missing-value indicators, cyclic time of day and week, and window
features per entity (the service, the service's host, the service's actor): events
and error share in the same minute, and seconds since the entity's previous event.
Window features see every event of their entity, so the distributed path groups
events by service before calling this (see `ocsf_ray.features.pipeline`).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ocsf_ray.features.normalise import normalised
from ocsf_ray.features.spec import FIRST_CODE, MISSING_CODE, UNSEEN_CODE, FeatureSpec, NumericFeature

KEEP = ("metadata_uid", "time", "service", "source_kind")
ONEHOT_CAP = 64  # one-hot slots per categorical in feature vectors; rarer codes share the last
FIRST_GAP_S = 86_400.0  # an entity seen once counts as a day away from any other event
_MINUTE_MS = 60_000


def categorical_codes(spec: FeatureSpec) -> list[pl.Expr]:
    """Vocabulary codes: 0 missing, 1 unseen, 2.. known values (so new data never fails).

    A message feature with Drain templates maps each message to its template (its
    distinct messages matched once per batch, see `ocsf_ray.features.templates`); one that
    matches no template is unseen. Its missing test reads the raw column (a template is
    null exactly when the message is), so the matching runs once.
    """
    exprs = []
    for feature in spec.categorical:
        text = normalised(feature.column, feature.normaliser, feature.templates)
        missing = pl.col(feature.column).is_null() if feature.templates is not None else text.is_null()
        codes = range(FIRST_CODE, FIRST_CODE + len(feature.vocabulary))
        coded = text.replace_strict(list(feature.vocabulary), list(codes), default=UNSEEN_CODE, return_dtype=pl.Int32)
        exprs.append(pl.when(missing).then(pl.lit(MISSING_CODE, pl.Int32)).otherwise(coded).alias(f"cat__{feature.column}"))
    return exprs


def scaled(feature: NumericFeature) -> pl.Expr:
    """(log1p) → (x - median) / scale, unclipped, nulls kept."""
    value = pl.col(feature.column).cast(pl.Float64)
    if feature.log1p:
        value = value.clip(lower_bound=0).log1p()
    return (value - feature.median) / feature.scale


def scaled_numerics(spec: FeatureSpec) -> list[pl.Expr]:
    """(log1p) → (x - median) / scale → clip; missing → 0 (the median) plus an indicator."""
    exprs = []
    for feature in spec.numeric:
        value = scaled(feature).clip(-spec.clip, spec.clip)
        exprs.append(value.fill_null(0.0).fill_nan(0.0).cast(pl.Float32).alias(f"num__{feature.column}"))
        if feature.indicator:
            exprs.append(pl.col(feature.column).is_null().cast(pl.Float32).alias(f"num__{feature.column}__missing"))
    return exprs


def cyclic_time(spec: FeatureSpec) -> list[pl.Expr]:
    """Hour of day and day of week as points on circles (UTC), so 23h sits next to 0h;
    each only when the spec enables it."""
    moment = pl.from_epoch(pl.col("time"), time_unit="ms")
    hour = moment.dt.hour().cast(pl.Float64) + moment.dt.minute().cast(pl.Float64) / 60
    day = (moment.dt.weekday().cast(pl.Float64) - 1) + hour / 24
    exprs = []
    for name, angle, enabled in (("hour", 2 * math.pi * hour / 24, spec.hour_of_day), ("dow", 2 * math.pi * day / 7, spec.day_of_week)):
        if enabled:
            exprs += [angle.sin().cast(pl.Float32).alias(f"time__{name}_sin"), angle.cos().cast(pl.Float32).alias(f"time__{name}_cos")]
    return exprs


def is_error(schema: dict) -> pl.Expr:
    """OCSF failure: status_id 2 (Failure) or severity_id 4+ (High, Critical, Fatal)."""
    checks = [pl.lit(False)]
    if "status_id" in schema:
        checks.append(pl.col("status_id") == 2)
    if "severity_id" in schema:
        checks.append(pl.col("severity_id") >= 4)
    return pl.any_horizontal(checks).fill_null(False)


def entity_keys(spec: FeatureSpec) -> dict[str, list[str]]:
    """Entities whose windows are computed, each scoped to its service."""
    keys = {"service": ["service"]}
    if spec.host_column:
        keys["host"] = ["service", spec.host_column]
    if spec.actor_column:
        keys["actor"] = ["service", spec.actor_column]
    return keys


def window_features(spec: FeatureSpec, schema: dict) -> list[pl.Expr]:
    """Per entity: log events in the same minute, error share in it, log seconds since the
    previous event (for an entity's first event, until the next: an archive's start is not
    a day-long silence)."""
    minute = pl.col("time") // _MINUTE_MS
    error = is_error(schema).cast(pl.Float32)
    exprs = []
    for name, keys in entity_keys(spec).items():
        present = pl.all_horizontal([pl.col(k).is_not_null() for k in keys])
        order = ["time", "metadata_uid"]
        since = pl.col("time") - pl.col("time").shift(1).over(keys, order_by=order)
        until = pl.col("time").shift(-1).over(keys, order_by=order) - pl.col("time")
        gap_s = since.fill_null(until) / 1000  # an entity's first event: the gap after it
        exprs += [
            pl.when(present).then(pl.len().over([*keys, minute]).cast(pl.Float64).log1p())
            .otherwise(0.0).cast(pl.Float32).alias(f"win__{name}_events_1m"),
            pl.when(present).then(error.mean().over([*keys, minute])).otherwise(0.0)
            .cast(pl.Float32).alias(f"win__{name}_error_share_1m"),
            pl.when(present).then(gap_s.fill_null(FIRST_GAP_S).clip(lower_bound=0).log1p())
            .otherwise(math.log1p(FIRST_GAP_S)).cast(pl.Float32).alias(f"win__{name}_gap_s"),
        ]
    return exprs


def series_keys(spec: FeatureSpec) -> list[str]:
    return [k for k in ("service", spec.host_column, spec.series_column) if k] if spec.series_column else []


def series_deviations(spec: FeatureSpec) -> list[pl.Expr]:
    """Each numeric's deviation from its series' median, in units of the series' own
    interquartile range (floored at a tenth of the family's), clipped; 0 when missing."""
    keys = series_keys(spec)
    exprs = []
    for feature in spec.numeric if keys else ():
        value = scaled(feature)
        spread = (value.quantile(0.75) - value.quantile(0.25)).over(keys).clip(lower_bound=0.1)
        deviation = ((value - value.median().over(keys)) / spread).clip(-spec.clip, spec.clip)
        exprs.append(deviation.fill_null(0.0).fill_nan(0.0).cast(pl.Float32).alias(f"win__series_{feature.column}_dev"))
    return exprs


def service_minute_deviations(spec: FeatureSpec) -> list[pl.Expr]:
    """The mean series deviation of each numeric over the service's events in the same
    minute: a slowdown moves a whole minute of a service's requests a little, which no
    single request shows."""
    minute = pl.col("time") // _MINUTE_MS
    return [pl.col(f"win__series_{f.column}_dev").mean().over(["service", minute]).cast(pl.Float32)
            .alias(f"win__service_{f.column}_dev_1m") for f in spec.numeric if series_keys(spec)]


def _with_missing_columns(events: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Columns the spec needs but this batch lacks (a rare field) exist as nulls."""
    missing = [c for c in dict.fromkeys(columns) if c and c not in events.columns]
    return events.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing) if missing else events


def window_inputs(spec: FeatureSpec) -> list[str]:
    """The few columns window features are computed from (the narrow pass reads only these)."""
    columns = ("metadata_uid", "time", "service", spec.host_column, spec.actor_column, spec.series_column,
               "status_id", "severity_id", *(f.column for f in spec.numeric if spec.series_column))
    return [c for c in dict.fromkeys(columns) if c]


def row_features(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Features that each event has on its own: identity, codes, numerics, time of day/week."""
    columns = [f.column for f in (*spec.categorical, *spec.numeric)]
    events = _with_missing_columns(events, columns)
    return events.select(*KEEP, *categorical_codes(spec), *scaled_numerics(spec), *cyclic_time(spec))


def entity_windows(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Window features of every row of `events`, in row order; correct only when
    `events` holds every event of each entity it contains (one or more whole services).
    Columns the spec names that `events` lacks altogether (new data without a field the
    reference had) are windowed as missing values."""
    series_numerics = [f.column for f in spec.numeric if spec.series_column]
    events = _with_missing_columns(events, [spec.host_column, spec.actor_column, spec.series_column, *series_numerics])
    windows = events.select("time", "service", *window_features(spec, dict(events.schema)), *series_deviations(spec))
    return windows.with_columns(service_minute_deviations(spec)).drop("time", "service")


def extract(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Canonical events of one family → feature rows (columns in spec order)."""
    return pl.concat([row_features(events, spec), entity_windows(events, spec)], how="horizontal")


def feature_columns(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(categorical code columns, float columns) in the order `extract` writes them."""
    floats = []
    for feature in spec.numeric:
        floats.append(f"num__{feature.column}")
        if feature.indicator:
            floats.append(f"num__{feature.column}__missing")
    floats += [f"time__{name}_{part}" for name, enabled in (("hour", spec.hour_of_day), ("dow", spec.day_of_week))
               if enabled for part in ("sin", "cos")]
    for name in entity_keys(spec):
        floats += [f"win__{name}_{w}" for w in ("events_1m", "error_share_1m", "gap_s")]
    if series_keys(spec):
        floats += [f"win__series_{f.column}_dev" for f in spec.numeric]
        floats += [f"win__service_{f.column}_dev_1m" for f in spec.numeric]
    return [f"cat__{f.column}" for f in spec.categorical], floats


def feature_vectors(features: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The model's inputs as one float32 vector per row, with no model: scaled numerics
    as they are, categorical codes one-hot (at most ONEHOT_CAP slots each), [rows, floats
    + sum of one-hot widths], written in place (no concatenation of per-field copies)."""
    categorical, floats = feature_columns(spec)
    widths = [min(feature.cardinality, ONEHOT_CAP) for feature in spec.categorical]
    vectors = np.zeros((features.height, len(floats) + sum(widths)), np.float32)
    if floats:
        vectors[:, :len(floats)] = features.select(floats).to_numpy()
    rows, offset = np.arange(features.height), len(floats)
    for column, width in zip(categorical, widths):
        vectors[rows, offset + np.minimum(features.get_column(column).fill_null(0).to_numpy(), width - 1)] = 1.0
        offset += width
    return vectors
