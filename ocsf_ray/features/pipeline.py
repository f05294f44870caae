"""Featurization on Ray Data: fit FeatureSpecs in one pass, then extract features.

Fit: each block of a family's canonical events reports mergeable column statistics
(`block_stats`) from a `map_batches` task; the driver merges a few kilobytes per block.
Transform: events are grouped by service (`groupby("service").map_groups`) so that
window features, which need every event of an entity, are exact however the archive
was split into blocks; each group is then the plain Polars `extract`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import polars as pl
import pyarrow as pa

from ocsf_ray.features.fit import block_stats, choose_normalisers, decide_spec, merge_stats
from ocsf_ray.features.spec import FeatureOptions, FeatureSpec, save_specs
from ocsf_ray.features.transform import extract
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import join_uri

Progress = Callable[[str, int, int], None]


def _stats_of_block(batch: pa.Table, normalisers: dict, options: FeatureOptions) -> dict:
    return {"stats": [json.dumps(block_stats(pl.from_arrow(batch), normalisers, options))]}


def fit_family(archive: CanonicalArchive, family: str, options: FeatureOptions) -> FeatureSpec:
    """Fit one family's FeatureSpec in a single distributed pass."""
    dataset = archive.dataset(family)
    normalisers = choose_normalisers(archive.sample(family), options)
    stats = dataset.map_batches(
        partial(_stats_of_block, normalisers=normalisers, options=options),
        batch_format="pyarrow", batch_size=None,
    )
    merged = merge_stats([json.loads(row["stats"]) for row in stats.iter_rows()])
    return decide_spec(family, merged, normalisers, options)


def _extract_group(group: pa.Table, spec: FeatureSpec) -> pa.Table:
    return extract(pl.from_arrow(group), spec).to_arrow()


def extract_family(archive: CanonicalArchive, family: str, spec: FeatureSpec, num_partitions: int | None = None):
    """The family's features as a Ray Dataset (lazy; write or iterate it).

    The shuffle has as many partitions as the cluster has CPUs (at most one per
    service): more would only add empty reduce tasks.
    """
    import ray

    services = archive.families[family].services
    cpus = int(ray.cluster_resources().get("CPU", 1))
    partitions = num_partitions or max(1, min(services, cpus))
    grouped = archive.dataset(family).groupby("service", num_partitions=partitions)
    return grouped.map_groups(partial(_extract_group, spec=spec), batch_format="pyarrow")


@dataclass
class FeaturizeResult:
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
        extract_family(archive, family, spec).write_parquet(join_uri(out, "features", family))
        result.specs[family] = spec
        result.rows[family] = archive.families[family].rows
    if on_progress:
        on_progress("", len(families), len(families))
    save_specs(result.specs, join_uri(out, "feature_spec.json"))
    return result
