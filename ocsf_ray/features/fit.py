"""Fitting a FeatureSpec: per-block column statistics, merged, then decided.

`block_stats` runs on each Ray Data block (or on a whole frame in one process);
`merge_stats` combines them (both in `ocsf_ray.features.stats`); `decide_spec` turns the merged statistics into a
FeatureSpec. The same three functions serve the distributed and the single-process
path, which is what makes them agree. Nothing is decided from a sample: the candidate
columns come from the schema (in the Ray path the union of every staged file's columns),
and a text column whose name calls for no normaliser is recognised as JSON arrays or URL
paths from all its values (`resolve_content`), so the order of the files does not matter.

Identifiers are not features: their values are new with every request, trace or
session, so a model learns nothing from them and every later day looks like drift.
A distinct count near the row count is not enough to find them, because every event of
one occurrence repeats its id (a trace's ~4 spans, a session's dozens of requests): trace
ids were 27 % distinct and session ids 7 % in the synthetic archives. `decide_spec`
therefore also drops a text column whose rows mostly carry values that lived only a moment
of the fitted period and were carried by few events (`_short_lived_share`: per-value first
and last time, mergeable like the counts; an entity seen by hundreds of events in a burst,
such as a password spray's source IP, is no occurrence id), and one whose OCSF name says it identifies an occurrence (`session`, `trace`,
... `_uid`, see `FeatureOptions.occurrence_objects`): a day-long session id is as
recurrent as a user name inside the day it was fitted on, and only its name tells them apart.

Exactness of the statistics: see `ocsf_ray.features.stats`.

Messages (`resolve_templates`): a "message" column's values are Drain templates
(`ocsf_ray.features.templates`). Blocks count masked messages like any text (the masks of
`normalise.MESSAGE_MASKS`, so the statistics stay mergeable and small); the driver then
fits one Drain on a bounded sample of the merged counts, the `template_sample` (20,000)
most frequent distinct masked messages, fed once each, most frequent first (ties by text),
and maps every counted message to its template with the saved state, exactly as the
transform will, before any decision is taken. One miner on a merged sample rather than
per-block miners merged: Drain is online and order-dependent, and two Drain trees have no
defined union, so merging per-block templates would depend on how files were split and
ordered; merged counts do not, which keeps the distributed fit equal to `fit_spec` on the
same events. The sample is bounded (and a block reports at most 4 x max_vocab masked
messages), so the rarest message shapes of a huge archive may match no template: they
are kept out of the vocabulary and score as unseen, like any too-rare value.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ocsf_ray.features.normalise import MESSAGE_MASKS, name_normaliser
from ocsf_ray.features.spec import CategoricalFeature, FeatureOptions, FeatureSpec, NumericFeature
from ocsf_ray.features.stats import BY_CONTENT, TIME_SPAN, block_stats, merge_stats, weighted_quantiles
from ocsf_ray.features.templates import TemplateState, match_templates, mine_templates

NOT_FEATURES = ("metadata_uid", "time", "family", "source_kind", "class_uid")
_DAY_MS = 86_400_000
TAIL_SPREAD = 4.65  # the 1st-99th percentile spread of a normal distribution, in standard deviations


def candidate_columns(schema: dict, options: FeatureOptions) -> list[str]:
    """Columns of `schema` (name -> Polars dtype) that may become features: not
    identity/bookkeeping, not timestamps (`*_time` epoch numbers, `*_dt` datetime-profile
    strings, Datetime/Date columns: an instant is never seen again, so it is no category
    and no measure), not excluded by `options`."""
    return [
        c for c, dtype in schema.items()
        if c not in NOT_FEATURES and c not in options.exclude
        and not c.endswith(("_time", "_dt")) and not isinstance(dtype, (pl.Datetime, pl.Date))
    ]


def choose_normalisers(schema: dict, options: FeatureOptions) -> dict[str, str | None]:
    """Normaliser per candidate column of `schema` (name -> Polars dtype): "number" for
    numbers, None for booleans, text by its OCSF name (`name_normaliser`), else BY_CONTENT.

    BY_CONTENT columns are decided from every value in the statistics pass (`block_stats`
    notes their shape, `resolve_content` decides), so the choice depends on no sample and
    no file order: the distributed fit sees the same values as the single-process one.
    """
    chosen: dict[str, str | None] = {}
    for column in candidate_columns(schema, options):
        dtype = schema[column]
        if dtype == pl.String:
            chosen[column] = name_normaliser(column) or BY_CONTENT
        elif dtype == pl.Boolean:
            chosen[column] = None
        else:
            chosen[column] = "number"
    return chosen


def _numeric_feature(column: str, entry: dict) -> NumericFeature:
    q01, q25, q50, q75, q99 = weighted_quantiles(entry["samples"], [0.01, 0.25, 0.5, 0.75, 0.99])
    heavy = entry["min"] >= 0 and (q99 > 10 * q50 if q50 > 0 else q99 > 0)
    if heavy:
        q01, q25, q50, q75, q99 = np.log1p([q01, q25, q50, q75, q99]).tolist()
    # The IQR alone collapses on quantised or spiky data (span durations in whole ms: an IQR of
    # 1-2 ms in log space), and the clip then saturates every slow span at the same value;
    # the 1-99 % spread per normal sigma keeps such tails apart (seed sample: a slow endpoint's
    # spans, clipped like its normal slow spans before, AUPRC 0.436 → 0.672).
    scale = max(q75 - q25, (q99 - q01) / TAIL_SPREAD)
    if scale <= 0:
        scale = 1.0
    return NumericFeature(column, bool(heavy), float(q50), float(scale), entry["nonnull"] < entry["rows"])


def decide_spec(family: str, stats: dict, normalisers: dict, options: FeatureOptions) -> FeatureSpec:
    """Choose and describe each family column from its merged statistics (`merge_stats`)
    and the normalisers they were computed with (`choose_normalisers`)."""
    categorical, numeric, dropped = [], [], {}
    span = stats.get(TIME_SPAN, {"min": 0, "max": 0})
    stats, normalisers = resolve_content({c: e for c, e in stats.items() if c != TIME_SPAN}, normalisers)
    stats, templates = resolve_templates(stats, normalisers, options)
    days = (span["max"] - span["min"]) / _DAY_MS
    rows = max((e["rows"] for e in stats.values()), default=0)
    for column in sorted(stats):
        entry, forced = stats[column], column in options.include
        if entry.get("arrays") and entry["nonnull"] and not forced:
            dropped[column] = "JSON array text (its count and first element are features)"
            continue
        if entry["nonnull"] == 0:
            dropped[column] = "always missing"
            continue
        if entry["numeric"]:
            if entry["min"] == entry["max"] and not forced:
                dropped[column] = "constant"
            elif entry["integral"] and entry["counts"] is not None and len(entry["counts"]) <= options.max_int_levels:
                categorical.append(_categorical(column, "integer", entry, options))
            else:
                numeric.append(_numeric_feature(column, entry))
            continue
        counts = entry["counts"] or {}
        if len(counts) <= 1 and not forced:
            dropped[column] = "constant"
        elif _distinct(entry) > options.id_like_ratio * entry["nonnull"] and entry["nonnull"] >= 20 and not forced:
            dropped[column] = f"id-like: {_distinct(entry)} distinct values in {entry['nonnull']} rows"
        elif (occurrence := _occurrence_named(column, options)) and not forced:
            dropped[column] = f"id-like: identifies one {occurrence} (new values with every {occurrence})"
        elif (short := _short_lived_share(entry, span, options)) > options.max_short_lived_share \
                and entry["nonnull"] >= 20 and not forced:
            dropped[column] = (f"id-like: {short:.0%} of rows carry a value seen only within "
                               f"{options.short_lived_fraction:.0%} of the fitted time span")
        else:
            feature = _categorical(column, normalisers.get(column), entry, options, templates.get(column))
            covered = sum(counts.get(v, 0) for v in feature.vocabulary) / entry["nonnull"]
            if not feature.vocabulary and not forced:
                dropped[column] = f"every value seen fewer than {options.min_count} times"
            elif covered < options.min_coverage and not forced:
                dropped[column] = f"high-cardinality: its {len(feature.vocabulary)} kept values cover {covered:.0%} of rows"
            else:
                categorical.append(feature)
    categorical = [c for c in categorical if c.vocabulary or c.column in options.include]
    present = [c for c, e in stats.items() if e["nonnull"]]
    return FeatureSpec(
        family=family,
        rows=rows,
        categorical=tuple(categorical),
        numeric=tuple(numeric),
        host_column=next((c for c in options.host_fields if c in present), None),
        actor_column=next((c for c in options.actor_fields if c in present), None),
        clip=options.clip,
        dropped=dropped,
        series_column=next((c for c in options.series_fields if c in {f.column for f in categorical}), None)
        if numeric else None,
        hour_of_day=days >= options.hour_of_day_min_days,
        day_of_week=days >= options.day_of_week_min_days,
    )


def resolve_content(stats: dict, normalisers: dict) -> tuple[dict, dict]:
    """Decide each BY_CONTENT text column from all its values: "json_array" when every value
    starts with "[", "url" when every value starts with "/" (its URL-normalised statistics
    then replace the plain ones), else None. Returns new (stats, normalisers) dicts."""
    stats, normalisers = dict(stats), dict(normalisers)
    for column, normaliser in normalisers.items():
        if normaliser != BY_CONTENT:
            continue
        entry = stats.get(column)
        if entry and entry["nonnull"] and entry["arrays"]:
            normalisers[column] = "json_array"  # the identity, like plain text
        elif entry and entry["nonnull"] and entry["paths"]:
            normalisers[column], stats[column] = "url", {**entry, **entry["as_url"]}
        else:
            normalisers[column] = None
    return stats, normalisers


def resolve_templates(stats: dict, normalisers: dict, options: FeatureOptions) -> tuple[dict, dict[str, TemplateState]]:
    """Mine the Drain templates of each "message" column from its merged masked-message
    counts (the `options.template_sample` most frequent, see the module docstring) and
    restate its statistics per template: counts summed, lifetimes widened, distinct
    recounted (when a block was truncated: the templates plus the masked messages no block
    reported, still an upper bound). A message no template matches keeps its masked text.
    Returns new stats and {column: TemplateState}."""
    stats, states = dict(stats), {}
    for column, normaliser in normalisers.items():
        entry = stats.get(column)
        if normaliser != "message" or not entry or entry["numeric"] or not entry["counts"]:
            continue
        sample = sorted(entry["counts"].items(), key=lambda vc: (-vc[1], vc[0]))[: options.template_sample]
        state = mine_templates((v for v, _ in sample), MESSAGE_MASKS, options.template_depth,
                               options.template_sim_th, options.template_max_children)
        stats[column], states[column] = {**entry, **_per_template(entry, state)}, state
    return stats, states


def _per_template(entry: dict, state: TemplateState) -> dict:
    """Counts, lifetimes and distinct count of a message column's values mapped to templates."""
    values = list(entry["counts"])
    counts: dict[str, int] = {}
    lifetimes: dict | None = None if entry.get("lifetimes") is None else {}
    for value, template in zip(values, match_templates(state, values)):
        key = value if template is None else template
        counts[key] = counts.get(key, 0) + entry["counts"][value]
        if lifetimes is not None and value in entry["lifetimes"]:
            first, last = entry["lifetimes"][value]
            seen = lifetimes.get(key)
            lifetimes[key] = [first, last] if seen is None else [min(seen[0], first), max(seen[1], last)]
    unreported = max(0, entry["distinct"] - len(values)) if entry.get("truncated") else 0
    return {"counts": counts, "lifetimes": lifetimes, "distinct": len(counts) + unreported}


