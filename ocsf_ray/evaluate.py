"""Evaluation of a scored run against synthetic ground truth, beside simple baselines.

A number such as "AUROC 0.93" means little alone, so the same events are also ranked by
baselines that need no learned embedding: IsolationForest, ECOD and k-NN distance on the
raw scaled features, and a seeded random ranking (the floor). Each feature baseline is
fitted per family and its raw scores are calibrated within the family exactly as ours are
(`ocsf_ray.index.calibration`), so every method gets a fair global ranking across families.
"""

from __future__ import annotations

import json
import posixpath
import time
import warnings

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from ocsf_ray.index.calibration import Calibration
from ocsf_ray.io.sources import filesystem_for, write_bytes
from ocsf_ray.io.storage import parquet_schema, read_parquet
from ocsf_ray.train.data import discover_features

FEATURE_BASELINES = ("isolation_forest", "ecod", "knn_raw")
UNSCORED = -1.0  # below every calibrated score (those are >= 0): unscored events rank last
_ECOD_CHUNK = 65_536  # pyod re-ranks each chunk together with the fit set: few, large chunks


def evaluate_run(scores_dir: str, labels_path: str, features_root: str | None = None,
                 incidents_path: str | None = None, ks: tuple[int, ...] = (100, 1000),
                 fit_cap: int = 50_000, neighbours: int = 20, onehot_cap: int = 64, seed: int = 0) -> dict:
    """Metrics of the run's `anomaly_score` and of the baselines on the same events.

    `features_root` defaults to the parent of `scores_dir` (score writes beside features);
    `incidents_path` to the `incidents.json` beside the labels. Baselines are thresholded to
    flag the same share of events as the method, so recall at threshold compares like for like.
    """
    notes: list[str] = []
    events = load_events(scores_dir, labels_path, incidents_path or posixpath.join(posixpath.dirname(labels_path), "incidents.json"), notes)
    label = events["label"].to_numpy()
    types = events["incident_type"].to_numpy()
    tiebreak = np.random.default_rng(seed).random(len(events))  # ties broken at random, not by file order
    score = events["anomaly_score"].fill_null(UNSCORED).to_numpy()
    flagged = events["is_anomaly"].fill_null(False).to_numpy()
    if events["anomaly_score"].null_count():
        notes.append(f"{events['anomaly_score'].null_count()} events have no model score; they rank last")
    result = {"method": metrics(score, label, flagged, types, ks, tiebreak), "baselines": {},
              "events": len(events), "positives": int(label.sum()), "notes": notes}

    share = int(flagged.sum())
    notes.append(f"baselines flag their top {share} events, the same share as the method ({flagged.mean():.4%})")
    rankings = {"random": np.random.default_rng(seed + 1).random(len(events))}
    try:
        families = discover_features(features_root or posixpath.dirname(scores_dir.rstrip("/")))
    except OSError as error:
        notes.append(f"features not found ({error}); feature baselines skipped")
    else:
        rankings |= baseline_scores(events, families, fit_cap, neighbours, onehot_cap, seed, notes)
    for name, ranking in rankings.items():
        chosen = top(ranking, share, tiebreak)
        result["baselines"][name] = metrics(ranking, label, chosen, types, ks, tiebreak) | {"threshold_rule": "same flagged share as method"}
    return result


def load_events(scores_dir: str, labels_path: str, incidents_path: str, notes: list[str]) -> pl.DataFrame:
    """Scored events joined to their labels; events missing from the labels count as normal."""
    scores = read_parquet(scores_dir, ["metadata_uid", "family", "anomaly_score", "is_anomaly"])
    labels = read_parquet(labels_path, ["metadata_uid", "is_anomaly", "incident_id"]).rename({"is_anomaly": "label"})
    try:
        fs, inner, _ = filesystem_for(incidents_path)
        with fs.open_input_stream(inner) as stream:
            kinds = {i["id"]: i["type"] for i in json.loads(stream.read())}
    except OSError:
        kinds = None
        notes.append("incidents.json not found: per_incident_type is keyed by incident id")
    events = scores.join(labels.unique("metadata_uid"), on="metadata_uid", how="left").with_columns(pl.col("label").fill_null(False))
    incident = pl.when(pl.col("label")).then(pl.col("incident_id"))
    kind = incident.replace_strict(kinds, default=incident) if kinds else incident
    return events.with_columns(kind.fill_null(pl.when(pl.col("label")).then(pl.lit("unknown"))).alias("incident_type"))


def top(score: np.ndarray, count: int, tiebreak: np.ndarray) -> np.ndarray:
    """Mask of the `count` highest-scored events (ties broken by `tiebreak`)."""
    chosen = np.zeros(len(score), dtype=bool)
    chosen[np.lexsort((tiebreak, -score))[:count]] = True
    return chosen


def _auc(metric, label: np.ndarray, score: np.ndarray) -> float | None:
    """A ranking metric, or None where it is undefined (a single class)."""
    return float(metric(label, score)) if 0 < label.sum() < len(label) else None


