"""Scoring feature rows of one family: embed, search the reference, calibrate, threshold.

`FamilyScorer` is the one place where a score is computed: batch scoring (Ray Data
actors, `ocsf_ray.index.batch`), online scoring (Ray Serve) and explanations all call it,
so an event gets the same score whichever path it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ocsf_ray.index.reference import FamilyIndex, feature_vectors
from ocsf_ray.index.search import mean_distance
from ocsf_ray.train.bundle import FamilyModel, load_family

DEFAULT_PERCENTILE = 99.0
SCORE_SCHEMA = {
    "metadata_uid": pl.String, "time": pl.Int64, "service": pl.String, "source_kind": pl.String,
    "family": pl.String, "knn_distance": pl.Float32, "feature_distance": pl.Float32, "anomaly_score": pl.Float64,
    "percentile": pl.Float64, "is_anomaly": pl.Boolean,
}


@dataclass
class Neighbours:
    embeddings: np.ndarray  # [n, dim] of the queries
    distances: np.ndarray  # [n, k], NaN where fewer than k reference rows exist
    ids: np.ndarray  # [n, k] reference row positions, -1 where missing


@dataclass
class FamilyScorer:
    model: FamilyModel
    index: FamilyIndex

    @classmethod
    def load(cls, bundle: str, family: str) -> "FamilyScorer":
        model = load_family(bundle, family)
        return cls(model, FamilyIndex.load(bundle, family, model.spec))

    @property
    def family(self) -> str:
        return self.model.family

    def neighbours(self, features: pl.DataFrame) -> Neighbours:
        """Each row's k nearest reference events: never itself, and never from the time
        shards around its own time when it falls inside the reference period."""
        embeddings = self.model.embed_features(features)
        distances, ids = self.index.search(embeddings, features.get_column("metadata_uid"),
                                           features.get_column("time").to_numpy())
        return Neighbours(embeddings, distances, ids)

    def score(self, features: pl.DataFrame, percentile: float = DEFAULT_PERCENTILE,
              found: Neighbours | None = None) -> pl.DataFrame:
        """Feature rows → one score row each (SCORE_SCHEMA), in input order (`found`: the
        rows' embedding neighbours when the caller already has them).

        The score combines two k-NN distances, each calibrated on the reference: among
        embeddings (`knn_distance`) and among the feature vectors (`feature_distance`);
        docs/SCORING.md shows what each catches that the other misses.
        """
        found = found or self.neighbours(features)
        distance = mean_distance(found.distances)
        vectors = feature_vectors(features, self.model.spec)
        feature_distance = mean_distance(self.index.search(
            vectors, features.get_column("metadata_uid"), features.get_column("time").to_numpy(), on_features=True)[0])
        calibration = self.index.calibration
        combined = calibration.combine(distance, feature_distance)
        percentiles = calibration.combined.percentile(combined)
        return features.select("metadata_uid", "time", "service", "source_kind").with_columns(
            pl.lit(self.family).alias("family"),
            pl.Series("knn_distance", distance, dtype=pl.Float32),
            pl.Series("feature_distance", feature_distance, dtype=pl.Float32),
            pl.Series("anomaly_score", calibration.combined.surprise(combined), dtype=pl.Float64),
            pl.Series("percentile", percentiles, dtype=pl.Float64),
            pl.Series("is_anomaly", percentiles >= percentile, dtype=pl.Boolean),
        )


class ScoreBatches:
    """Ray Data callable class: the model and index are loaded once per actor."""

    def __init__(self, bundle: str, family: str, percentile: float):
        self.scorer = FamilyScorer.load(bundle, family)
        self.percentile = percentile

    def __call__(self, batch):
        return self.scorer.score(pl.from_arrow(batch), self.percentile).to_arrow()


class EmbedBatches:
    """Ray Data callable class: feature rows → the same rows plus an `embedding` column."""

    def __init__(self, bundle: str, family: str):
        self.model = load_family(bundle, family)

    def __call__(self, batch):
        import pyarrow as pa

        frame = pl.from_arrow(batch)
        embeddings = self.model.embed_features(frame)
        column = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1])
        return batch.append_column("embedding", column)
