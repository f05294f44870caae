"""Canonical typing, identity, validation and classification of flattened OCSF records.

Pure Polars functions from frame to frame: `canonicalize(flat, source, options)` returns
the accepted canonical events and the rejected rows with their reasons. Types come from
the OCSF dictionary (`ocsf_ray.io.schema`) and are checked per row: a value that does not
fit its attribute rejects its own row, never the column, so no other row loses anything.
"""

from __future__ import annotations

import posixpath

import numpy as np
import polars as pl

from ocsf_ray.io.options import IngestOptions
from ocsf_ray.io.records import REJECT_SCHEMA, ROW
from ocsf_ray.io.schema import Attribute, column_attribute

TRACE_ID_FIELDS = ("trace_id", "trace_uid", "trace_trace_id")
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f",
)
BASE_EVENT_CLASS = 0
# A plausible event time: from the epoch up to 2200-01-01 (ms).
TIME_RANGE_MS = (0, 7_258_118_400_000)
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
IDENTITY = ("metadata_uid", "time", "class_uid", "source_kind", "service", "family")


def epoch_ms(column: str, dtype: pl.DataType) -> pl.Expr:
    """Any representation of a timestamp as int64 epoch milliseconds (null if unparsable).

    Integers and floats are read by magnitude: below 1e11 seconds, below 1e14
    milliseconds, below 1e17 microseconds, else nanoseconds (good from 1973 to 5138).
    Strings are numbers in those units or ISO-8601 with or without a zone (UTC assumed).
    """
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("ms")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("ms")).dt.epoch("ms")
    if dtype.is_numeric():
        number = col.cast(pl.Float64)
        number = pl.when(number.is_finite()).then(number)
    elif dtype == pl.String:
        number = col.str.strip_chars().cast(pl.Float64, strict=False)
        number = pl.when(number.is_finite()).then(number)
    else:
        return pl.lit(None, dtype=pl.Int64)
    magnitude = number.abs()
    by_magnitude = (
        pl.when(magnitude < 1e11).then(number * 1e3)
        .when(magnitude < 1e14).then(number)
        .when(magnitude < 1e17).then(number / 1e3)
        .otherwise(number / 1e6)
    ).round(0).cast(pl.Int64, strict=False)
    by_magnitude = pl.when(by_magnitude.is_between(*TIME_RANGE_MS, closed="left")).then(by_magnitude)
    if dtype != pl.String:
        return by_magnitude
    text = col.str.strip_chars()
    parsed = [
        text.str.to_datetime(fmt, strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms")
        for fmt in ISO_FORMATS
    ]
    parsed = pl.coalesce(parsed)
    return pl.coalesce([by_magnitude, pl.when(parsed.is_between(*TIME_RANGE_MS, closed="left")).then(parsed)])


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


def _is_identifier(name: str) -> bool:
    return name.endswith(("_uid", "_id", "_ip")) or name in ("uid", "ip")


def _wide_int(dtype: pl.DataType) -> bool:
    return dtype in (pl.Int128, pl.UInt64)


def _number(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column as float64 numbers: numeric strings parsed, non-finite kept, others null."""
    col = pl.col(column)
    if dtype == pl.String:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    return col.cast(pl.Float64) if dtype.is_numeric() else pl.lit(None, dtype=pl.Float64)


def _bad(column: str, valid: pl.Expr, what: str) -> pl.Expr:
    """The reason for rows where the column holds a value but `valid` is not true."""
    col = pl.col(column)
    return pl.when(col.is_not_null() & ~valid.fill_null(False)).then(
        pl.format(f"{column}: {what}: {{}}", col.cast(pl.String)))


def _as_datetime(column: str, dtype: pl.DataType) -> pl.Expr:
    """A time column as a UTC datetime in ms (RFC 3339 text, numbers by magnitude)."""
    if isinstance(dtype, pl.Datetime):
        col = pl.col(column)
        col = col.dt.convert_time_zone("UTC") if dtype.time_zone else col.dt.replace_time_zone("UTC")
        return col.dt.cast_time_unit("ms")
    return epoch_ms(column, dtype).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


def _all_datetimes(series: pl.Series) -> bool:
    """A text column of RFC 3339 datetimes only (a producer's own `created` stamp)."""
    values = series.drop_nulls()
    if values.len() == 0 or not values.head(1).str.contains(RFC3339).item():
        return False  # most text columns fail on their first value: no pass over the rest
    return bool(values.str.contains(RFC3339).all())


def _typed(name: str, dtype: pl.DataType, spec: Attribute | None, series: pl.Series) -> tuple[pl.Expr, pl.Expr | None]:
    """(typed value, reason or None) for one flattened column, per row.

    Integer ids and enums (`class_uid`, `severity_id`) are int64, non-negative and whole;
    other OCSF numbers float64 (numeric strings parsed); booleans from true/false; OCSF
    timestamps (`*_time`) int64 epoch ms within 1970-2200; datetimes (`*_dt`, Parquet
    timestamps, all-RFC 3339 text) UTC datetimes; identifiers text (integers beyond int64
    too, exactly); attributes OCSF types as text or does not define keep their type.
    A value that its OCSF type rejects gives the row a reason.
    """
    col = pl.col(name)
    kind = spec.kind if spec is not None else None
    if dtype == pl.Boolean and kind in ("int", "float", "timestamp", "datetime"):
        return pl.lit(None, dtype=pl.Float64), _bad(name, pl.lit(False), f"not a {kind}")
    if kind in ("int", "float"):
        number = _number(name, dtype)
        if spec.is_id:
            whole = number.is_finite() & (number.round(0) == number) & (number >= 0) & (number < 2.0**63)
            return number.cast(pl.Int64, strict=False), _bad(name, whole, "not a non-negative integer")
        return number, _bad(name, number.is_not_null(), "not a number")
    if kind == "bool":
        if dtype == pl.Boolean:
            return col, None
        text = col.cast(pl.String).str.strip_chars().str.to_lowercase()
        value = pl.when(text == "true").then(True).when(text == "false").then(False)
        return value, _bad(name, value.is_not_null(), "not a boolean")
    if kind == "timestamp":
        value = epoch_ms(name, dtype)
        return value, _bad(name, value.is_not_null(), "not a plausible time")
    if kind == "datetime" or isinstance(dtype, (pl.Datetime, pl.Date)) or (
            dtype == pl.String and kind in (None, "str") and not _is_identifier(name) and _all_datetimes(series)):
        value = _as_datetime(name, dtype)
        return value, _bad(name, value.is_not_null(), "not a plausible datetime")
    if dtype == pl.Null or (_is_identifier(name) and not dtype.is_integer()) or _wide_int(dtype):
        return col.cast(pl.String), None
    if dtype.is_numeric() and not (name.endswith("_id") and dtype.is_integer()):
        return col.cast(pl.Float64), None
    if dtype == pl.Boolean or dtype.is_numeric() or dtype == pl.String:
        return col, None
    return col.cast(pl.String, strict=False), None


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


def _time(schema: dict) -> tuple[pl.Expr, pl.Expr]:
    """(event time in epoch ms, reason or null): `time`, else the datetime profile's `time_dt`."""
    ms = epoch_ms("time", schema["time"]) if "time" in schema else pl.lit(None, dtype=pl.Int64)
    dt = epoch_ms("time_dt", schema["time_dt"]) if "time_dt" in schema else pl.lit(None, dtype=pl.Int64)
    given = [pl.col(c).is_not_null() for c in ("time", "time_dt") if c in schema] or [pl.lit(False)]
    shown = pl.coalesce([pl.col(c).cast(pl.String) for c in ("time", "time_dt") if c in schema] or [pl.lit("")])
    reason = (pl.when(~pl.any_horizontal(given)).then(pl.lit("missing time"))
              .when(pl.coalesce([ms, dt]).is_null()).then(pl.format("time: not a plausible time: {}", shown)))
    return pl.coalesce([ms, dt]), reason


def canonicalize(
    flat: pl.DataFrame, source: str, options: IngestOptions, name: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted canonical events, rejects) for one chunk's flat records (`read_chunk`).

    `name` is the file's name in surrogate uids (`<name>:<row>`; default: the base name of
    `source`). Rejects carry source, row and reason; their `raw` is left null for the
    caller, which has the input text. The two heights add up to `flat`'s.
    """
    if flat.height == 0:
        return pl.DataFrame(), pl.DataFrame(schema=REJECT_SCHEMA)
    schema = flat.schema
    time_ms, time_problem = _time(schema)
    typed, problems = [], []
    for column, dtype in schema.items():
        if column in (ROW, "time"):
            continue
        value, problem = _typed(column, dtype, column_attribute(column), flat.get_column(column))
        typed.append(value.alias(column))
        if problem is not None:
            problems.append(problem)
    checked = flat.select(pl.coalesce([time_problem, *problems]).alias("reason"), time_ms.alias("time"), *typed)
    bad = checked.get_column("reason").is_not_null()
    rejects = pl.DataFrame({
        "source_file": source, "row": flat.get_column(ROW).filter(bad),
        "reason": checked.get_column("reason").filter(bad), "raw": None,
    }, schema=REJECT_SCHEMA) if bad.any() else pl.DataFrame(schema=REJECT_SCHEMA)
    events = checked.drop("reason").with_columns(flat.get_column(ROW)).filter(~bad)
    if "class_uid" not in events.columns:
        events = events.with_columns(pl.lit(BASE_EVENT_CLASS, dtype=pl.Int64).alias("class_uid"))
    events = events.with_columns(pl.col("class_uid").fill_null(BASE_EVENT_CLASS))
    for column in TRACE_ID_FIELDS:
        if column in events.columns:
            events = _normalise_trace_ids(events, column)
    surrogate = pl.format(f"{name or posixpath.basename(source)}:{{}}", pl.col(ROW))
    uid = pl.col("metadata_uid").cast(pl.String) if "metadata_uid" in events.columns else pl.lit(None, pl.String)
    events = events.with_columns(
        pl.coalesce([pl.when(uid.str.strip_chars() != "").then(uid), surrogate]).alias("metadata_uid"),
        _service(events, options).alias("service"),
        _source_kind(events, options).alias("source_kind"),
    )
    family = pl.concat_str([pl.col(c).cast(pl.String) for c in options.family_by], separator="_")
    events = events.with_columns(family.alias("family")).drop(ROW)
    ordered = [*IDENTITY, *sorted(c for c in events.columns if c not in IDENTITY)]
    return events.select(ordered), rejects


def unique_uids(events: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """(events whose metadata_uid is unique, how many were not): the second and later
    events that share a uid get `<uid>#<n>` (n = 2, 3, ... in row order), so scores,
    explanations and the report tell them apart."""
    if events.height == 0:
        return events, 0
    seen = pl.int_range(pl.len()).over("metadata_uid")
    repeats = int(events.select((seen > 0).sum()).item())
    if repeats == 0:
        return events, 0
    uid = pl.when(seen > 0).then(pl.format("{}#{}", pl.col("metadata_uid"), seen + 1)).otherwise(pl.col("metadata_uid"))
    return events.with_columns(uid.alias("metadata_uid")), repeats
