"""Canonical typing, identity, validation and classification of flattened OCSF records.

Pure Polars functions from frame to frame: `canonicalize(raw, flat, source, options)`
returns the accepted canonical events and the rejected rows with their reasons.
"""

from __future__ import annotations

import posixpath

import numpy as np
import polars as pl

from ocsf_ray.io.options import IngestOptions
from ocsf_ray.io.readers import REJECT_SCHEMA, ROW

# Fields whose type the OCSF schema fixes as integers; a value of another type rejects the row.
ENUM_FIELDS = ("class_uid", "category_uid", "activity_id", "type_uid", "severity_id", "status_id")
TRACE_ID_FIELDS = ("trace_id", "trace_uid", "trace_trace_id")
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f",
)
BASE_EVENT_CLASS = 0
IDENTITY = ("metadata_uid", "time", "class_uid", "source_kind", "service", "family")


def epoch_ms(column: str, dtype: pl.DataType) -> pl.Expr:
    """Any representation of a timestamp as int64 epoch milliseconds (null if unparsable).

    Integers and floats are read by magnitude: below 1e11 seconds, below 1e14
    milliseconds, below 1e17 microseconds, else nanoseconds (good from 1973 to 5138).
    Strings are numbers in those units or ISO-8601 with or without a zone (UTC assumed).
    """
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return col.dt.replace_time_zone(None).dt.epoch("ms") if dtype.time_zone else col.dt.epoch("ms")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("ms")).dt.epoch("ms")
    if dtype.is_numeric():
        number = col.cast(pl.Float64)
    elif dtype == pl.String:
        number = col.str.strip_chars().cast(pl.Float64, strict=False)
    else:
        return pl.lit(None, dtype=pl.Int64)
    magnitude = number.abs()
    by_magnitude = (
        pl.when(magnitude < 1e11).then(number * 1e3)
        .when(magnitude < 1e14).then(number)
        .when(magnitude < 1e17).then(number / 1e3)
        .otherwise(number / 1e6)
    ).round(0).cast(pl.Int64, strict=False)
    if dtype != pl.String:
        return by_magnitude
    text = col.str.strip_chars()
    parsed = [
        text.str.to_datetime(fmt, strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms")
        for fmt in ISO_FORMATS
    ]
    return pl.coalesce([by_magnitude, *parsed])


def decimal_to_hex128(values: pl.Series) -> pl.Series:
    """Decimal 128-bit integers as 32 lowercase hex digits, exactly, without Python ints.

    Digits are folded into four 32-bit limbs held in uint64 lanes (value*10 + digit with
    carries), one vectorised step per digit position.
    """
    if values.len() == 0:
        return values
    digits = np.array(values.str.zfill(39).to_list(), dtype="S39").view(np.uint8)
    digits = digits.reshape(-1, 39).astype(np.uint64) - ord("0")
    limbs = np.zeros((4, digits.shape[0]), dtype=np.uint64)
    for position in range(39):
        carry = digits[:, position]
        for limb in (3, 2, 1, 0):
            value = limbs[limb] * np.uint64(10) + carry
            limbs[limb] = value & np.uint64(0xFFFFFFFF)
            carry = value >> np.uint64(32)
    packed = limbs.T.astype(">u4").tobytes().hex().encode()
    return pl.Series(values.name, np.frombuffer(packed, dtype="S32").astype("U32"))


def _normalise_trace_ids(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Decimal trace ids (all digits, not 32 long) become hex so logs join their spans."""
    ids = frame.get_column(column).cast(pl.String)
    decimal = ids.str.contains(r"^\d{1,39}$").fill_null(False) & (ids.str.len_chars() != 32)
    if not decimal.any():
        return frame.with_columns(ids)
    converted = decimal_to_hex128(ids.filter(decimal))
    index = pl.int_range(0, ids.len(), eager=True).filter(decimal)
    return frame.with_columns(ids.scatter(index, converted))


def _enum_problem(column: str, dtype: pl.DataType) -> pl.Expr:
    """Reason text when a schema-fixed integer field holds something that is not an integer."""
    col = pl.col(column)
    if dtype.is_integer() or dtype == pl.Null:
        return pl.lit(None, dtype=pl.String)
    if dtype.is_float():
        bad = col.is_not_null() & (col.round(0) != col)
    else:
        bad = col.is_not_null() & col.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False).is_null()
    return pl.when(bad).then(pl.format(f"{column}: not an integer: {{}}", col.cast(pl.String)))


def _enum_value(column: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(column)
    if dtype == pl.String:
        col = col.str.strip_chars()
    if dtype.is_float():
        col = col.round(0)
    return col.cast(pl.Int64, strict=False)


def _is_identifier(name: str) -> bool:
    return name.endswith(("_uid", "_id", "_ip")) or name in ("uid", "ip")


def _typed(frame: pl.DataFrame) -> list[pl.Expr]:
    """OCSF-consistent dtypes: enums int64, times epoch ms, identifiers strings, numbers float64."""
    exprs = []
    for name, dtype in frame.schema.items():
        if name in ENUM_FIELDS or name in (ROW, "time"):
            continue
        col = pl.col(name)
        if name.endswith("_time") or name == "start_time":
            exprs.append(epoch_ms(name, dtype).alias(name))
        elif isinstance(dtype, (pl.Datetime, pl.Date)):
            exprs.append(epoch_ms(name, dtype).alias(name))
        elif dtype == pl.Null:
            exprs.append(col.cast(pl.String))
        elif _is_identifier(name) and not (name.endswith("_id") and dtype.is_integer()):
            exprs.append(col.cast(pl.String))
        elif dtype.is_numeric() and not (name.endswith("_id") and dtype.is_integer()):
            exprs.append(col.cast(pl.Float64))
        elif dtype == pl.Boolean or dtype.is_integer():
            exprs.append(col)
        else:
            exprs.append(col.cast(pl.String))
    return exprs


def _source_kind(frame: pl.DataFrame, options: IngestOptions) -> pl.Expr:
    def any_present(fields: tuple[str, ...]) -> pl.Expr:
        present = [pl.col(f).is_not_null() for f in fields if f in frame.columns]
        return pl.any_horizontal(present) if present else pl.lit(False)

    return (
        pl.when(any_present(options.trace_fields)).then(pl.lit("trace"))
        .when(any_present(options.metric_fields)).then(pl.lit("metric"))
        .when(pl.col("class_uid").is_in(list(options.config_classes))).then(pl.lit("config"))
        .otherwise(pl.lit("log"))
    )


def _service(frame: pl.DataFrame, options: IngestOptions) -> pl.Expr:
    present = [pl.col(f).cast(pl.String) for f in options.service_fields if f in frame.columns]
    present = [p.replace("", None) for p in present]
    return pl.coalesce([*present, pl.lit("unknown")])


def canonicalize(
    raw: pl.DataFrame, flat: pl.DataFrame, source: str, options: IngestOptions
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted canonical events, rejects) for one chunk; their heights add up to raw's."""
    if flat.height == 0:
        return pl.DataFrame(), pl.DataFrame(schema=REJECT_SCHEMA)
    schema = flat.schema
    time_dtype = schema.get("time", pl.Null)
    problems = [_enum_problem(f, schema[f]) for f in ENUM_FIELDS if f in schema]
    time_ms = epoch_ms("time", time_dtype) if "time" in schema else pl.lit(None, dtype=pl.Int64)
    time_problem = (
        pl.when(pl.col("time").is_null()).then(pl.lit("missing time"))
        .when(time_ms.is_null()).then(pl.format("unparsable time: {}", pl.col("time").cast(pl.String)))
        if "time" in schema else pl.lit("missing time")
    )
    reasons = flat.select(pl.coalesce([time_problem, *problems]).alias("reason")).get_column("reason")
    bad = reasons.is_not_null()

    rejects = raw.filter(bad).select(
        pl.lit(source).alias("source_file"),
        pl.col(ROW).alias("row"),
        reasons.filter(bad).alias("reason"),
        pl.struct(pl.exclude(ROW)).struct.json_encode().alias("raw"),
    ) if bad.any() else pl.DataFrame(schema=REJECT_SCHEMA)

    good = flat.filter(~bad)
    enums = [_enum_value(f, schema[f]).alias(f) for f in ENUM_FIELDS if f in schema]
    events = good.with_columns(*enums, time_ms.alias("time"), *_typed(good))
    if "class_uid" not in events.columns:
        events = events.with_columns(pl.lit(BASE_EVENT_CLASS, dtype=pl.Int64).alias("class_uid"))
    events = events.with_columns(pl.col("class_uid").fill_null(BASE_EVENT_CLASS))
    for column in TRACE_ID_FIELDS:
        if column in events.columns:
            events = _normalise_trace_ids(events, column)
    surrogate = pl.format(f"{posixpath.basename(source)}:{{}}", pl.col(ROW))
    uid = pl.col("metadata_uid").cast(pl.String) if "metadata_uid" in events.columns else pl.lit(None, pl.String)
    events = events.with_columns(
        pl.coalesce([uid, surrogate]).alias("metadata_uid"),
        _service(events, options).alias("service"),
        _source_kind(events, options).alias("source_kind"),
    )
    family = pl.concat_str([pl.col(c).cast(pl.String) for c in options.family_by], separator="_")
    events = events.with_columns(family.alias("family")).drop(ROW)
    ordered = [*IDENTITY, *sorted(c for c in events.columns if c not in IDENTITY)]
    return events.select(ordered), rejects.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)