def metrics(score: np.ndarray, label: np.ndarray, flagged: np.ndarray, types: np.ndarray,
            ks: tuple[int, ...], tiebreak: np.ndarray) -> dict:
    """Ranking quality (AUROC, AUPRC, precision@k) and the decision at the threshold, overall
    and per incident type (each type's events against the normal events)."""
    positives = int(label.sum())
    per_type = {}
    for kind in sorted({t for t in types if t is not None}):
        of_type = label & (types == kind)
        versus_normal = of_type | ~label
        per_type[str(kind)] = {"recall": float(flagged[of_type].mean()),
                               "auroc": _auc(roc_auc_score, of_type[versus_normal], score[versus_normal]),
                               "events": int(of_type.sum())}
    return {
        "auroc": _auc(roc_auc_score, label, score),
        "auprc": _auc(average_precision_score, label, score),
        "precision_at_k": {str(k): float(label[top(score, k, tiebreak)].mean()) if len(label) else None for k in ks},
        "precision_at_positives": float(label[top(score, positives, tiebreak)].mean()) if positives else None,
        "recall_at_threshold": float(flagged[label].mean()) if positives else None,
        "flagged_rate": float(flagged.mean()) if len(flagged) else None,
        "per_incident_type": per_type,
    }


def family_matrix(family, onehot_cap: int) -> tuple[pl.Series, np.ndarray]:
    """(metadata_uid, dense float32 matrix): float columns as they are, categorical codes
    one-hot, each column at most `onehot_cap` wide (higher codes share the last slot).

    Inputs are the `<kind>__<field>` columns the shards hold (`cat__` ones are codes), not
    the spec's list, so features written by an older featurize still evaluate."""
    schema = parquet_schema(family.files[0])
    inputs = [c for c, dtype in schema.items() if "__" in c and dtype.is_numeric()]
    categorical = [c for c in inputs if c.startswith("cat__")]
    floats = [c for c in inputs if not c.startswith("cat__")]
    frame = read_parquet(list(family.files), ["metadata_uid", *inputs])
    parts = [frame.select(floats).to_numpy().astype(np.float32)] if floats else []
    for column in categorical:
        codes = np.minimum(frame[column].fill_null(0).to_numpy(), onehot_cap - 1)
        hot = np.zeros((len(codes), int(codes.max()) + 1), dtype=np.float32)
        hot[np.arange(len(codes)), codes] = 1.0
        parts.append(hot)
    return frame["metadata_uid"], np.ascontiguousarray(np.hstack(parts))


def isolation_forest(x: np.ndarray, fit: np.ndarray, seed: int, neighbours: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(n_estimators=100, random_state=seed).fit(x[fit]).score_samples(x)


def ecod(x: np.ndarray, fit: np.ndarray, seed: int, neighbours: int) -> np.ndarray:
    """ECOD; constant columns are dropped (their skew is NaN, which poisons every score), and
    events beyond the fit set are scored in chunks, as pyod re-ranks them with the fit set."""
    from pyod.models.ecod import ECOD

    x = x[:, x[fit].std(axis=0) > 0].astype(np.float64)
    if x.shape[1] == 0:
        return np.zeros(len(x))
    with warnings.catch_warnings():  # near-constant columns make scipy's skew warn
        warnings.simplefilter("ignore", RuntimeWarning)
        model = ECOD().fit(x[fit])
        if len(fit) == len(x):  # the fit set is the whole family, in order
            return np.nan_to_num(model.decision_scores_)
        chunks = [model.decision_function(x[i:i + _ECOD_CHUNK]) for i in range(0, len(x), _ECOD_CHUNK)]
    return np.nan_to_num(np.concatenate(chunks))


def knn_raw(x: np.ndarray, fit: np.ndarray, seed: int, neighbours: int) -> np.ndarray:
    """Mean L2 distance to the nearest fit-set events, an event's own match excluded."""
    import faiss

    k = min(neighbours, len(fit) - 1)
    if k < 1:
        return np.zeros(len(x))
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x[fit])
    distance = np.sqrt(np.maximum(index.search(x, k + 1)[0], 0.0))
    in_fit = np.zeros(len(x), dtype=bool)
    in_fit[fit] = True
    return np.where(in_fit[:, None], distance[:, 1:], distance[:, :-1]).mean(axis=1)


def baseline_scores(events: pl.DataFrame, families: dict, fit_cap: int, neighbours: int,
                    onehot_cap: int, seed: int, notes: list[str]) -> dict[str, np.ndarray]:
    """Calibrated scores of each feature baseline for every event, fitted family by family
    on a uniform sample of at most `fit_cap` rows (IsolationForest and ECOD stay fast)."""
    rng = np.random.default_rng(seed)
    scored = {name: np.full(len(events), UNSCORED) for name in FEATURE_BASELINES}
    seconds = dict.fromkeys(FEATURE_BASELINES, 0.0)
    position = events.select("metadata_uid").with_row_index("event")
    covered = 0
    for family in families.values():
        uids, x = family_matrix(family, onehot_cap)
        pairs = uids.to_frame().with_row_index("row").join(position, on="metadata_uid")
        if pairs.is_empty():
            continue
        rows, where = pairs["row"].to_numpy(), pairs["event"].to_numpy()
        covered += len(rows)
        fit = np.arange(len(x)) if len(x) <= fit_cap else np.sort(rng.choice(len(x), fit_cap, replace=False))
        for name, method in zip(FEATURE_BASELINES, (isolation_forest, ecod, knn_raw)):
            started = time.perf_counter()
            raw = method(x, fit, seed, neighbours)
            scored[name][where] = Calibration.fit(raw[fit]).surprise(raw[rows])
            seconds[name] += time.perf_counter() - started
    notes.append("baseline seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    if covered < len(events):
        notes.append(f"{len(events) - covered} events have no feature row; baselines rank them last")
    return scored


def write_evaluation(result: dict, path: str) -> None:
    """The result as indented JSON (local path or URI), parent directories created."""
    write_bytes(json.dumps(result, indent=2).encode(), path)
