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

import polars as pl

from ocsf_ray.features.normalise import normalised
from ocsf_ray.features.spec import FIRST_CODE, MISSING_CODE, UNSEEN_CODE, FeatureSpec

KEEP = ("metadata_uid", "time", "service", "source_kind")
FIRST_GAP_S = 86_400.0  # an entity's first event counts as a day after the previous one
_MINUTE_MS = 60_000


def categorical_codes(spec: FeatureSpec) -> list[pl.Expr]:
    """Vocabulary codes: 0 missing, 1 unseen, 2.. known values (so new data never fails)."""
    exprs = []
    for feature in spec.categorical:
        text = normalised(feature.column, feature.normaliser)
        codes = range(FIRST_CODE, FIRST_CODE + len(feature.vocabulary))
        coded = text.replace_strict(list(feature.vocabulary), list(codes), default=UNSEEN_CODE, return_dtype=pl.Int32)
        exprs.append(pl.when(text.is_null()).then(pl.lit(MISSING_CODE, pl.Int32)).otherwise(coded).alias(f"cat__{feature.column}"))
    return exprs


def scaled_numerics(spec: FeatureSpec) -> list[pl.Expr]:
    """(log1p) → (x - median) / scale → clip; missing → 0 (the median) plus an indicator."""
    exprs = []
    for feature in spec.numeric:
        value = pl.col(feature.column).cast(pl.Float64)
        if feature.log1p:
            value = value.clip(lower_bound=0).log1p()
        value = ((value - feature.median) / feature.scale).clip(-spec.clip, spec.clip)
        exprs.append(value.fill_null(0.0).fill_nan(0.0).cast(pl.Float32).alias(f"num__{feature.column}"))
        if feature.indicator:
            exprs.append(pl.col(feature.column).is_null().cast(pl.Float32).alias(f"num__{feature.column}__missing"))
    return exprs


def cyclic_time() -> list[pl.Expr]:
    """Hour of day and day of week as points on circles (UTC), so 23h sits next to 0h."""
    moment = pl.from_epoch(pl.col("time"), time_unit="ms")
    hour = moment.dt.hour().cast(pl.Float64) + moment.dt.minute().cast(pl.Float64) / 60
    day = (moment.dt.weekday().cast(pl.Float64) - 1) + hour / 24
    return [
        (2 * math.pi * hour / 24).sin().cast(pl.Float32).alias("time__hour_sin"),
        (2 * math.pi * hour / 24).cos().cast(pl.Float32).alias("time__hour_cos"),
        (2 * math.pi * day / 7).sin().cast(pl.Float32).alias("time__dow_sin"),
        (2 * math.pi * day / 7).cos().cast(pl.Float32).alias("time__dow_cos"),
    ]


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
    """Per entity: log events in the same minute, error share in it, log seconds since previous."""
    minute = pl.col("time") // _MINUTE_MS
    error = is_error(schema).cast(pl.Float32)
    exprs = []
    for name, keys in entity_keys(spec).items():
        present = pl.all_horizontal([pl.col(k).is_not_null() for k in keys])
        gap_s = (pl.col("time") - pl.col("time").shift(1).over(keys, order_by=["time", "metadata_uid"])) / 1000
        exprs += [
            pl.when(present).then(pl.len().over([*keys, minute]).cast(pl.Float64).log1p())
            .otherwise(0.0).cast(pl.Float32).alias(f"win__{name}_events_1m"),
            pl.when(present).then(error.mean().over([*keys, minute])).otherwise(0.0)
            .cast(pl.Float32).alias(f"win__{name}_error_share_1m"),
            pl.when(present).then(gap_s.fill_null(FIRST_GAP_S).clip(lower_bound=0).log1p())
            .otherwise(math.log1p(FIRST_GAP_S)).cast(pl.Float32).alias(f"win__{name}_gap_s"),
        ]
    return exprs


def _with_missing_columns(events: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Columns the spec needs but this batch lacks (a rare field) exist as nulls."""
    missing = [c for c in dict.fromkeys(columns) if c and c not in events.columns]
    return events.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing) if missing else events


def window_inputs(spec: FeatureSpec) -> list[str]:
    """The few columns window features are computed from (the narrow pass reads only these)."""
    return [c for c in ("metadata_uid", "time", "service", spec.host_column, spec.actor_column,
                        "status_id", "severity_id") if c]


def row_features(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Features that each event has on its own: identity, codes, numerics, time of day/week."""
    columns = [f.column for f in (*spec.categorical, *spec.numeric)]
    events = _with_missing_columns(events, columns)
    return events.select(*KEEP, *categorical_codes(spec), *scaled_numerics(spec), *cyclic_time())


def entity_windows(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Window features of every row of `events`, in row order; correct only when
    `events` holds every event of each entity it contains (one or more whole services)."""
    events = _with_missing_columns(events, [spec.host_column, spec.actor_column])
    return events.select(window_features(spec, dict(events.schema)))


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
    floats += [f"time__{p}" for p in ("hour_sin", "hour_cos", "dow_sin", "dow_cos")]
    for name in entity_keys(spec):
        floats += [f"win__{name}_{w}" for w in ("events_1m", "error_share_1m", "gap_s")]
    return [f"cat__{f.column}" for f in spec.categorical], floats
