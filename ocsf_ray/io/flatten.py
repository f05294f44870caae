"""Turn the three shapes OCSF exports take into one flat frame of `_`-joined columns.

Nested objects (`http_request.url.path`), flattened columns (`http_request_url_path`
or `http_request.url.path` as a column name) and JSON-string columns holding an
object (`http_request = '{"url": {"path": ...}}'`) all become `http_request_url_path`.
Arrays of objects keep their length (`resources_count`), their first element
flattened (`resources_type`) and the whole array as a JSON string (`resources`).
A dotted column and its `_`-joined twin become one column, the first non-null value
winning. JSON text is decoded where the OCSF attribute may hold an object (never in an
attribute OCSF types as a scalar, such as `message`), at any depth.

`flatten` works on whole columns; where a column cannot be flattened as one (an OCSF
scalar holding an object, two twins of different shapes) it raises ShapeConflict and the
caller reads that input record by record (`ocsf_ray.io.records`), which decides per record.
"""

from __future__ import annotations

import io

import polars as pl

from ocsf_ray.io.records import ROW
from ocsf_ray.io.schema import attribute

_JSON_PROBE = 64


class ShapeConflict(ValueError):
    """A column that cannot be flattened as a whole; the message names it."""


def shape_conflict(schema: dict, keys: dict | None = None) -> str | None:
    """The first column path at which a nested dtype meets an attribute OCSF types as a
    scalar (`severity_id` as a struct), or None. `keys` maps column → its JSON key."""
    def walk(name: str, key: str, dtype: pl.DataType) -> str | None:
        nested = isinstance(dtype, (pl.Struct, pl.List, pl.Array))
        spec = attribute(key)
        if nested and spec is not None and spec.is_scalar and spec.kind != "json":
            inner = getattr(dtype, "inner", None)
            if not (spec.is_array and inner is not None and not inner.is_nested()):
                return f"{name}: a nested value where OCSF has {spec.kind} ({spec.name})"
        fields = dtype.fields if isinstance(dtype, pl.Struct) else (
            dtype.inner.fields if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct) else [])
        for f in fields:
            if (found := walk(f"{name}.{f.name}", f.name, f.dtype)) is not None:
                return found
        return None

    for name, dtype in schema.items():
        key = (keys or {}).get(name, name.rsplit(".", 1)[-1])
        if (found := walk(name, key, dtype)) is not None:
            return found
    return None


def _may_hold_object(key: str) -> bool:
    spec = attribute(key)
    return spec is None or not spec.is_scalar or spec.kind == "json"


def _looks_like_json(series: pl.Series) -> bool:
    """A string column is a JSON-object column when its first values all are objects/arrays."""
    sample = series.drop_nulls().head(_JSON_PROBE).str.strip_chars()
    sample = sample.filter(sample != "")
    if sample.len() == 0:
        return False
    return bool(sample.str.starts_with("{").all() or sample.str.starts_with("[").all())