def _distinct(entry: dict) -> int:
    """Exact distinct count while no block was truncated, else the sum over blocks (an upper bound)."""
    return entry["distinct"] if entry.get("truncated") else len(entry["counts"] or {})


def _occurrence_named(column: str, options: FeatureOptions) -> str | None:
    """The occurrence a `..._uid` / `..._id` text column identifies by its OCSF path
    (`actor_session_uid` → session, `trace_uid` → trace), or None for entities (users, hosts)."""
    *path, last = column.lower().split("_")
    return next((p for p in path if p in options.occurrence_objects), None) if last in ("uid", "id") else None


def _short_lived_share(entry: dict, span: dict, options: FeatureOptions) -> float:
    """Share of rows whose value looks like an occurrence id: seen only within
    `short_lived_fraction` of the fitted time span (first to last event) and by at most
    `max_occurrence_events` events. Near 1 for request and trace ids, near 0 for categories,
    and an entity's burst (one IP's hundreds of failed logons in minutes) does not count."""
    lifetimes, width = entry.get("lifetimes"), span["max"] - span["min"]
    if not lifetimes or width <= 0 or not entry["nonnull"]:
        return 0.0
    limit = options.short_lived_fraction * width
    counts = (entry["counts"].get(v, 0) for v, (first, last) in lifetimes.items() if last - first <= limit)
    return sum(n for n in counts if n <= options.max_occurrence_events) / entry["nonnull"]


def _categorical(column: str, normaliser: str | None, entry: dict, options: FeatureOptions,
                 templates: TemplateState | None = None) -> CategoricalFeature:
    """The max_vocab most frequent values seen min_count times; with `templates`, templates
    only (a message that matched none is no vocabulary entry)."""
    known = set(templates.templates) if templates is not None else None
    frequent = sorted(
        ((v, c) for v, c in (entry["counts"] or {}).items() if c >= options.min_count and (known is None or v in known)),
        key=lambda vc: (-vc[1], vc[0]),
    )
    return CategoricalFeature(column, normaliser, tuple(v for v, _ in frequent[: options.max_vocab]), templates)


def fit_spec(frame: pl.DataFrame, family: str, options: FeatureOptions = FeatureOptions()) -> FeatureSpec:
    """Single-process fit on one frame: the reference the distributed fit must match."""
    normalisers = choose_normalisers(dict(frame.schema), options)
    return decide_spec(family, merge_stats([block_stats(frame, normalisers, options)]), normalisers, options)
