"""Ingestion on Ray Data: input chunks in, canonical events per family out.

Each chunk (a JSON file, or a run of Parquet row groups) is read, flattened and
canonicalised by one Ray Data task, which writes its accepted events per family to
`<out>/canonical/<family>/` and its rejects to `<out>/rejects/`, and returns one small
summary row. Writing from the task keeps the driver's memory flat whatever the
archive's size, and lets the fit and transform passes re-read typed columnar data
instead of parsing JSON twice. File names derive from the chunk, so a retried task
overwrites rather than duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import polars as pl
import pyarrow as pa

from ocsf_ray.io.canonical import canonicalize, unique_uids
from ocsf_ray.io.options import IngestOptions
from ocsf_ray.io.readers import Chunk, plan_chunks, read_chunk, source_texts
from ocsf_ray.io.records import REJECT_SCHEMA, rejects_frame
from ocsf_ray.io.sources import InputFile, join_uri, resolve_inputs, write_parquet


@dataclass
class FamilyEvents:
    """One event family's staged canonical files and the union of their schemas."""

    name: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    service_names: set[str] = field(default_factory=set)

    @property
    def services(self) -> int:
        return len(self.service_names)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c, _ARROW[t]) for c, t in self.columns.items()])


@dataclass
class CanonicalArchive:
    """What ingestion made of an archive: families of canonical events and the counts."""

    root: str
    families: dict[str, FamilyEvents]
    rows_read: int
    accepted: int
    rejected: int
    files: int
    duplicate_uids: int = 0

    def dataset(self, family: str, **read_args):
        """The family's canonical events as a Ray Dataset with one unified schema."""
        import ray.data

        fam = self.families[family]
        return ray.data.read_parquet(fam.files, schema=fam.arrow_schema(), **read_args)

    def sample(self, family: str, rows: int = 1000) -> pl.DataFrame:
        """The first rows of the family's first staged file, read on the driver."""
        from ocsf_ray.io.sources import filesystem_for
        import pyarrow.parquet as pq

        fs, inner, _ = filesystem_for(self.families[family].files[0])
        with fs.open_input_file(inner) as handle:
            batch = next(pq.ParquetFile(handle).iter_batches(batch_size=rows))
        return pl.from_arrow(batch)


_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.large_string(),
          "datetime": pa.timestamp("ms", tz="UTC")}


def _kind(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "bool" if dtype == pl.Boolean else "str"


def _merge_kinds(a: str, b: str) -> str:
    """Widen two column kinds: int with float is float, anything else mixed is a string
    (a datetime beside text is read back as its ISO-8601 text)."""
    if a == b:
        return a
    return "float" if {a, b} == {"int", "float"} else "str"


def stage_chunk(chunk: Chunk, options: IngestOptions) -> tuple[pl.DataFrame, pl.DataFrame, int, int]:
    """(canonical events, rejects with raw text, rows read, duplicate uids) of one chunk.

    Whatever the input holds, this returns: a chunk that fails as a whole in a way no
    row explains (a Parquet file that cannot be decoded) is one reject with the reason."""
    file = chunk.file
    try:
        flat, read_rejects = read_chunk(chunk)
    except Exception as err:  # noqa: BLE001 - an unreadable chunk is the input's fault, never a crash
        reason = f"unreadable {file.format} input: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return pl.DataFrame(), rejects_frame(file.uri, [chunk.first_row], [reason], [None]), 1, 0
    events, rejects = canonicalize(flat, file.uri, options, name=file.relative)
    events, duplicates = unique_uids(events)
    rejects = pl.concat([read_rejects, rejects]).select(list(REJECT_SCHEMA))
    missing = rejects.filter(pl.col("raw").is_null()).get_column("row").to_list()
    if missing:
        texts = dict(zip(missing, source_texts(chunk, missing)))
        rejects = rejects.with_columns(pl.col("raw").fill_null(pl.col("row").replace_strict(texts, default=None)))
    return events, rejects, flat.height + read_rejects.height, duplicates


def ingest_chunk(chunk: Chunk, out: str, options: IngestOptions) -> list[dict]:
    """Read, flatten, canonicalise and stage one chunk; return its summary rows."""
    events, rejects, read, duplicates = stage_chunk(chunk, options)
    if rejects.height:
        write_parquet(rejects, join_uri(out, "rejects", f"{chunk.chunk_id}.parquet"))
    summary = [{
        "chunk": chunk.chunk_id, "source_file": chunk.file.uri, "family": "",
        "read": read, "accepted": events.height, "rejected": rejects.height,
        "duplicates": duplicates, "path": "", "columns": "{}", "services": "[]",
    }]
    if events.height:
        for (family,), part in events.partition_by("family", as_dict=True, maintain_order=True).items():
            path = join_uri(out, "canonical", family, f"{chunk.chunk_id}.parquet")
            write_parquet(part, path)
            columns = {c: _kind(t) for c, t in part.schema.items()}
            summary.append({
                "chunk": chunk.chunk_id, "source_file": chunk.file.uri, "family": family,
                "read": 0, "accepted": part.height, "rejected": 0, "duplicates": 0, "path": path,
                "columns": json.dumps(columns),
                "services": json.dumps(part.get_column("service").unique().sort().to_list()),
            })
    return summary


def read_events(
    paths: list[str],
    out: str,
    options: IngestOptions = IngestOptions(),
    on_progress: Callable[[int, int], None] | None = None,
) -> CanonicalArchive:
    """Ingest files, directories or globs into canonical events staged under `<out>`.

    Raises InputError before any Ray work when a path is unreadable or of unknown format.
    Rows that cannot be canonicalised go to `<out>/rejects/` with their reason;
    `accepted + rejected == rows_read` holds for the returned counts. `duplicate_uids`
    counts events whose metadata_uid repeated an earlier one of the same chunk (renamed
    `<uid>#<n>`, see `unique_uids`).
    """
    import ray.data

    files: list[InputFile] = resolve_inputs(paths)
    chunks = plan_chunks(files, options.rows_per_chunk)
    tasks = ray.data.from_items([c.to_row() for c in chunks], override_num_blocks=len(chunks))
    summaries = tasks.flat_map(lambda row: ingest_chunk(Chunk.from_row(row), out, options))
    families: dict[str, FamilyEvents] = {}
    read = accepted = rejected = duplicates = 0
    done: set[str] = set()
    for row in summaries.iter_rows():
        if not row["family"]:
            read, rejected = read + row["read"], rejected + row["rejected"]
            accepted, duplicates = accepted + row["accepted"], duplicates + row["duplicates"]
            done.add(row["chunk"])
            if on_progress:
                on_progress(len(done), len(chunks))
            continue
        fam = families.setdefault(row["family"], FamilyEvents(row["family"]))
        fam.files.append(row["path"])
        fam.rows += row["accepted"]
        fam.service_names.update(json.loads(row["services"]))
        for column, kind in json.loads(row["columns"]).items():
            fam.columns[column] = _merge_kinds(fam.columns.get(column, kind), kind)
    for fam in families.values():
        fam.files.sort()
    return CanonicalArchive(
        join_uri(out, "canonical"), dict(sorted(families.items())), read, accepted, rejected, len(files), duplicates
    )
