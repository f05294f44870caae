"""Score calibration: a family's raw score terms (k-NN distances, field rarity) → tail
probabilities and percentiles.

Raw terms of different families live on different scales (a family of near-identical
health checks has tiny distances), so ranking them together needs each score placed in
its own family's reference distribution. The empirical distribution gives the body;
beyond its `tail_quantile` an exponential tail (peaks over threshold, as in SPOT, Siffer
et al. KDD 2017) keeps the ordering strict: no two events tie at the 100th percentile.

The reference is unlabelled, so it holds the very anomalies it calibrates (a burst of
1-2 % of a family is common in a real archive). A tail fitted to the top exceedances would
take those anomalies as its own extremes and cap their surprise near -log10 of their
share. A second tail is therefore placed by two quantiles of the body, TAIL_QUANTILE and
FIT_QUANTILE, below the top 3 %: its scale is their spacing over ln((1 - 0.90) / (1 - 0.97)),
so anomalies that are up to 3 % of the reference do not set it. The tail probability is
the smaller of the two readings (`Calibration.tail_probability`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID = np.linspace(0.0, 1.0, 1001)
TAIL_QUANTILE, FIT_QUANTILE = 0.90, 0.97  # the placed tail starts at the first, its scale is set by both
TOP_QUANTILE = 0.99  # the empirical distribution's own exponential tail starts here
FUSION = "fisher"  # how ScoreCalibration fuses its terms; bundles indexed otherwise are refused


@dataclass(frozen=True)
class Calibration:
    """A term's reference distribution, turning raw scores into tail probabilities,
    percentiles and surprise (-log10 p): the empirical quantiles on a 1001-point grid,
    with an exponential tail placed from the 90th-97th percentile spacing and SPOT's
    exponential over the 99th percentile (Siffer et al., 2017, "Anomaly Detection in
    Streams with Extreme Value Theory"). Fitted on the reference rows' scores; saved in
    the bundle as a dict."""

    quantiles: tuple[float, ...]  # reference score at each of GRID's probabilities
    tail_quantile: float  # probability where the placed exponential tail starts (TAIL_QUANTILE)
    tail_scale: float  # its scale, from the TAIL_QUANTILE and FIT_QUANTILE quantiles' spacing
    reference_scores: int
    top_scale: float  # mean exceedance of reference scores over the TOP_QUANTILE quantile (SPOT)

    @classmethod
    def fit(cls, scores: np.ndarray) -> "Calibration":
        """`scores`: the reference rows' raw values [rows]. The placed tail's scale is the
        spacing of the TAIL_QUANTILE and FIT_QUANTILE quantiles; where they tie (a term that
        is mostly one value), the mean exceedance over the first, as in SPOT."""
        scores = np.asarray(scores, dtype=np.float64)
        start, fit, top = np.quantile(scores, [TAIL_QUANTILE, FIT_QUANTILE, TOP_QUANTILE])
        scale = float(fit - start) / np.log((1.0 - TAIL_QUANTILE) / (1.0 - FIT_QUANTILE))
        if scale <= 0:
            scale = _mean_excess(scores, start)
        return cls(tuple(np.quantile(scores, GRID).tolist()), TAIL_QUANTILE, max(scale, 1e-9), int(scores.size),
                   max(_mean_excess(scores, top), 1e-9))

    def tail_probability(self, scores: np.ndarray) -> np.ndarray:
        """P(reference score >= s): the smaller of the placed tail (the empirical body up to
        TAIL_QUANTILE, an exponential beyond) and the empirical distribution (up to
        TOP_QUANTILE, SPOT's exponential fitted to the exceedances beyond). Where the top of
        the reference is anomalies, the placed tail is the smaller and they are not capped
        by their own share; where the tail is short, the empirical one is, and the top 1 %
        of the reference still reads as the top 1 %."""
        scores = np.asarray(scores, dtype=np.float64)
        return np.minimum(self._exponential_beyond(scores, self.tail_quantile, self.tail_scale),
                          self._exponential_beyond(scores, TOP_QUANTILE, self.top_scale))

    def _exponential_beyond(self, scores: np.ndarray, quantile: float, scale: float) -> np.ndarray:
        quantiles = np.asarray(self.quantiles)
        body = 1.0 - np.interp(scores, quantiles, GRID)
        start = float(np.interp(quantile, GRID, quantiles))
        tail = (1.0 - quantile) * np.exp(-(scores - start) / scale)
        return np.where(scores > start, tail, np.maximum(body, 1.0 - quantile))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """100 * (1 - tail probability) per score [rows], 0-100."""
        return (100.0 * (1.0 - self.tail_probability(scores))).astype(np.float64)

    def surprise(self, scores: np.ndarray) -> np.ndarray:
        """-log10 of the tail probability: comparable across families, higher = rarer."""
        return -np.log10(np.maximum(self.tail_probability(scores), 1e-300))

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """The calibration `to_dict` wrote."""
        return cls(tuple(data["quantiles"]), data["tail_quantile"], data["tail_scale"], data["reference_scores"],
                   data["top_scale"])


def _mean_excess(scores: np.ndarray, start: float) -> float:
    excess = scores[scores > start] - start
    return float(excess.mean()) if excess.size else float(np.std(scores) or 1e-6)


@dataclass(frozen=True)
class NatsScale:
    """The calibration of a term that is already a log-probability ratio (nats): its
    surprise is the value in log10 units, with no reference fitted (the field rarity:
    nats beyond each field's level, `ocsf_ray.index.rarity`). Contamination of the
    reference cannot cap it."""

    def surprise(self, nats: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(nats, dtype=np.float64), 0.0) / np.log(10.0)

    def tail_probability(self, nats: np.ndarray) -> np.ndarray:
        return 10.0 ** -self.surprise(nats)

    def percentile(self, nats: np.ndarray) -> np.ndarray:
        return 100.0 * (1.0 - self.tail_probability(nats))

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"kind": "nats"}


def term_calibration(data: dict) -> Calibration | NatsScale:
    return NatsScale() if data.get("kind") == "nats" else Calibration.from_dict(data)


def fuse(surprises: dict[str, np.ndarray]) -> np.ndarray:
    """The fused score of each row: Fisher's method (Fisher 1932) on the terms' p-values.

    `surprises`: each term's -log10 p-value [rows]. With S their sum over m terms,
    -2 ln of the product of p-values is chi-squared with 2m degrees of freedom under
    independence, and its tail in closed form (even degrees of freedom) is
    P = 10^-S * sum_{j<m} (S ln 10)^j / j!. Returns -log10 P [rows], computed without
    forming P so that it does not underflow. For a fixed m it orders rows as S does."""
    total = np.sum(np.stack(list(surprises.values())), axis=0)
    x = np.maximum(total, 0.0) * np.log(10.0)
    series = sum(x**j / math.factorial(j) for j in range(len(surprises)))
    return np.maximum(total - np.log10(series), 0.0)


@dataclass(frozen=True)
class ScoreCalibration:
    """A family's score terms (k-NN distance among embeddings, among the scaled features,
    and the field rarity), each calibrated on the reference into a -log10 p-value, fused
    by Fisher's method (`fuse`) into `anomaly_score`; `combined` is the fused score's own
    distribution over the reference, for percentiles (which events a family flags).

    The fused score is not calibrated again on the reference: the terms are already
    p-values, and a second exponential tail fitted per family to an unlabelled reference
    re-scaled one family's extremes against another's. Measured in bench/detect.py, the
    second calibration cost AUPRC on every set where families mix (seed sample, 2 hours,
    template burst 0.56 against 0.74 without it; unusual user 0.86 against 0.97; demo
    0.167 against 0.188) and changed nothing on the others. Why the sum and not the
    largest surprise (Tippett's method): the sum ranks as well or better on the RAS log
    (0.955 against 0.925), the demo and the unusual user; the maximum wins where only
    one term sees an anomaly (a template burst, 0.97 against 0.74;
    tests/test_index.py shows the masking case). docs/SCORING.md has the table."""

    terms: dict[str, Calibration | NatsScale]  # term name -> its calibration
    combined: Calibration  # of the fused score over the reference rows

    def surprises(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each term's raw values → its surprise (-log10 tail probability)."""
        return {name: calibration.surprise(raw[name]) for name, calibration in self.terms.items()}

    def combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Raw terms [rows each] → anomaly_score [rows] (`fuse`)."""
        return fuse(self.surprises(raw))

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray], in_nats: tuple[str, ...] = ()) -> "ScoreCalibration":
        """`raw`: each term's values on the reference rows; terms named in `in_nats` are
        log-probability ratios already (`NatsScale`), the others are fitted."""
        terms = {name: NatsScale() if name in in_nats else Calibration.fit(values) for name, values in raw.items()}
        fused = fuse({name: c.surprise(raw[name]) for name, c in terms.items()})
        return cls(terms, Calibration.fit(fused))

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"terms": {name: c.to_dict() for name, c in self.terms.items()}, "combined": self.combined.to_dict(),
                "fusion": FUSION}

    @classmethod
    def from_dict(cls, data: dict) -> "ScoreCalibration":
        return cls({name: term_calibration(c) for name, c in data["terms"].items()},
                   Calibration.from_dict(data["combined"]))