def _decode_json_column(series: pl.Series) -> pl.Series | None:
    """Decode a column of JSON texts to a struct/list column, or None if any text is broken.

    Only distinct texts are decoded (exports repeat the same objects a lot), then
    joined back. Polars infers the dtype from every distinct value when the texts are
    read as NDJSON lines; wrapping each as `{"v": ...}` keeps one line per value.
    """
    texts = series.str.strip_chars().replace("", None).str.replace_all("\n", " ", literal=True)
    distinct = texts.drop_nulls().unique(maintain_order=True)
    if distinct.len() == 0:
        return None
    payload = ('{"v":' + distinct + "}").str.join("\n").item()
    try:
        decoded = pl.read_ndjson(io.BytesIO(payload.encode()), infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return None
    if decoded.height != distinct.len() or "v" not in decoded.columns:
        return None
    lookup = pl.DataFrame({"text": distinct, "v": decoded.get_column("v")})
    joined = pl.DataFrame({"text": texts}).join(lookup, on="text", how="left", maintain_order="left")
    return joined.get_column("v").alias(series.name)


def _json_text(column: str) -> pl.Expr:
    """A list column as its JSON text, e.g. '[{"type":"order"}]'."""
    encoded = pl.struct(pl.col(column).alias("v")).struct.json_encode()
    return pl.when(pl.col(column).is_null()).then(None).otherwise(encoded.str.slice(5).str.strip_suffix("}"))


def _flatten_once(frame: pl.DataFrame, keys: dict, texts: set) -> tuple[pl.DataFrame, bool]:
    """Expand one level of structs and lists; report whether anything was expanded.
    `keys` (column → JSON key) and `texts` (JSON-text columns made here) are updated."""
    exprs: list[pl.Expr] = []
    changed = False

    def fields(name: str, fs, base: pl.Expr) -> list[pl.Expr]:
        for f in fs:
            keys[f"{name}_{f.name}"] = f.name
        return [base.struct.field(f.name).alias(f"{name}_{f.name}") for f in fs]

    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Struct):
            changed = True
            exprs += fields(name, dtype.fields, pl.col(name))
        elif isinstance(dtype, pl.List):
            changed = changed or isinstance(dtype.inner, pl.Struct)
            if isinstance(dtype.inner, pl.Struct):
                exprs += fields(name, dtype.inner.fields, pl.col(name).list.first())
            exprs += [pl.col(name).list.len().alias(f"{name}_count"), _json_text(name).alias(name)]
            texts.add(name)
        else:
            exprs.append(pl.col(name))
    return _coalesce_duplicates(frame, exprs), changed


def _coalesce_duplicates(frame: pl.DataFrame, exprs: list[pl.Expr]) -> pl.DataFrame:
    """Evaluate exprs in one pass; where two produce one name (a flattened column and
    the same field decoded from JSON), keep the first non-null value of the two."""
    evaluated = frame.select(e.name.suffix(f"\x00{i}") for i, e in enumerate(exprs))
    parts: dict[str, list[pl.Series]] = {}
    for series in evaluated.iter_columns():
        parts.setdefault(series.name.rsplit("\x00", 1)[0], []).append(series)
    out = []
    for name, same in parts.items():
        if len(same) == 1:
            out.append(same[0].alias(name))
            continue
        try:
            out.append(pl.select(pl.coalesce(same)).to_series().alias(name))
        except pl.exceptions.PolarsError:
            if any(s.dtype.is_nested() for s in same):
                raise ShapeConflict(f"{name}: holds objects and scalars in different shapes") from None
            out.append(pl.select(pl.coalesce([s.cast(pl.String) for s in same])).to_series().alias(name))
    return pl.DataFrame(out)


def _decode_json_columns(frame: pl.DataFrame, keys: dict, checked: set) -> pl.DataFrame:
    """Text columns holding JSON objects/arrays, where the attribute may be one, decoded."""
    decoded = {}
    for name, dtype in frame.schema.items():
        if name in checked or dtype != pl.String:
            continue
        checked.add(name)
        if _may_hold_object(keys.get(name, name)) and _looks_like_json(frame.get_column(name)):
            series = _decode_json_column(frame.get_column(name))
            if series is not None:
                if (where := shape_conflict({name: series.dtype}, keys)) is not None:
                    raise ShapeConflict(where)
                decoded[name] = series
    return frame.with_columns(decoded.values()) if decoded else frame


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Flatten nested, flattened and JSON-string shapes into canonical `_`-joined columns.

    Raises ShapeConflict where a column cannot be flattened as a whole."""
    keys = {c.replace(".", "_"): c.rsplit(".", 1)[-1] for c in frame.columns}
    frame = _coalesce_duplicates(frame, [pl.col(c).alias(c.replace(".", "_")) for c in frame.columns])
    texts: set = set()
    checked: set = {ROW}
    changed = True
    while changed:
        frame = _decode_json_columns(frame, keys, checked | texts)
        checked |= set(frame.columns)
        frame, changed = _flatten_once(frame, keys, texts)
    return frame
