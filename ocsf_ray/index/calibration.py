"""Score calibration: a family's raw score terms (k-NN distances, field rarity) → tail
probabilities and percentiles.

Raw terms of different families live on different scales (a family of near-identical
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


def fuse(surprises: dict[str, np.ndarray]) -> np.ndarray:
    """The fused raw score of each row: the sum of its term surprises."""
    return np.sum(np.stack(list(surprises.values())), axis=0)


@dataclass(frozen=True)
class ScoreCalibration:
    """A family's score terms (k-NN distance among embeddings, among the scaled features,
    and the field rarity), each calibrated on the reference; their surprises are summed
    (Fisher's method on -log10 p-values, up to a constant) and the sum calibrated again so
    that the final score reads as one tail probability over the reference.

    Why the sum and not the largest surprise (Tippett's method): measured term by term in
    bench/detect.py, the sum ranks best on every set (AUPRC on the seed sample with injected
    incidents 0.42 against 0.29 for the maximum, the RAS log 0.97 against 0.93, synth 0.13
    against 0.125). The maximum wins only where two terms are blind to an anomaly (a group
    of alike events larger than k, spread over the whole reference, is each other's nearest
    neighbours): there the field rarity alone sees it (tests/test_index.py)."""

    terms: dict[str, Calibration]  # term name -> its calibration, in TERMS order
    combined: Calibration

    def surprises(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each term's raw values → its surprise (-log10 tail probability)."""
        return {name: calibration.surprise(raw[name]) for name, calibration in self.terms.items()}

    def combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        return fuse(self.surprises(raw))

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray]) -> "ScoreCalibration":
        terms = {name: Calibration.fit(values) for name, values in raw.items()}
        return cls(terms, Calibration.fit(fuse({name: c.surprise(raw[name]) for name, c in terms.items()})))

    def to_dict(self) -> dict:
        return {"terms": {name: c.to_dict() for name, c in self.terms.items()}, "combined": self.combined.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "ScoreCalibration":
        return cls({name: Calibration.from_dict(c) for name, c in data["terms"].items()},
                   Calibration.from_dict(data["combined"]))
