"""Scoring feature rows of one family: embed, search the reference, calibrate, threshold.

`FamilyScorer` is the one place where a score is computed: batch scoring (Ray Data
actors, `ocsf_ray.index.batch`), online scoring (Ray Serve), explanations and the
evaluation all call it, so an event gets the same score whichever path it takes. It is
an estimator in the scikit-learn / PyOD sense (`fit`, `decision_function`,
`decision_scores_`, `threshold_`, `labels_`), so a PyOD detector can stand in its place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ocsf_ray.index.calibration import ScoreCalibration
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.features.transform import feature_vectors
from ocsf_ray.index.reference import FamilyIndex
from ocsf_ray.index.search import mean_distance
from ocsf_ray.train.bundle import FamilyModel, load_family

DEFAULT_PERCENTILE = 99.0
SCORE_SCHEMA = {
    "metadata_uid": pl.String, "time": pl.Int64, "service": pl.String, "source_kind": pl.String,
    "family": pl.String, "knn_distance": pl.Float32, "feature_distance": pl.Float32, "field_rarity": pl.Float32,
    "anomaly_score": pl.Float64,
    "percentile": pl.Float64, "is_anomaly": pl.Boolean,
}


@dataclass
class Neighbours:
    """The k nearest reference events of a batch of queries (`FamilyScorer.neighbours`)."""

    embeddings: np.ndarray  # [n, dim] of the queries
    distances: np.ndarray  # [n, k], NaN where fewer than k reference rows exist
    ids: np.ndarray  # [n, k] reference row positions, -1 where missing


@dataclass
class FamilyScorer:
    """A family's anomaly detector over its feature rows (`ocsf_ray.features.extract`).

    fit(features[, embeddings]) takes the reference rows (polars, one per event, with
    metadata_uid, time, service and the FeatureSpec's columns); decision_function(features)
    returns `anomaly_score` [rows] (float64, -log10 of the Fisher-combined p-value of its
    terms, each a tail probability over the reference: higher = more anomalous,
    `ocsf_ray.index.calibration`). After fit, `decision_scores_` holds the reference rows'
    scores in input order; `threshold_` is their (1 - contamination) quantile and `labels_`
    = decision_scores_ > threshold_, as in PyOD.
    """

    model: FamilyModel
    index: FamilyIndex | None = None
    options: IndexOptions = IndexOptions()
    contamination: float = 1.0 - DEFAULT_PERCENTILE / 100.0

    def fit(self, features: pl.DataFrame, embeddings: np.ndarray | None = None) -> "FamilyScorer":
        """Index `features` as the reference and calibrate every term on their own scores
        (each row excluded from its own neighbours and counts). `embeddings`: the rows'
        embeddings when already computed (as Ray actors do for large references)."""
        embeddings = self.model.embed_features(features) if embeddings is None else embeddings
        self.index, order = FamilyIndex.fit(self.family, features, embeddings, self.model.spec, self.options)
        raw = raw_terms(self.index, self.index.reference, self.index.embeddings, encoder=self.model.has_encoder)
        self.index.calibration = fit_calibration(raw)
        scores = self.index.calibration.combine(raw)
        self.decision_scores_ = np.empty_like(scores)
        self.decision_scores_[order] = scores
        return self

    @property
    def threshold_(self) -> float:
        """The reference scores' (1 - contamination) quantile, as PyOD's `threshold_`."""
        return float(np.quantile(self.decision_scores_, 1.0 - self.contamination))

    @property
    def labels_(self) -> np.ndarray:
        """Whether each reference row scores above `threshold_` [rows], bool."""
        return self.decision_scores_ > self.threshold_

    def decision_function(self, features: pl.DataFrame) -> np.ndarray:
        """anomaly_score of each feature row [rows], float64."""
        return self.score(features).get_column("anomaly_score").to_numpy()

    @classmethod
    def load(cls, bundle: str, family: str) -> "FamilyScorer":
        """The fitted scorer of a bundle's family (its encoder, FeatureSpec, reference
        index and calibration), on the best device present."""
        model = load_family(bundle, family)
        index = FamilyIndex.load(bundle, family, model.spec)
        return cls(model, index, index.options)

    @property
    def family(self) -> str:
        """The event family this scorer was fitted on."""
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

        Three terms, each calibrated on the reference (`raw_terms`): the k-NN distance among
        embeddings (`knn_distance`), among the scaled feature vectors (`feature_distance`),
        and the field rarity (`field_rarity`, nats beyond each field's level, read as a log-probability
        ratio rather than calibrated), fused by Fisher's method into `anomaly_score`; `percentile`
        places that score in the family's reference; docs/SCORING.md shows what each catches.
        """
        found = found or self.neighbours(features)
        raw = raw_terms(self.index, features, found.embeddings, found.distances, self.model.has_encoder)
        calibration = self.index.calibration
        scores = calibration.combine(raw)
        percentiles = calibration.combined.percentile(scores)
        return features.select("metadata_uid", "time", "service", "source_kind").with_columns(
            pl.lit(self.family).alias("family"),
            pl.Series("knn_distance", raw.get("embedding", np.full(features.height, np.nan)), dtype=pl.Float32).fill_nan(None),
            pl.Series("feature_distance", raw["features"], dtype=pl.Float32),
            pl.Series("field_rarity", raw["rarity"], dtype=pl.Float32),
            pl.Series("anomaly_score", scores, dtype=pl.Float64),
            pl.Series("percentile", percentiles, dtype=pl.Float64),
            pl.Series("is_anomaly", percentiles >= percentile, dtype=pl.Boolean),
        )


def raw_terms(index: FamilyIndex, features: pl.DataFrame, embeddings: np.ndarray,
              distances: np.ndarray | None = None, encoder: bool = True) -> dict[str, np.ndarray]:
    """The uncalibrated score terms of feature rows, each [rows]: mean distance to the k
    nearest admissible reference embeddings (`embedding`) and feature vectors (`features`),
    and the field-rarity term in nats (`rarity`, `ocsf_ray.index.rarity.FieldRarity.term`).
    `distances`: the embedding neighbours' distances when already searched. Without an
    `encoder` the embeddings are the feature vectors, so their search is the feature
    term and there is no embedding term."""
    uids, times = features.get_column("metadata_uid"), features.get_column("time").to_numpy()
    if distances is None:
        distances = index.search(embeddings, uids, times)[0]
    rarity = index.rarity.term(index.field_rarity(features))
    if not encoder:
        return {"features": mean_distance(distances), "rarity": rarity}
    vectors = feature_vectors(features, index.spec)
    return {"embedding": mean_distance(distances),
            "features": mean_distance(index.search(vectors, uids, times, on_features=True)[0]), "rarity": rarity}


def fit_calibration(raw: dict[str, np.ndarray]) -> ScoreCalibration:
    """The calibration of `raw_terms` on the reference rows: the k-NN terms fitted, the
    field rarity read as the log-probability ratio it is (`NatsScale`)."""
    return ScoreCalibration.fit(raw, in_nats=("rarity",))


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
