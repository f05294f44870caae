"""Featurization on Ray Data: fit FeatureSpecs in one pass, then extract features.

Fit: one task per staged canonical file reports mergeable column statistics
(`block_stats`); the driver merges a few kilobytes per file.

Transform, in two steps so that the heavy work streams file by file:
1. windows: a narrow pass (only the 5-7 columns window features need) grouped by
   service (`groupby("service").map_groups`), so each entity's window sees all of its
   events however the archive was split; each group writes its window features per
   source file, keyed by row position.
2. rows: one task per staged file computes the row-local features, appends that file's
   window features by position, and writes the feature shard.
Memory: step 2 is bounded by one staged file; step 1 by the narrow columns of the
largest service of a family (about 60 bytes a row).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ocsf_ray.features.fit import choose_normalisers, decide_spec
from ocsf_ray.features.stats import block_stats, merge_stats
from ocsf_ray.features.spec import FeatureOptions, FeatureSpec, save_specs
from ocsf_ray.features.transform import entity_windows, row_features, window_inputs
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import filesystem_for, join_uri, write_parquet

Progress = Callable[[str, int, int], None]
FILE, ROW = "__file", "__row"


def polars_schema(schema: pa.Schema) -> dict[str, pl.DataType]:
    """An Arrow schema as Polars dtypes by column name, in order."""
    return dict(pl.from_arrow(schema.empty_table()).schema)


def read_staged(uri: str, schema: pa.Schema, columns: list[str] | None = None) -> pl.DataFrame:
    """One staged canonical file as Polars, conformed to the family's unified schema
    (a column another file of the family has and this one lacks comes back as nulls)."""
    wanted = polars_schema(schema)
    names = [n for n in wanted if columns is None or n in columns]
    fs, inner, _ = filesystem_for(uri)
    with fs.open_input_file(inner) as handle:
        present = set(pq.read_schema(handle).names)
        frame = pl.from_arrow(pq.read_table(handle, columns=[n for n in names if n in present]))
    return frame.select(
        pl.col(n).cast(wanted[n]) if n in present else pl.lit(None, dtype=wanted[n]).alias(n) for n in names
    )


def _file_tasks(files: list[str]):
    import ray.data

    return ray.data.from_items([{"path": p, "index": i} for i, p in enumerate(files)], override_num_blocks=max(1, len(files)))


def fit_family(archive: CanonicalArchive, family: str, options: FeatureOptions) -> FeatureSpec:
    """Fit one family's FeatureSpec in a single distributed pass, one task per staged file.

    Candidate columns come from the union of every staged file's columns, and the
    statistics of every file decide the rest, so the spec equals `fit_spec` on all the
    family's events whatever the files' order.
    """
    fam = archive.families[family]
    schema = fam.arrow_schema()
    normalisers = choose_normalisers(polars_schema(schema), options)

    def stats_of_file(row: dict) -> dict:
        frame = read_staged(row["path"], schema)
        return {"stats": json.dumps(block_stats(frame, normalisers, options))}

    merged = merge_stats([json.loads(r["stats"]) for r in _file_tasks(fam.files).map(stats_of_file).iter_rows()])
    return decide_spec(family, merged, normalisers, options)


def _windows_of_group(group: pa.Table, spec: FeatureSpec, root: str) -> pa.Table:
    """Window features of one service's events, written per source file."""
    frame = pl.from_arrow(group).sort("time", "metadata_uid")
    windows = pl.concat([frame.select(FILE, ROW), entity_windows(frame, spec)], how="horizontal")
    service = frame.get_column("service")[0]
    name = hashlib.sha1(str(service).encode()).hexdigest()[:16]
    for (index,), part in windows.partition_by(FILE, as_dict=True).items():
        write_parquet(part.drop(FILE), join_uri(root, str(index), f"{name}.parquet"))
    return pa.table({"rows": [frame.height]})


def compute_windows(archive: CanonicalArchive, family: str, spec: FeatureSpec, root: str) -> None:
    """Step 1: the narrow, service-grouped pass that makes window features exact."""
    import ray

    fam = archive.families[family]
    columns = window_inputs(spec)
    schema = fam.arrow_schema()

    def narrow(task: pa.Table) -> pa.Table:
        frames = [
            read_staged(path, schema, columns).with_columns(
                pl.lit(index, dtype=pl.Int32).alias(FILE), pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW)
            )
            for path, index in zip(task["path"].to_pylist(), task["index"].to_pylist())
        ]
        return pl.concat(frames).to_arrow()

    partitions = max(1, min(fam.services, int(ray.cluster_resources().get("CPU", 1))))
    narrow_rows = _file_tasks(fam.files).map_batches(narrow, batch_size=1, batch_format="pyarrow")
    grouped = narrow_rows.groupby("service", num_partitions=partitions)
    list(grouped.map_groups(partial(_windows_of_group, spec=spec, root=root), batch_format="pyarrow").iter_rows())


def _window_rows(root: str, index: int) -> pl.DataFrame:
    fs, inner, prefix = filesystem_for(join_uri(root, str(index)))
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    parts = []
    for info in sorted(infos, key=lambda i: i.path):
        with fs.open_input_file(info.path) as handle:
            parts.append(pl.from_arrow(pq.read_table(handle)))
    return pl.concat(parts).sort(ROW).drop(ROW)


def write_features(archive: CanonicalArchive, family: str, spec: FeatureSpec, out: str) -> int:
    """Step 2: row features per staged file, joined by position with its windows."""
    fam = archive.families[family]
    schema = fam.arrow_schema()
    windows_root = join_uri(out, "_windows", family)
    compute_windows(archive, family, spec, windows_root)

    def features_of_file(row: dict) -> dict:
        events = read_staged(row["path"], schema)
        features = pl.concat([row_features(events, spec), _window_rows(windows_root, row["index"])], how="horizontal")
        write_parquet(features, join_uri(out, "features", family, f"part-{row['index']:05d}.parquet"))
        return {"rows": features.height}

    written = sum(r["rows"] for r in _file_tasks(fam.files).map(features_of_file).iter_rows())
    fs, inner, _ = filesystem_for(windows_root)
    fs.delete_dir(inner)
    return written


@dataclass
class FeaturizeResult:
    """The FeatureSpec and feature row count of each family `featurize_archive` wrote."""

    specs: dict[str, FeatureSpec]
    rows: dict[str, int] = field(default_factory=dict)


def featurize_archive(
    archive: CanonicalArchive,
    out: str,
    options: FeatureOptions = FeatureOptions(),
    on_progress: Progress | None = None,
) -> FeaturizeResult:
    """Fit and write `<out>/features/<family>/*.parquet` and `<out>/feature_spec.json`."""
    result = FeaturizeResult({})
    families = list(archive.families)
    for i, family in enumerate(families):
        if on_progress:
            on_progress(family, i, len(families))
        spec = fit_family(archive, family, options)
        result.rows[family] = write_features(archive, family, spec, out)
        result.specs[family] = spec
    if on_progress:
        on_progress("", len(families), len(families))
    save_specs(result.specs, join_uri(out, "feature_spec.json"))
    return result
