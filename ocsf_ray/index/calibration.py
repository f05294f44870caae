"""Score calibration: a family's raw k-NN distances → tail probabilities and percentiles.

Raw distances of different families live on different scales (a family of near-identical
health checks has tiny distances), so ranking them together needs each score placed in
its own family's reference distribution. The empirical distribution gives the body;
beyond its `tail_quantile`, where reference scores are too few to rank new extremes, an
exponential tail fitted to the exceedances (peaks over threshold, as in SPOT, Siffer et
al. KDD 2017) keeps the ordering strict: no two events tie at the 100th percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = np.linspace(0.0, 1.0, 1001)


@dataclass(frozen=True)
class Calibration:
    quantiles: tuple[float, ...]  # reference score at each of GRID's probabilities
    tail_quantile: float  # probability where the exponential tail takes over
    tail_scale: float  # mean exceedance of reference scores over that quantile
    reference_scores: int

    @classmethod
    def fit(cls, scores: np.ndarray, tail_quantile: float = 0.99) -> "Calibration":
        scores = np.asarray(scores, dtype=np.float64)
        threshold = float(np.quantile(scores, tail_quantile))
        excess = scores[scores > threshold] - threshold
        scale = float(excess.mean()) if excess.size else float(np.std(scores) or 1e-6)
        return cls(tuple(np.quantile(scores, GRID).tolist()), tail_quantile, max(scale, 1e-9), int(scores.size))

    def tail_probability(self, scores: np.ndarray) -> np.ndarray:
        """P(reference score >= s), from the empirical body and the fitted tail."""
        scores = np.asarray(scores, dtype=np.float64)
        quantiles = np.asarray(self.quantiles)
        body = 1.0 - np.interp(scores, quantiles, GRID)
        start = float(np.interp(self.tail_quantile, GRID, quantiles))
        tail = (1.0 - self.tail_quantile) * np.exp(-(scores - start) / self.tail_scale)
        return np.where(scores > start, tail, np.maximum(body, 1.0 - self.tail_quantile))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        return (100.0 * (1.0 - self.tail_probability(scores))).astype(np.float64)

    def surprise(self, scores: np.ndarray) -> np.ndarray:
        """-log10 of the tail probability: comparable across families, higher = rarer."""
        return -np.log10(np.maximum(self.tail_probability(scores), 1e-300))

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(tuple(data["quantiles"]), data["tail_quantile"], data["tail_scale"], data["reference_scores"])


@dataclass(frozen=True)
class ScoreCalibration:
    """The two k-NN distances of a family (over embeddings, over the scaled features
    themselves) each calibrated on the reference, their surprises summed, and the sum
    calibrated again so that the final score reads as one tail probability."""

    embedding: Calibration
    features: Calibration
    combined: Calibration

    def combine(self, embedding_distance: np.ndarray, feature_distance: np.ndarray) -> np.ndarray:
        return self.embedding.surprise(embedding_distance) + self.features.surprise(feature_distance)

    @classmethod
    def fit(cls, embedding_distance: np.ndarray, feature_distance: np.ndarray) -> "ScoreCalibration":
        embedding, features = Calibration.fit(embedding_distance), Calibration.fit(feature_distance)
        combined = embedding.surprise(embedding_distance) + features.surprise(feature_distance)
        return cls(embedding, features, Calibration.fit(combined))

    def to_dict(self) -> dict:
        return {name: getattr(self, name).to_dict() for name in ("embedding", "features", "combined")}

    @classmethod
    def from_dict(cls, data: dict) -> "ScoreCalibration":
        return cls(*(Calibration.from_dict(data[name]) for name in ("embedding", "features", "combined")))
