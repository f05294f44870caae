"""Decoded JSON records to one flat frame, one record at a time: the path for input that
Polars cannot read as a whole (a broken line, an attribute whose shape differs between
records, an OCSF scalar holding an object).

Each record is flattened by the rules of `ocsf_ray.io.flatten` (nested keys and dotted
keys joined with `_`, JSON-string objects decoded, arrays as count + first element + JSON
text), so a record comes out the same whichever path read it. Shapes are checked against
the OCSF dictionary per record: an object or array where OCSF has a scalar rejects that
record alone. A column whose values differ in type across records is kept as text, so no
record's value is lost or changed to fit another's.
"""

from __future__ import annotations

import json

import polars as pl

from ocsf_ray.io.schema import attribute

ROW = "__row"
REJECT_SCHEMA = {"source_file": pl.String, "row": pl.Int64, "reason": pl.String, "raw": pl.String}
_INT64 = (-(2**63), 2**63 - 1)


class ShapeError(ValueError):
    """A value whose shape (object, array, scalar) OCSF does not allow at its attribute."""


def rejects_frame(source: str, rows: list[int], reasons: list[str], raws: list[str | None]) -> pl.DataFrame:
    """Rejected rows: source file, row (1-based line or 0-based index), reason, raw text."""
    return pl.DataFrame(
        {"source_file": [source] * len(rows), "row": rows, "reason": reasons, "raw": raws},
        schema=REJECT_SCHEMA,
    )


def shape_problem(key: str, value: object) -> str | None:
    """Why a container cannot stand at attribute `key`, or None when OCSF allows it there."""
    spec = attribute(key)
    if spec is None or not spec.is_scalar or spec.kind == "json":
        return None
    if isinstance(value, dict):
        return f"an object where OCSF has {spec.kind} ({spec.name})"
    if spec.is_array and all(not isinstance(v, (dict, list)) for v in value):
        return None
    return f"an array where OCSF has {spec.kind} ({spec.name})"


def _decoded(key: str, value: str) -> object:
    """A string holding a JSON object/array as its value, where the attribute may be one."""
    text = value.strip()
    spec = attribute(key)
    if not text.startswith(("{", "[")) or (spec is not None and spec.is_scalar):
        return value
    try:
        decoded = json.loads(text)
    except ValueError:
        return value
    return decoded if isinstance(decoded, (dict, list)) else value


def _put(out: dict, name: str, value: object) -> None:
    """First non-null value wins where two shapes name one column (a dotted key and its twin)."""
    if out.get(name) is None:
        out[name] = value


def _flatten_value(out: dict, name: str, key: str, value: object) -> None:
    if isinstance(value, str):
        value = _decoded(key, value)
    if isinstance(value, (dict, list)) and (problem := shape_problem(key, value)):
        raise ShapeError(f"{name}: {problem}")
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten_value(out, f"{name}_{k.replace('.', '_')}", k.rsplit(".", 1)[-1], v)
    elif isinstance(value, list):
        _put(out, f"{name}_count", len(value))
        if value and all(isinstance(v, dict) for v in value):
            for k, v in value[0].items():
                _flatten_value(out, f"{name}_{k.replace('.', '_')}", k.rsplit(".", 1)[-1], v)
        _put(out, name, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    else:
        _put(out, name, value)


def flatten_record(record: dict) -> dict:
    """One decoded OCSF record as a flat dict of scalar values keyed by canonical column.

    Raises ShapeError when an attribute OCSF types as a scalar holds an object or array.
    """
    out: dict = {}
    for key, value in record.items():
        _flatten_value(out, key.replace(".", "_"), key.rsplit(".", 1)[-1], value)
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _series(name: str, values: list) -> pl.Series:
    """One column from Python scalars: typed when the values agree, else text."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pl.Series(name, values, dtype=pl.Null)
    if kinds == {bool}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {int}:
        if all(_INT64[0] <= v <= _INT64[1] for v in values if v is not None):
            return pl.Series(name, values, dtype=pl.Int64)
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    if kinds <= {int, float}:
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series(name, [None if v is None else _text(v) for v in values], dtype=pl.String)


def frame_records(records: list[dict], rows: list[int], source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(flat frame with a ROW column, rejects without raw text) for decoded JSON objects.

    The frame needs no further `flatten`; `rows` are the records' row numbers in their file.
    """
    flat, kept = [], []
    bad, reasons = [], []
    for row, record in zip(rows, records):
        try:
            flat.append(flatten_record(record))
            kept.append(row)
        except ShapeError as err:
            bad.append(row)
            reasons.append(str(err))
        except RecursionError:
            bad.append(row)
            reasons.append("nested too deeply to flatten")
    rejects = rejects_frame(source, bad, reasons, [None] * len(bad))
    names = list(dict.fromkeys(name for record in flat for name in record))
    columns = [_series(name, [record.get(name) for record in flat]) for name in names]
    frame = pl.DataFrame(columns) if columns else pl.DataFrame(height=len(kept))
    return frame.with_columns(pl.Series(ROW, kept, dtype=pl.Int64)), rejects


def decode_lines(source: str, numbered: list[tuple[int, bytes]]) -> tuple[list[dict], list[int], pl.DataFrame]:
    """(JSON objects, their row numbers, rejects with raw text) from numbered lines."""
    records, rows = [], []
    bad, reasons, raws = [], [], []
    for row, line in numbered:
        text = line.decode("utf-8", "replace")
        if not text.strip():
            bad.append(row), reasons.append("empty line"), raws.append(text)
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            bad.append(row), reasons.append(f"unparsable JSON: {err}"), raws.append(text)
            continue
        except RecursionError:
            bad.append(row), reasons.append("unparsable JSON: nested too deeply"), raws.append(text)
            continue
        if not isinstance(value, dict):
            bad.append(row), reasons.append(f"not a JSON object: {type(value).__name__}"), raws.append(text)
            continue
        records.append(value)
        rows.append(row)
    return records, rows, rejects_frame(source, bad, reasons, raws)
