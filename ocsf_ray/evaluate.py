"""Evaluation of a scored run against synthetic ground truth, beside simple baselines.

A number such as "AUROC 0.93" means little alone, so the same events are also ranked by
baselines that need no learned embedding, each on the same feature rows the run scored:

* hbos, ecod, isolation_forest: the usual unsupervised tabular detectors (PyOD, sklearn);
* knn_raw: mean distance to the k nearest raw feature vectors, with the same time
  exclusion as ocsf-ray's index (no neighbour from the time shards around the event's own,
  `IndexOptions.exclusion_minutes`, `ocsf_ray.index.reference.TimeShards`), so a burst
  cannot be its own neighbourhood here either;
* template_rarity: -ln of the share of the family's events with the event's message
  template (its `message` categorical code), where a family has one;
* severity: the event's `severity_id` alone, where a family has one;
* random: a seeded random ranking (the floor).

Each is computed per family and its raw scores are calibrated within the family exactly as
ours are (`ocsf_ray.index.calibration`), so every method gets a fair global ranking across
families.
"""

from __future__ import annotations

import json
import posixpath
import time
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from ocsf_ray.features.spec import FIRST_CODE, FeatureSpec
from ocsf_ray.index.calibration import Calibration
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.io.sources import filesystem_for, write_bytes
from ocsf_ray.io.storage import parquet_schema, read_parquet
from ocsf_ray.train.data import discover_features

UNSCORED = -1.0  # below every calibrated score (those are >= 0): unscored events rank last
_ECOD_CHUNK = 65_536  # pyod re-ranks each chunk together with the fit set: few, large chunks


