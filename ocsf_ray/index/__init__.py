"""Anomaly scoring: FAISS k-NN over embeddings and features, field rarity, calibration,
thresholds, explanations."""

from ocsf_ray.index.batch import score_archive, score_featurized
from ocsf_ray.index.build import index_bundle
from ocsf_ray.index.calibration import Calibration
from ocsf_ray.index.explain import explain
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.scorer import DEFAULT_PERCENTILE, FamilyScorer

__all__ = [
    "Calibration", "DEFAULT_PERCENTILE", "FamilyScorer", "IndexOptions", "explain",
    "index_bundle", "score_archive", "score_featurized",
]
