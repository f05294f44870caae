"""Indexing a trained bundle: embed each family's reference sample, build its FAISS
index, score the reference against itself and fit the calibration.

Embedding runs as Ray Data actors (`actor_pool`): one model load per actor, one GPU per
actor when the cluster has GPUs, CPU actors otherwise.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import polars as pl

from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.reference import FamilyIndex
from ocsf_ray.index.scorer import EmbedBatches, FamilyScorer
from ocsf_ray.runtime import collect
from ocsf_ray.train.bundle import load_family
from ocsf_ray.train.manifest import IndexEntry, Manifest
from ocsf_ray.train.data import FamilyFeatures, discover_features

BATCH_ROWS = 4096


def actor_pool() -> dict:
    """map_batches resources for model actors: a GPU each when there are GPUs, else one
    CPU each, scaling up to the cluster's CPUs."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus:
        return {"num_gpus": 1, "concurrency": gpus}
    return {"num_cpus": 1, "concurrency": (1, max(1, int(ray.cluster_resources().get("CPU", 1))))}


def bound(actor_class: type, *args) -> type:
    """`actor_class` with its constructor arguments baked in: Ray Data would otherwise put
    them in the object store, which Ray reports as an error for restartable actors."""

    class Bound(actor_class):
        def __init__(self):
            super().__init__(*args)

    Bound.__name__ = actor_class.__name__
    return Bound


def embed_sample(bundle: str, features: FamilyFeatures, max_rows: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """(feature rows, embeddings) of a uniform sample of at most ~max_rows feature rows."""
    import ray.data

    dataset = ray.data.read_parquet(list(features.files))
    if features.rows > max_rows:
        dataset = dataset.random_sample(max_rows / features.rows, seed=seed)
    dataset = dataset.map_batches(
        bound(EmbedBatches, bundle, features.family), batch_format="pyarrow",
        batch_size=BATCH_ROWS, **actor_pool(),
    )
    frame = collect(dataset)
    return frame.drop("embedding"), frame.get_column("embedding").to_numpy()


def index_family(bundle: str, features: FamilyFeatures, options: IndexOptions) -> FamilyIndex:
    """The family's reference indexes and calibration, fitted on a uniform sample of its
    feature rows (`FamilyScorer.fit`)."""
    reference, embeddings = embed_sample(bundle, features, options.reference_max, options.seed)
    return FamilyScorer(load_family(bundle, features.family), options=options).fit(reference, embeddings).index


def index_bundle(bundle: str, features_root: str, options: IndexOptions = IndexOptions(),
                 on_family: Callable[[str, int, int], None] | None = None) -> dict[str, dict]:
    """Index every family of a bundle from a `featurize` output; record it in the manifest."""
    manifest = Manifest.read(bundle)
    found = discover_features(features_root)
    missing = [f for f in manifest.families if f not in found]
    if missing:
        raise ValueError(f"{features_root} has no features for {', '.join(missing)}")
    summary = {}
    for i, family in enumerate(manifest.families):
        if on_family:
            on_family(family, i, len(manifest.families))
        built = index_family(bundle, found[family], options)
        built.save(bundle)
        terms = built.calibration.terms
        quantiles = np.asarray(terms.get("embedding", terms["features"]).quantiles)
        summary[family] = built.info.to_dict() | {
            "reference_rows": built.reference.height, "time_shards": len(built.shards),
            "distance_median": float(quantiles[500]), "distance_p99": float(quantiles[990]),
        }
    if on_family:
        on_family("", len(manifest.families), len(manifest.families))
    manifest.index = IndexEntry(options=options.to_dict(), families=summary)
    manifest.write(bundle)
    return summary