def evaluate_run(scores_dir: str, labels_path: str, features_root: str | None = None,
                 incidents_path: str | None = None, ks: tuple[int, ...] = (100, 1000),
                 fit_cap: int = 50_000, neighbours: int = 20, onehot_cap: int = 64, seed: int = 0,
                 exclusion_minutes: float | None = None) -> dict:
    """Metrics of the run's `anomaly_score` and of the baselines on the same events.

    `features_root` defaults to the parent of `scores_dir` (score writes beside features);
    `incidents_path` to the `incidents.json` beside the labels. Baselines are thresholded to
    flag the same share of events as the method, so recall at threshold compares like for like.
    `exclusion_minutes` (default: `IndexOptions`') is the time exclusion of the k-NN baseline.
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
        settings = BaselineSettings(fit_cap, neighbours, onehot_cap, seed,
                                    IndexOptions().exclusion_minutes if exclusion_minutes is None else exclusion_minutes)
        rankings |= baseline_scores(events, families, settings, notes)
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


def ranking_metrics(score: np.ndarray, label: np.ndarray, ks: tuple[int, ...], tiebreak: np.ndarray) -> dict:
    """How well `score` ranks the positives first, whatever the threshold.

    auroc: chance that a random positive outranks a random negative (0.5 = random order).
    auprc: average precision, the mean of the precision at each positive's rank; its random
        floor is the positive share, so it separates methods that AUROC calls alike.
    precision_at_k: share of positives among the k top-ranked events.
    precision_at_positives: the same with k = the number of positives (R-precision, equal
        to the recall at that k).
    """
    positives = int(label.sum())
    return {
        "auroc": _auc(roc_auc_score, label, score),
        "auprc": _auc(average_precision_score, label, score),
        "precision_at_k": {str(k): float(label[top(score, k, tiebreak)].mean()) if len(label) else None for k in ks},
        "precision_at_positives": float(label[top(score, positives, tiebreak)].mean()) if positives else None,
    }


def metrics(score: np.ndarray, label: np.ndarray, flagged: np.ndarray, types: np.ndarray,
            ks: tuple[int, ...], tiebreak: np.ndarray) -> dict:
    """Ranking quality (`ranking_metrics`) and the decision at the threshold, overall and per
    incident type (each type's events against the normal events, other types left out)."""
    positives = int(label.sum())
    per_type = {}
    for kind in sorted({t for t in types if t is not None}):
        of_type = label & (types == kind)
        versus_normal = of_type | ~label
        per_type[str(kind)] = {"recall": float(flagged[of_type].mean()), "events": int(of_type.sum()),
                               **ranking_metrics(score[versus_normal], of_type[versus_normal], ks, tiebreak[versus_normal])}
    return {
        **ranking_metrics(score, label, ks, tiebreak),
        "recall_at_threshold": float(flagged[label].mean()) if positives else None,
        "flagged_rate": float(flagged.mean()) if len(flagged) else None,
        "per_incident_type": per_type,
    }


@dataclass(frozen=True)
class BaselineSettings:
    """How the feature baselines are fitted: on a uniform sample of at most `fit_cap` rows
    per family (IsolationForest and ECOD stay fast); k-NN over `neighbours` neighbours outside
    the index's time exclusion of `exclusion_minutes`; categoricals one-hot, at most
    `onehot_cap` slots wide."""

    fit_cap: int = 50_000
    neighbours: int = 20
    onehot_cap: int = 64
    seed: int = 0
    exclusion_minutes: float = IndexOptions().exclusion_minutes


@dataclass
class FamilyRows:
    """One family's feature rows as the baselines see them."""

    uids: pl.Series
    x: np.ndarray  # dense float32 matrix, see `feature_matrix`
    times: np.ndarray  # event times, epoch ms
    template: np.ndarray | None  # message-template codes; None where the family has no message
    severity: np.ndarray | None  # severity_id values; None where the family has none


def family_rows(family, onehot_cap: int) -> FamilyRows:
    """A family's feature shards read once, as the matrix and the single fields the
    baselines rank by.

    Inputs are the `<kind>__<field>` columns the shards hold (`cat__` ones are codes), not
    the spec's list, so features written by an older featurize still evaluate."""
    schema = parquet_schema(family.files[0])
    inputs = [c for c, dtype in schema.items() if "__" in c and dtype.is_numeric()]
    frame = read_parquet(list(family.files), ["metadata_uid", "time", *inputs])
    template = message_feature(family.spec, inputs)
    return FamilyRows(frame["metadata_uid"], feature_matrix(frame, inputs, onehot_cap), frame["time"].to_numpy(),
                      None if template is None else frame[template].fill_null(0).to_numpy(),
                      severity_values(frame, family.spec))


def feature_matrix(frame: pl.DataFrame, inputs: list[str], onehot_cap: int) -> np.ndarray:
    """Float columns as they are, categorical codes one-hot, each at most `onehot_cap`
    wide (higher codes share the last slot)."""
    categorical = [c for c in inputs if c.startswith("cat__")]
    floats = [c for c in inputs if not c.startswith("cat__")]
    parts = [frame.select(floats).to_numpy().astype(np.float32)] if floats else [np.zeros((frame.height, 0), np.float32)]
    for column in categorical:
        codes = np.minimum(frame[column].fill_null(0).to_numpy(), onehot_cap - 1)
        hot = np.zeros((len(codes), int(codes.max(initial=0)) + 1), dtype=np.float32)
        hot[np.arange(len(codes)), codes] = 1.0
        parts.append(hot)
    return np.ascontiguousarray(np.hstack(parts))


def message_feature(spec: FeatureSpec, inputs: list[str]) -> str | None:
    """The code column of the family's message template: the `message` categorical (whose
    normaliser reduces messages to templates), else one named like a message or template."""
    named = [f.column for f in spec.categorical if f.column == "message"]
    named += [f.column for f in spec.categorical if "message" in f.column or "template" in f.column]
    return next((f"cat__{c}" for c in named if f"cat__{c}" in inputs), None)


def severity_values(frame: pl.DataFrame, spec: FeatureSpec) -> np.ndarray | None:
    """Each row's `severity_id` as a number, read back from its categorical code through the
    spec's vocabulary (missing and unseen values count as 0, OCSF's "Unknown"), or the scaled
    numeric where severity was numeric; None where the family has no severity_id."""
    feature = next((f for f in spec.categorical if f.column == "severity_id"), None)
    if feature is not None and "cat__severity_id" in frame.columns:
        levels = np.zeros(FIRST_CODE + len(feature.vocabulary))
        for i, value in enumerate(feature.vocabulary):
            try:
                levels[FIRST_CODE + i] = float(value)
            except ValueError:
                pass
        codes = frame["cat__severity_id"].fill_null(0).to_numpy()
        return levels[np.minimum(codes, len(levels) - 1)]
    if "num__severity_id" in frame.columns:
        return frame["num__severity_id"].fill_null(0).to_numpy().astype(np.float64)
    return None


def _varying(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """The columns that vary over the fit set, as float64 (constant ones carry nothing and
    make ECOD's skew NaN)."""
    return x[:, x[fit].std(axis=0) > 0].astype(np.float64)


def isolation_forest(x: np.ndarray, fit: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(n_estimators=100, random_state=seed).fit(x[fit]).score_samples(x)


def hbos(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Histogram-based outlier score (pyod's defaults: 10 bins a column): the sum over
    columns of -log of the density of the event's bin, columns taken as independent."""
    from pyod.models.hbos import HBOS

    x = _varying(x, fit)
    if x.shape[1] == 0:
        return np.zeros(len(x))
    return np.nan_to_num(HBOS().fit(x[fit]).decision_function(x))


def ecod(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """ECOD; events beyond the fit set are scored in chunks, as pyod re-ranks them with the
    fit set."""
    from pyod.models.ecod import ECOD

    x = _varying(x, fit)
    if x.shape[1] == 0:
        return np.zeros(len(x))
    with warnings.catch_warnings():  # near-constant columns make scipy's skew warn
        warnings.simplefilter("ignore", RuntimeWarning)
        model = ECOD().fit(x[fit])
        if len(fit) == len(x):  # the fit set is the whole family, in order
            return np.nan_to_num(model.decision_scores_)
        chunks = [model.decision_function(x[i:i + _ECOD_CHUNK]) for i in range(0, len(x), _ECOD_CHUNK)]
    return np.nan_to_num(np.concatenate(chunks))


def knn_raw(x: np.ndarray, fit: np.ndarray, neighbours: int, times: np.ndarray | None = None,
            exclusion_minutes: float = 0.0) -> np.ndarray:
    """Mean L2 distance to the `neighbours` nearest fit-set events, never the event itself
    and, given `times`, never one from the time shards around the event's own, exactly as
    ocsf-ray's index excludes them (`TimeShards.plan` over the fit set's times,
    `search_excluding`): an incident's events cannot be each other's neighbours here either."""
    from ocsf_ray.index.reference import TimeShards, build_shards
    from ocsf_ray.index.search import mean_distance, search_excluding

    k = min(neighbours, len(fit) - 1)
    if k < 1:
        return np.zeros(len(x))
    order = fit if times is None else fit[np.argsort(times[fit], kind="stable")]  # shards need time order
    shards = TimeShards(0, 0, (0, len(order))) if times is None else TimeShards.plan(times[order], exclusion_minutes)
    reference = np.ascontiguousarray(x[order])
    indexes, _ = build_shards(reference, shards, IndexOptions(k=k))
    query_shard = np.zeros(len(x), np.int64) if times is None else shards.of(times)
    distances, _ = search_excluding(indexes, np.asarray(shards.bounds), np.ascontiguousarray(x), query_shard,
                                    np.arange(len(x)), order, k, shards.radius, reference)
    with warnings.catch_warnings():  # an event with no admissible neighbour: all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        score = mean_distance(distances).astype(np.float64)
    return np.where(np.isnan(score), np.nanmax(score, initial=0.0), score)


def code_rarity(codes: np.ndarray) -> np.ndarray:
    """-ln of the share of rows carrying each row's code (a template seen once in 10,000
    events scores 9.2, one carried by every event 0)."""
    counts = np.bincount(codes)
    return -np.log(counts[codes] / len(codes))


BASELINES = {  # name -> raw scores of a family's rows (None: the family lacks the field)
    "hbos": lambda rows, fit, s: hbos(rows.x, fit),
    "ecod": lambda rows, fit, s: ecod(rows.x, fit),
    "isolation_forest": lambda rows, fit, s: isolation_forest(rows.x, fit, s.seed),
    "knn_raw": lambda rows, fit, s: knn_raw(rows.x, fit, s.neighbours, rows.times, s.exclusion_minutes),
    "template_rarity": lambda rows, fit, s: None if rows.template is None else code_rarity(rows.template),
    "severity": lambda rows, fit, s: rows.severity,
}
FEATURE_BASELINES = tuple(BASELINES)


def baseline_scores(events: pl.DataFrame, families: dict, settings: BaselineSettings,
                    notes: list[str]) -> dict[str, np.ndarray]:
    """Calibrated scores of each feature baseline for every event, fitted family by family.
    A single-field baseline that no family can compute is left out; events of families
    without its field rank last."""
    rng = np.random.default_rng(settings.seed)
    scored = {name: np.full(len(events), UNSCORED) for name in BASELINES}
    seconds, applied = dict.fromkeys(BASELINES, 0.0), dict.fromkeys(BASELINES, 0)
    position = events.select("metadata_uid").with_row_index("event")
    covered = 0
    for family in families.values():
        family_data = family_rows(family, settings.onehot_cap)
        pairs = family_data.uids.to_frame().with_row_index("row").join(position, on="metadata_uid")
        if pairs.is_empty():
            continue
        rows, where = pairs["row"].to_numpy(), pairs["event"].to_numpy()
        covered += len(rows)
        size = len(family_data.x)
        fit = np.arange(size) if size <= settings.fit_cap else np.sort(rng.choice(size, settings.fit_cap, replace=False))
        for name, method in BASELINES.items():
            started = time.perf_counter()
            raw = method(family_data, fit, settings)
            if raw is not None:
                scored[name][where] = Calibration.fit(raw[fit]).surprise(raw[rows])
                applied[name] += len(rows)
            seconds[name] += time.perf_counter() - started
    notes.append("baseline seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    notes.append(f"knn_raw excludes neighbours within the time shards of {settings.exclusion_minutes:g} minutes"
                 " around each event, as the index does")
    for name, count in applied.items():
        if count == 0:
            notes.append(f"{name}: no family has its field; left out")
        elif count < covered:
            notes.append(f"{name}: {covered - count} events of families without its field rank last")
    if covered < len(events):
        notes.append(f"{len(events) - covered} events have no feature row; baselines rank them last")
    return {name: score for name, score in scored.items() if applied[name]}


def write_evaluation(result: dict, path: str) -> None:
    """The result as indented JSON (local path or URI), parent directories created."""
    write_bytes(json.dumps(result, indent=2).encode(), path)
