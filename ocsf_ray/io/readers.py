"""Read one chunk of an input file into a Polars frame of raw records plus its rejects.

The fast path hands whole files to Polars' native JSON and Parquet readers. Only when
a chunk fails to parse as a whole does the slow path look at its lines one by one, so
a single broken line costs one chunk a Python loop, not the whole archive.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import polars as pl
import pyarrow.parquet as pq

from ocsf_ray.io.sources import InputFile, filesystem_for, open_input

ROW = "__row"
REJECT_SCHEMA = {"source_file": pl.String, "row": pl.Int64, "reason": pl.String, "raw": pl.String}


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
                "row_groups": list(self.row_groups), "first_row": self.first_row}

    @classmethod
    def from_row(cls, row: dict) -> "Chunk":
        file = InputFile(row["uri"], row["format"], bool(row["compressed"]), int(row["size"]))
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


def rejects_frame(source: str, rows: list[int], reasons: list[str], raws: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"source_file": [source] * len(rows), "row": rows, "reason": reasons, "raw": raws},
        schema=REJECT_SCHEMA,
    )


def read_chunk(chunk: Chunk) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(raw records with a ROW column, rejects) for one chunk.

    ROW is the 0-based row index for Parquet and JSON arrays and the 1-based line
    number for NDJSON, i.e. what a person would look up in that file.
    """
    f = chunk.file
    if f.format == "parquet":
        return _read_parquet(chunk), rejects_frame(f.uri, [], [], [])
    with open_input(f.uri) as stream:
        data = stream.read()
    if f.format == "ndjson":
        return _read_ndjson(f.uri, data)
    return _read_json_array(f.uri, data)


def _read_parquet(chunk: Chunk) -> pl.DataFrame:
    if chunk.file.compressed:  # a gzipped Parquet file must be inflated before seeking
        with open_input(chunk.file.uri) as stream:
            table = pq.read_table(io.BytesIO(stream.read()))
    else:
        fs, inner, _ = filesystem_for(chunk.file.uri)
        with fs.open_input_file(inner) as handle:
            parquet = pq.ParquetFile(handle)
            groups = list(chunk.row_groups) or list(range(parquet.num_row_groups))
            table = parquet.read_row_groups(groups) if groups else parquet.schema_arrow.empty_table()
    frame = pl.from_arrow(table, rechunk=False)
    rows = pl.int_range(chunk.first_row, chunk.first_row + frame.height, eager=True, dtype=pl.Int64)
    return frame.with_columns(rows.alias(ROW))


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
                return frame.with_columns(rows.alias(ROW)), rejects_frame(source, [], [], [])
        except pl.exceptions.PolarsError:
            pass
    return _records_one_by_one(source, numbered)


def _read_json_array(source: str, data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
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
    """Slow path: decode line by line, reject what is not a JSON object, frame the rest
    (`records_frame`)."""
    records, rows = [], []
    bad_rows, reasons, raws = [], [], []
    for row, line in numbered:
        text = line.decode("utf-8", "replace")
        if not text.strip():
            bad_rows.append(row), reasons.append("empty line"), raws.append(text)
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            bad_rows.append(row), reasons.append(f"unparsable JSON: {err}"), raws.append(text)
            continue
        if not isinstance(value, dict):
            bad_rows.append(row), reasons.append(f"not a JSON object: {type(value).__name__}"), raws.append(text)
            continue
        records.append(value)
        rows.append(row)
    rejects = rejects_frame(source, bad_rows, reasons, raws)
    if not records:
        return pl.DataFrame(), rejects
    return records_frame(records, rows), rejects


def records_frame(records: list[dict], rows: list[int]) -> pl.DataFrame:
    """Decoded JSON objects as one raw frame with their ROW numbers: the frame the slow
    JSON path reads and online scoring (`ocsf_ray.index.online`) builds from a request.

    Values whose type clashes across records (an object here, a number there) would
    make Polars refuse the whole frame; in that case containers are kept as JSON
    strings, which the flattener decodes where it can, so nothing is lost.
    """
    try:
        frame = pl.from_dicts(records, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        stringified = [
            {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in records
        ]
        frame = pl.from_dicts(stringified, infer_schema_length=None, strict=False)
    return frame.with_columns(pl.Series(ROW, rows, dtype=pl.Int64))
