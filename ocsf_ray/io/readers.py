"""Read one chunk of an input file into a flat Polars frame of records plus its rejects.

The fast path hands whole files to Polars' native JSON and Parquet readers and flattens
the frame (`ocsf_ray.io.flatten`). Only when a chunk fails to parse as a whole, or holds
an attribute whose shape breaks the OCSF schema, does the slow path look at its records
one by one (`ocsf_ray.io.records`), so a single broken line costs one chunk a Python
loop, not the whole archive, and rejects that line alone.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ocsf_ray.io.flatten import ShapeConflict, flatten, shape_conflict
from ocsf_ray.io.records import ROW, decode_lines, frame_records, rejects_frame
from ocsf_ray.io.sources import InputFile, filesystem_for, open_input

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Chunk:
    """A unit of ingestion work: a whole JSON file or a run of Parquet row groups."""

    file: InputFile
    row_groups: tuple[int, ...] = ()
    first_row: int = 0

    def to_row(self) -> dict:
        """Plain columns, so Ray Data carries chunks as Arrow rather than pickles."""
        f = self.file
        return {"uri": f.uri, "format": f.format, "compressed": f.compressed, "size": f.size,
                "relative": f.relative, "row_groups": list(self.row_groups), "first_row": self.first_row}

    @classmethod
    def from_row(cls, row: dict) -> "Chunk":
        file = InputFile(row["uri"], row["format"], bool(row["compressed"]), int(row["size"]), row["relative"])
        return cls(file, tuple(int(g) for g in row["row_groups"]), int(row["first_row"]))

    @property
    def chunk_id(self) -> str:
        key = f"{self.file.uri}|{self.row_groups}".encode()
        return hashlib.sha1(key).hexdigest()[:16]


def plan_chunks(files: list[InputFile], rows_per_chunk: int = 262_144) -> list[Chunk]:
    """Split Parquet files at row-group boundaries into chunks of about rows_per_chunk rows.

    JSON files are one chunk each: gzip streams and JSON arrays cannot be split without
    reading them, so their memory bound is the file size.
    """
    chunks: list[Chunk] = []
    for f in files:
        if f.format != "parquet" or f.compressed:
            chunks.append(Chunk(f))
            continue
        fs, inner, _ = filesystem_for(f.uri)
        with fs.open_input_file(inner) as handle:
            meta = pq.ParquetFile(handle).metadata
        group: list[int] = []
        rows = start = 0
        for i in range(meta.num_row_groups):
            group.append(i)
            rows += meta.row_group(i).num_rows
            if rows >= rows_per_chunk:
                chunks.append(Chunk(f, tuple(group), start))
                start, group, rows = start + rows, [], 0
        if group or meta.num_row_groups == 0:
            chunks.append(Chunk(f, tuple(group), start))
    return chunks


def read_chunk(chunk: Chunk) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(flat records with a ROW column, rejects) for one chunk.

    ROW is the 0-based row index for Parquet and JSON arrays and the 1-based line
    number for NDJSON, i.e. what a person would look up in that file. Rejects here are
    rows that are not JSON objects or whose shapes OCSF forbids; typing comes later
    (`ocsf_ray.io.canonical`).
    """
    f = chunk.file
    if f.format == "parquet":
        table = _read_parquet(chunk)
        try:
            return _flat_or_conflict(_from_arrow(table, chunk.first_row)), rejects_frame(f.uri, [], [], [])
        except (ShapeConflict, pl.exceptions.PolarsError, pa.ArrowException):
            rows = list(range(chunk.first_row, chunk.first_row + table.num_rows))
            return frame_records(_parquet_records(table), rows, f.uri)
    with open_input(f.uri) as stream:
        data = stream.read().removeprefix(BOM)
    if f.format == "ndjson":
        return _read_ndjson(f.uri, data)
    return _read_json_array(f.uri, data)


def source_texts(chunk: Chunk, rows: list[int]) -> list[str]:
    """The raw text of some rows of a chunk, as a person would find them in the file:
    the NDJSON line, or the record as JSON for Parquet and JSON arrays."""
    if not rows:
        return []
    f = chunk.file
    if f.format == "parquet":
        table = _read_parquet(chunk).take([r - chunk.first_row for r in rows])
        return [json.dumps(r, default=str) for r in table.to_pylist()]
    with open_input(f.uri) as stream:
        data = stream.read().removeprefix(BOM)
    if f.format == "ndjson":
        lines = data.split(b"\n")
        return [lines[r - 1].decode("utf-8", "replace") for r in rows]
    document = json.loads(data)
    items = document if isinstance(document, list) else [document]
    return [json.dumps(items[r]) for r in rows]


