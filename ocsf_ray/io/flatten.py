"""Turn the three shapes OCSF exports take into one flat frame of `_`-joined columns.

Nested objects (`http_request.url.path`), flattened columns (`http_request_url_path`
or `http_request.url.path` as a column name) and JSON-string columns holding an
object (`http_request = '{"url": {"path": ...}}'`) all become `http_request_url_path`.
Arrays of objects keep their length (`resources_count`), their first element
flattened (`resources_type`) and the whole array as a JSON string (`resources`).
"""

from __future__ import annotations

import io

import polars as pl

_JSON_PROBE = 64


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


def _flatten_once(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """Expand one level of structs and lists; report whether anything was expanded."""
    exprs: list[pl.Expr] = []
    changed = False
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Struct):
            changed = True
            exprs += [pl.col(name).struct.field(f.name).alias(f"{name}_{f.name}") for f in dtype.fields]
        elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
            changed = True
            first = pl.col(name).list.first()
            exprs += [first.struct.field(f.name).alias(f"{name}_{f.name}") for f in dtype.inner.fields]
            exprs += [pl.col(name).list.len().alias(f"{name}_count"), _json_text(name).alias(name)]
        elif isinstance(dtype, pl.List):
            exprs += [pl.col(name).list.len().alias(f"{name}_count"), _json_text(name).alias(name)]
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
            out.append(pl.select(pl.coalesce([s.cast(pl.String) for s in same])).to_series().alias(name))
    return pl.DataFrame(out)


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Flatten nested, flattened and JSON-string shapes into canonical `_`-joined columns."""
    frame = frame.rename({c: c.replace(".", "_") for c in frame.columns if "." in c})
    decoded = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.String and _looks_like_json(frame.get_column(name)):
            series = _decode_json_column(frame.get_column(name))
            if series is not None:
                decoded[name] = series
    if decoded:
        frame = frame.with_columns(decoded.values())
    changed = True
    while changed:
        frame, changed = _flatten_once(frame)
    return frame
