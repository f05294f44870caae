"""Drift statistics between a family's reference sample and a current sample.

Pure functions of arrays and frames, one per view of the data; each returns a
JSON-ready section with its figures, `drifted` and the `reasons` (empty when none):

- `embedding_drift`: per-dimension two-sample Kolmogorov-Smirnov tests with a
  Benjamini-Hochberg correction, per-dimension Wasserstein distances, and the share of
  drifted dimensions;
- `feature_drift`: population stability index and new-category rate of each
  categorical feature (its codes), both measured against what the reference itself
  shows over its own time span, and KS tests of the numeric features;
- `score_drift`: the share of flagged events against the share the calibrated
  threshold promises, with a binomial test.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from ocsf_ray.features.spec import FIRST_CODE, MISSING_CODE, UNSEEN_CODE, FeatureSpec
from ocsf_ray.features.transform import feature_columns
from ocsf_ray.monitor.options import MonitorOptions

SHARE_FLOOR = 1e-4  # PSI of an empty bin: the share it is given so the log stays finite


def ks_columns(reference: np.ndarray, current: np.ndarray, fdr: float, min_statistic: float) -> dict[str, np.ndarray]:
    """Column by column two-sample KS: statistic, p-value, BH-adjusted p-value and
    whether the column drifted (adjusted p < fdr and statistic >= min_statistic)."""
    if reference.shape[1] == 0:
        empty = np.zeros(0)
        return {"statistic": empty, "pvalue": empty, "adjusted": empty, "drifted": empty.astype(bool)}
    found = stats.ks_2samp(reference, current, axis=0, method="asymp")
    statistic = np.nan_to_num(np.atleast_1d(found.statistic).astype(np.float64), nan=0.0)
    pvalue = np.clip(np.nan_to_num(np.atleast_1d(found.pvalue).astype(np.float64), nan=1.0), 0.0, 1.0)
    adjusted = stats.false_discovery_control(pvalue, method="bh")
    return {"statistic": statistic, "pvalue": pvalue, "adjusted": adjusted,
            "drifted": (adjusted < fdr) & (statistic >= min_statistic)}


def embedding_drift(reference: np.ndarray, current: np.ndarray, options: MonitorOptions) -> dict:
    """Drift of the embedding distribution, dimension by dimension."""
    ks = ks_columns(reference, current, options.fdr, options.ks_min_statistic)
    distances = np.array([stats.wasserstein_distance(reference[:, j], current[:, j]) for j in range(reference.shape[1])])
    dims, drifted = reference.shape[1], int(ks["drifted"].sum())
    share = drifted / max(dims, 1)
    section = {
        "dimensions": dims, "drifted_dimensions": drifted, "drifted_share": share,
        "mean_ks_statistic": float(ks["statistic"].mean()), "max_ks_statistic": float(ks["statistic"].max()),
        "mean_wasserstein": float(distances.mean()), "max_wasserstein": float(distances.max()),
    }
    reasons = []
    if share > options.max_drifted_dims:
        reasons.append(f"embedding: {drifted} of {dims} dimensions drifted (share {share:.2f} > {options.max_drifted_dims})")
    return section | {"drifted": bool(reasons), "reasons": reasons}


def code_bins(reference_codes: np.ndarray, cardinality: int, bins: int) -> np.ndarray:
    """Code → PSI bin: 0 missing, 1 unseen, then the `bins` most frequent known codes of
    the reference, and one bin for every other known code (rare codes alone would make
    PSI mostly sampling noise)."""
    counts = np.bincount(reference_codes, minlength=cardinality)
    known = FIRST_CODE + np.argsort(-counts[FIRST_CODE:], kind="stable")[:bins]
    known = known[counts[known] > 0]
    mapping = np.full(cardinality, 2 + len(known))
    mapping[MISSING_CODE], mapping[UNSEEN_CODE] = 0, 1
    mapping[known] = 2 + np.arange(len(known))
    return mapping


def population_stability(reference_codes: np.ndarray, current_codes: np.ndarray, cardinality: int, bins: int) -> float:
    """PSI = sum over bins of (current share - reference share) * ln(current / reference)."""
    reference_codes = np.clip(reference_codes, 0, cardinality - 1)
    current_codes = np.clip(current_codes, 0, cardinality - 1)
    mapping = code_bins(reference_codes, cardinality, bins)
    width = int(mapping.max()) + 1
    ref = np.maximum(np.bincount(mapping[reference_codes], minlength=width) / max(len(reference_codes), 1), SHARE_FLOOR)
    cur = np.maximum(np.bincount(mapping[current_codes], minlength=width) / max(len(current_codes), 1), SHARE_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def value_churn(codes: np.ndarray, cardinality: int) -> float:
    """Share of the later half of time-ordered codes whose value the earlier half never
    had (an unseen code counts as new, a missing one does not): how fast the column's
    values turn over within the reference itself. Identifiers (trace and session ids),
    versions and long-tailed values (users, addresses) turn over; hosts, services,
    templates do not. New data is expected to bring at least this share of values the
    vocabulary lacks, whatever else changed."""
    half = len(codes) // 2
    if half == 0:
        return 0.0
    earlier = np.zeros(cardinality, bool)
    earlier[np.clip(codes[:half], 0, cardinality - 1)] = True
    earlier[MISSING_CODE], earlier[UNSEEN_CODE] = True, False
    later = np.clip(codes[half:], 0, cardinality - 1)
    return float(np.mean(~earlier[later]))


def _codes(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).fill_null(MISSING_CODE).to_numpy().astype(np.int64)


def feature_drift(reference: pl.DataFrame, current: pl.DataFrame, spec: FeatureSpec, options: MonitorOptions) -> dict:
    """Drift of the model's inputs (`reference`: rows in time order, as the bundle keeps
    them): every categorical (PSI, new-category rate) and the numeric features (KS,
    BH-corrected over the family's numeric columns).

    The new-category rate is the share of current rows whose value the vocabulary lacks
    beyond the reference's own churn (`value_churn`). A column whose values turn over by
    more than `max_reference_churn` within the reference is volatile: its code
    distribution moves with time by nature (today's trace ids are not yesterday's), so
    its PSI is reported but not held against it; it drifts only by the new-category rate.
    """
    categorical_columns, floats = feature_columns(spec)
    reasons, categorical = [], []
    for column, feature in zip(categorical_columns, spec.categorical):
        ref, cur = _codes(reference, column), _codes(current, column)
        unseen, churn = float(np.mean(cur == UNSEEN_CODE)), value_churn(ref, feature.cardinality)
        found = {
            "column": column, "psi": population_stability(ref, cur, feature.cardinality, options.psi_bins),
            "unseen_share": unseen, "reference_unseen_share": float(np.mean(ref == UNSEEN_CODE)),
            "reference_churn": churn, "volatile": churn > options.max_reference_churn,
            "new_category_rate": max(0.0, unseen - churn),
        }
        categorical.append(found)
        if found["psi"] > options.max_psi and not found["volatile"]:
            reasons.append(f"feature {column}: PSI {found['psi']:.3f} > {options.max_psi}")
        if found["new_category_rate"] > options.max_new_category_rate:
            reasons.append(f"feature {column}: {unseen:.1%} of rows have values the vocabulary lacks, "
                           f"{found['new_category_rate']:.1%} beyond the reference's own churn of {churn:.1%} "
                           f"(> {options.max_new_category_rate:.0%})")
    numerics = [c for c in floats if not c.startswith("time__")]
    ks = ks_columns(reference.select(numerics).to_numpy().astype(np.float64).reshape(reference.height, -1),
                    current.select(numerics).to_numpy().astype(np.float64).reshape(current.height, -1),
                    options.fdr, options.ks_min_statistic)
    numeric = [{"column": c, "ks_statistic": float(s), "adjusted_pvalue": float(p), "drifted": bool(d)}
               for c, s, p, d in zip(numerics, ks["statistic"], ks["adjusted"], ks["drifted"])]
    drifted = int(ks["drifted"].sum())
    share = drifted / max(len(numerics), 1)
    if share > options.max_drifted_numerics:
        worst = sorted((n for n in numeric if n["drifted"]), key=lambda n: -n["ks_statistic"])[:3]
        reasons.append(f"numeric features: {drifted} of {len(numerics)} drifted (share {share:.2f} > "
                       f"{options.max_drifted_numerics}; largest KS: "
                       + ", ".join(f"{n['column']} {n['ks_statistic']:.2f}" for n in worst) + ")")
    section = {
        "max_psi": max((c["psi"] for c in categorical if not c["volatile"]), default=0.0),
        "max_new_category_rate": max((c["new_category_rate"] for c in categorical), default=0.0),
        "drifted_numerics": drifted, "numerics": len(numerics), "drifted_numeric_share": share,
        "categorical": categorical, "numeric": numeric,
    }
    return section | {"drifted": bool(reasons), "reasons": reasons}


def score_drift(scored: pl.DataFrame, options: MonitorOptions) -> dict:
    """The flag rate of scored current rows against the calibrated expectation (one-sided:
    fewer flags than promised is not a reason to retrain)."""
    flags = scored.get_column("is_anomaly").fill_null(False).to_numpy()
    n, flagged = int(flags.size), int(flags.sum())
    expected = options.expected_flag_rate
    rate = flagged / max(n, 1)
    pvalue = float(stats.binomtest(flagged, n, expected, alternative="greater").pvalue) if n else 1.0
    section = {
        "rows": n, "flagged": flagged, "flag_rate": rate, "expected_flag_rate": expected,
        "ratio": rate / expected, "binomial_pvalue": pvalue,
        "median_percentile": float(scored.get_column("percentile").median() or 0.0),
        "mean_anomaly_score": float(scored.get_column("anomaly_score").mean() or 0.0),
    }
    reasons = []
    if section["ratio"] > options.max_flag_ratio and pvalue < options.flag_alpha:
        reasons.append(f"score: {rate:.2%} flagged, {section['ratio']:.1f}x the expected {expected:.2%} "
                       f"(binomial p {pvalue:.1e} < {options.flag_alpha})")
    return section | {"drifted": bool(reasons), "reasons": reasons}