def _read_parquet(chunk: Chunk) -> pa.Table:
    if chunk.file.compressed:  # a gzipped Parquet file must be inflated before seeking
        with open_input(chunk.file.uri) as stream:
            return pq.read_table(io.BytesIO(stream.read()))
    fs, inner, _ = filesystem_for(chunk.file.uri)
    with fs.open_input_file(inner) as handle:
        parquet = pq.ParquetFile(handle)
        groups = list(chunk.row_groups) or list(range(parquet.num_row_groups))
        return parquet.read_row_groups(groups) if groups else parquet.schema_arrow.empty_table()


def _map_columns(table: pa.Table) -> list[str]:
    return [field.name for field in table.schema if pa.types.is_map(field.type)]


def _parquet_records(table: pa.Table) -> list[dict]:
    """A Parquet table's rows as JSON-like records, maps as objects."""
    maps = _map_columns(table)
    records = table.to_pylist()
    for record in records:
        for name in maps:
            if record.get(name) is not None:
                record[name] = dict(record[name])
    return records


def _from_arrow(table: pa.Table, first_row: int) -> pl.DataFrame:
    """A Parquet table as a Polars frame with ROW; map columns (security-lake `unmapped`)
    become one column per key, `<column>_<key>`."""
    maps = _map_columns(table)
    for name in maps:
        table = table.set_column(table.schema.get_field_index(name), name, _map_as_pairs(table.column(name)))
    frame = pl.from_arrow(table, rechunk=False)
    rows = pl.int_range(first_row, first_row + frame.height, eager=True, dtype=pl.Int64)
    frame = frame.with_columns(rows.alias(ROW))
    for name in maps:
        frame = _map_to_columns(frame, name)
    return frame


def _map_as_pairs(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A map column as a list of {key, value} structs, which every reader understands."""
    def pairs(chunk: pa.MapArray) -> pa.ListArray:
        entries = pa.StructArray.from_arrays([chunk.keys, chunk.items], ["key", "value"])
        return pa.ListArray.from_arrays(chunk.offsets, entries, mask=chunk.is_null())
    return pa.chunked_array([pairs(c) for c in column.chunks],
                            pa.list_(pa.struct([("key", column.type.key_type), ("value", column.type.item_type)])))


def _map_to_columns(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """A map column (Polars: list of key/value structs) pivoted to `<name>_<key>` columns,
    the first value winning where a key repeats in one row."""
    pairs = frame.select(ROW, pl.col(name)).explode(name).drop_nulls(name).unnest(name)
    if pairs.height == 0:
        return frame.drop(name)
    pairs = pairs.with_columns(pl.format(f"{name}_{{}}", pl.col("key")).alias("key"))
    wide = pairs.pivot(on="key", index=ROW, values="value", aggregate_function="first")
    wide = wide.select(ROW, *[c for c in wide.columns if c != ROW and c not in frame.columns])
    return frame.drop(name).join(wide, on=ROW, how="left", maintain_order="left")


def _flat_or_conflict(frame: pl.DataFrame) -> pl.DataFrame:
    """`flatten`, after checking that no attribute OCSF types as a scalar holds an
    object or array anywhere in the frame (raises ShapeConflict: read it record by record)."""
    if (where := shape_conflict(frame.schema)) is not None:
        raise ShapeConflict(where)
    return flatten(frame)


def _read_ndjson(source: str, data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    numbered = [(i + 1, line) for i, line in enumerate(lines)]
    if all(line.strip() for _, line in numbered):
        try:
            frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
            if frame.height == len(numbered):
                rows = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64)
                return _flat_or_conflict(frame.with_columns(rows.alias(ROW))), rejects_frame(source, [], [], [])
        except (ShapeConflict, pl.exceptions.PolarsError):
            pass
    return _records_one_by_one(source, numbered)


def _read_json_array(source: str, data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        return pl.DataFrame(), rejects_frame(
            source, [0], [f"unparsable JSON document: {err}"], [data[:65536].decode("utf-8", "replace")]
        )
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        return pl.DataFrame(), rejects_frame(
            source, [0], ["JSON document is neither an object nor an array"], [data[:65536].decode("utf-8", "replace")]
        )
    numbered = [(i, json.dumps(item).encode()) for i, item in enumerate(document)]
    return _records_one_by_one(source, numbered)


def _records_one_by_one(source: str, numbered: list[tuple[int, bytes]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Slow path: decode line by line, reject what is not a JSON object or breaks OCSF's
    shapes, flatten the rest record by record (`ocsf_ray.io.records`)."""
    records, rows, rejects = decode_lines(source, numbered)
    frame, shape_rejects = frame_records(records, rows, source)
    return frame, pl.concat([rejects, shape_rejects])
