"""Batch scoring on Ray Data: feature shards → `<out>/scores/*.parquet`.

Each family's feature shards stream through `ScoreBatches` actors (model + index loaded
once per actor, a GPU each when present); the score rows are written by Ray Data as
`<out>/scores/<family>_<write id>_<task>.parquet`. Events of a family the bundle has no
model for are still written, with null scores, so that scores hold one row per accepted
event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import polars as pl

from ocsf_ray.features.pipeline import write_features
from ocsf_ray.features.spec import FeatureSpec, save_specs
from ocsf_ray.index.build import BATCH_ROWS, actor_pool, bound
from ocsf_ray.index.scorer import SCORE_SCHEMA, ScoreBatches
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import join_uri
from ocsf_ray.train.bundle import family_spec
from ocsf_ray.train.manifest import Manifest
from ocsf_ray.train.data import discover_features

Progress = Callable[[str, int, int], None]


def scores_dir(out: str) -> str:
    """Where scores are written: `<out>/scores`."""
    return join_uri(out, "scores")


def _write_scores(dataset, family: str, out: str) -> None:
    from ray.data.datasource import FilenameProvider

    dataset.write_parquet(scores_dir(out), filename_provider=FilenameProvider(dataset_uuid=family, file_format="parquet"))


def score_family(bundle: str, files: list[str], family: str, out: str, percentile: float) -> None:
    """Score one family's feature shards with the bundle's model and index."""
    import ray.data

    scored = ray.data.read_parquet(files).map_batches(
        bound(ScoreBatches, bundle, family, percentile), batch_format="pyarrow",
        batch_size=BATCH_ROWS, **actor_pool(),
    )
    _write_scores(scored, family, out)


def unscored_rows(batch, family: str):
    """Identity columns of events no model covers, with null scores (is_anomaly False)."""
    frame = pl.from_arrow(batch).select("metadata_uid", "time", "service", "source_kind")
    frame = frame.with_columns(pl.lit(family).alias("family"), pl.lit(False).alias("is_anomaly"))
    return frame.select(pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
                        for c, t in SCORE_SCHEMA.items()).to_arrow()


def write_unscored(files: list[str], family: str, out: str) -> None:
    """A family the bundle has no model for, written to the scores with null scores (every event
    keeps a row)."""
    import ray.data

    columns = ["metadata_uid", "time", "service", "source_kind"]
    rows = ray.data.read_parquet(files).select_columns(columns).map_batches(
        unscored_rows, fn_kwargs={"family": family}, batch_format="pyarrow")
    _write_scores(rows, family, out)


@dataclass
class ScoreRun:
    """Events scored per family, and those written with empty scores (no model in the bundle)."""

    scored: dict[str, int] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)  # family -> events with no model


def score_featurized(bundle: str, features_root: str, out: str, percentile: float,
                     on_progress: Progress | None = None) -> ScoreRun:
    """Score every family of a `featurize` output made with this bundle's specs."""
    families = Manifest.read(bundle).families
    run = ScoreRun()
    found = discover_features(features_root)
    for i, (family, features) in enumerate(found.items()):
        if on_progress:
            on_progress(family, i, len(found))
        if family in families:
            score_family(bundle, list(features.files), family, out, percentile)
            run.scored[family] = features.rows
        else:
            write_unscored(list(features.files), family, out)
            run.unscored[family] = features.rows
    if on_progress:
        on_progress("", len(found), len(found))
    return run


def score_archive(bundle: str, archive: CanonicalArchive, out: str, percentile: float,
                  on_progress: Progress | None = None) -> ScoreRun:
    """Featurize an ingested archive with the bundle's own FeatureSpecs (never refitted)
    and score it; families the bundle does not know are written unscored."""
    families = Manifest.read(bundle).families
    run = ScoreRun()
    for family in archive.families:
        if family not in families:
            write_unscored(archive.families[family].files, family, out)
            run.unscored[family] = archive.families[family].rows
    known = write_bundle_features(bundle, archive, out, on_family=on_progress)
    featurized = score_featurized(bundle, out, out, percentile)
    run.scored = featurized.scored
    if on_progress:
        on_progress("", len(known), len(known))
    return run


def write_bundle_features(bundle: str, archive: CanonicalArchive, out: str, on_family=None) -> list[str]:
    """`<out>/features/<family>/` and `<out>/feature_spec.json` of every archive family the
    bundle models, made with the bundle's own FeatureSpecs (never refitted); the families."""
    modelled = [f for f in archive.families if f in Manifest.read(bundle).families]
    specs: dict[str, FeatureSpec] = {}
    for i, family in enumerate(modelled):
        if on_family:
            on_family(family, i, len(modelled))
        specs[family] = family_spec(bundle, family)
        write_features(archive, family, specs[family], out)
    save_specs(specs, join_uri(out, "feature_spec.json"))
    return modelled
