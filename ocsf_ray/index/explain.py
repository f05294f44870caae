"""Explanations: why an event scored high, in its own field names and values.

For each explained event: its nearest normal neighbours (reference events, by
metadata_uid, with distances) and the features that set it apart from them. A feature's
contribution is measured, not assumed: the event is re-embedded with that feature set
to its neighbours' typical value (their most common code, or median value), and the
contribution is how much closer that brings it to those same neighbours. Features are
grouped as the user knows them (a numeric and its missing indicator, the two
coordinates of the hour) and described with decoded values: vocabulary entries, numbers
on their original scale, raw values from the event itself when given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from ocsf_ray.features.normalise import normalised
from ocsf_ray.features.spec import FIRST_CODE, MISSING_CODE, UNSEEN_CODE, FeatureSpec
from ocsf_ray.features.transform import entity_keys, series_keys
from ocsf_ray.index.scorer import FamilyScorer, raw_terms

WINDOW_TEXT = {
    "events_1m": "events of this {entity} in the same minute",
    "error_share_1m": "error share of this {entity}'s events in the same minute",
    "gap_s": "seconds since this {entity}'s previous event",
}
ENTITY = {"service": "service", "host": "host", "actor": "user"}
NORMALISED = {"message": "template", "url": "path pattern", "ip": "/24 subnet", "user_agent": "client product"}


@dataclass(frozen=True)
class FeatureGroup:
    label: str
    kind: str  # categorical, numeric, time, window
    columns: tuple[str, ...]
    source: str | None = None  # canonical column, for raw values


def feature_groups(spec: FeatureSpec) -> list[FeatureGroup]:
    groups = [FeatureGroup(f"{f.column} ({NORMALISED[f.normaliser]})" if f.normaliser in NORMALISED else f.column,
                           "categorical", (f"cat__{f.column}",), f.column) for f in spec.categorical]
    groups += [FeatureGroup(f.column, "numeric", (f"num__{f.column}",) + ((f"num__{f.column}__missing",) if f.indicator else ()),
                            f.column) for f in spec.numeric]
    groups += [FeatureGroup("hour of day (UTC)", "time", ("time__hour_sin", "time__hour_cos"))] if spec.hour_of_day else []
    groups += [FeatureGroup("day of week", "time", ("time__dow_sin", "time__dow_cos"))] if spec.day_of_week else []
    for entity in entity_keys(spec):
        groups += [FeatureGroup(text.format(entity=ENTITY[entity]), "window", (f"win__{entity}_{name}",))
                   for name, text in WINDOW_TEXT.items()]
    groups += [FeatureGroup(f"{f.column} against its series' median (in its IQRs)", "window",
                            (f"win__series_{f.column}_dev",)) for f in spec.numeric if series_keys(spec)]
    groups += [FeatureGroup(f"{f.column} against series medians, mean over this service's minute", "window",
                            (f"win__service_{f.column}_dev_1m",)) for f in spec.numeric if series_keys(spec)]
    return groups


def _typical(neighbours: pl.DataFrame, group: FeatureGroup) -> list:
    if group.kind == "categorical":
        return [neighbours.get_column(group.columns[0]).mode().sort()[0]]
    return [float(neighbours.get_column(c).median()) for c in group.columns]


def _decode_code(spec: FeatureSpec, column: str, code: int) -> str:
    feature = next(f for f in spec.categorical if f.column == column)
    if code == MISSING_CODE:
        return "(missing)"
    if code == UNSEEN_CODE:
        return "(a value too rare to learn)"
    return feature.vocabulary[code - FIRST_CODE]


def _decode_numeric(spec: FeatureSpec, column: str, scaled: float) -> float:
    feature = next(f for f in spec.numeric if f.column == column)
    value = scaled * feature.scale + feature.median
    return math.expm1(value) if feature.log1p else value


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _hour(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%H:%M")


def describe(spec: FeatureSpec, group: FeatureGroup, event: dict, neighbours: pl.DataFrame, raw: dict | None) -> tuple[str, str, str]:
    """(event value, neighbours summary, sentence) for one feature group."""
    n = neighbours.height
    if group.kind == "categorical":
        column = group.columns[0]
        code = event[column]
        value = _decode_code(spec, group.source, code)
        if code == UNSEEN_CODE and raw and raw.get(f"__norm__{group.source}") is not None:
            value = raw[f"__norm__{group.source}"]
        same = int((neighbours.get_column(column) == code).sum())
        typical = _decode_code(spec, group.source, int(neighbours.get_column(column).mode().sort()[0]))
        text = f'{group.label}: "{value}" seen {same} of {n} times among neighbours'
        text += f' (most common: "{typical}")' if same < n else ""
        return value, f'{same}/{n} same; most common "{typical}"', text
    if group.kind == "numeric":
        missing = len(group.columns) > 1 and event[group.columns[1]] == 1.0
        value = None if missing else (raw or {}).get(group.source)
        value = value if value is not None or missing else _decode_numeric(spec, group.source, event[group.columns[0]])
        median = _decode_numeric(spec, group.source, float(neighbours.get_column(group.columns[0]).median()))
        shown = "missing" if missing else _fmt(float(value))
        return shown, f"median {_fmt(median)}", f"{group.label}: {shown} vs neighbours' median {_fmt(median)}"
    if group.kind == "time":
        if group.label.startswith("hour"):
            hours = pl.from_epoch(neighbours.get_column("time"), time_unit="ms").dt.strftime("%H:%M")
            value, typical = _hour(event["time"]), hours.min() + "-" + hours.max()
        else:
            days = pl.from_epoch(neighbours.get_column("time"), time_unit="ms").dt.strftime("%a")
            value = datetime.fromtimestamp(event["time"] / 1000, timezone.utc).strftime("%a")
            typical = ", ".join(sorted(set(days.to_list())))
        return value, typical, f"{group.label}: {value} vs neighbours' {typical}"
    column = group.columns[0]
    decode = (lambda v: v) if "error_share" in column or "_dev" in column else math.expm1
    value, median = decode(event[column]), decode(float(neighbours.get_column(column).median()))
    return _fmt(value), f"median {_fmt(median)}", f"{group.label}: {_fmt(value)} vs neighbours' median {_fmt(median)}"


def raw_values(events: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """The canonical fields explanations show, with categoricals normalised as the spec does."""
    exprs = [pl.col("metadata_uid")]
    for feature in spec.categorical:
        if feature.column in events.columns:
            exprs.append(normalised(feature.column, feature.normaliser).alias(f"__norm__{feature.column}"))
    exprs += [pl.col(f.column).cast(pl.Float64, strict=False) for f in spec.numeric if f.column in events.columns]
    return events.select(exprs)


def explain(scorer: FamilyScorer, features: pl.DataFrame, raw: pl.DataFrame | None = None, top: int = 5) -> list[dict]:
    """Explanation dicts for the given feature rows (a handful: each costs one small
    re-embedding per feature group). `raw`: canonical events (`raw_values`) by metadata_uid."""
    spec = scorer.model.spec
    found = scorer.neighbours(features)
    scored = scorer.score(features, found=found)
    surprises = scorer.index.calibration.surprises(raw_terms(scorer.index, features, found.embeddings, found.distances,
                                                                  scorer.model.has_encoder))
    rarity = scorer.index.field_rarity(features)
    carried = scorer.index.rarity.contributions(rarity)
    groups = feature_groups(spec)
    raw_by_uid = {r["metadata_uid"]: r for r in raw.iter_rows(named=True)} if raw is not None else {}
    explanations = []
    for i, event in enumerate(features.iter_rows(named=True)):
        ids = found.ids[i][found.ids[i] >= 0]
        neighbours = scorer.index.reference[ids.tolist()]
        targets = scorer.model.embed_features(neighbours)
        row = features.slice(i, 1)
        variants = pl.concat([
            row.with_columns(pl.lit(v, dtype=row.schema[c]).alias(c) for c, v in zip(g.columns, _typical(neighbours, g)))
            for g in groups
        ])
        moved = scorer.model.embed_features(variants)
        base = np.linalg.norm(found.embeddings[i] - targets, axis=1).mean()
        closer = base - np.linalg.norm(moved[:, None, :] - targets[None, :, :], axis=2).mean(axis=1)
        described = []
        for g in np.argsort(-closer)[:top]:
            value, typical, text = describe(spec, groups[g], event, neighbours, raw_by_uid.get(event["metadata_uid"]))
            described.append({"feature": groups[g].label, "kind": groups[g].kind, "value": str(value),
                              "neighbours": typical, "contribution": float(closer[g]), "text": text})
        explanations.append({
            "metadata_uid": event["metadata_uid"], "family": scorer.family, "service": event["service"],
            "time": event["time"], "knn_distance": float(scored["knn_distance"][i]),
            "feature_distance": float(scored["feature_distance"][i]),
            "anomaly_score": float(scored["anomaly_score"][i]), "percentile": float(scored["percentile"][i]),
            "neighbours": [{"metadata_uid": u, "distance": float(d)} for u, d in
                           zip(neighbours.get_column("metadata_uid").to_list(), found.distances[i][: len(ids)])],
            "features": described,
        } | score_terms({t: float(v[i]) for t, v in surprises.items()}, scorer.index.rarity.fields(), rarity[i],
                        carried[i], float(scored["anomaly_score"][i])))
    return explanations


def score_terms(surprises: dict[str, float], fields: list[str], nats: np.ndarray, carried: np.ndarray,
                score: float, top: int = 5) -> dict:
    """Which term made the event most anomalous and how its score splits over the terms.

    The fused score is the sum of the term surprises, calibrated (`ScoreCalibration`), so
    each term gets the share of the score its surprise has of the sum; the field rarity's
    share is split further among fields in proportion to their part of that term (`carried`,
    `FieldRarity.contributions`; the top few, each with its reference tail probability p
    = exp(-nats), and the rest together). The shares add up to the score.
    """
    total = sum(surprises.values())
    share = {t: score * v / total if total > 0 else score / len(surprises) for t, v in surprises.items()}
    parts = [{"feature": f"k-NN distance ({t})", "share": share[t]} for t in surprises if t != "rarity"]
    weights = np.maximum(carried, 0.0)
    fraction = weights / weights.sum() if weights.sum() > 0 else np.zeros(len(weights))
    parts += [{"feature": fields[j], "share": float(share["rarity"] * fraction[j]),
               "tail_probability": float(np.exp(-nats[j]))} for j in np.argsort(-weights)[:top] if weights[j] > 0]
    parts.append({"feature": "(other fields)", "share": score - sum(part["share"] for part in parts)})
    return {"terms": surprises, "deciding_term": max(surprises, key=surprises.get), "score_shares": parts}
