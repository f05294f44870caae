"""Fitting a FeatureSpec: per-block column statistics, merged, then decided.

`block_stats` runs on each Ray Data block (or on a whole frame in one process);
`merge_stats` combines them; `decide_spec` turns the merged statistics into a
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

Exactness: categorical counts, distinct counts and value lifetimes are exact while each
block has at most 4 x max_vocab distinct values; beyond that a block reports only its most
frequent values, and the distinct count becomes the sum over blocks (an upper bound, so a
column can only err towards being called an identifier). Numeric
quantiles are exact when every block holds at most `sample_per_block` values and
otherwise come from uniform per-block samples weighted by block size (rank error
about 1/sqrt(sample) per block).

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

from ocsf_ray.features.normalise import MESSAGE_MASKS, name_normaliser, normalised
from ocsf_ray.features.spec import CategoricalFeature, FeatureOptions, FeatureSpec, NumericFeature
from ocsf_ray.features.templates import TemplateState, match_templates, mine_templates

NOT_FEATURES = ("metadata_uid", "time", "family", "source_kind", "class_uid")
TIME_SPAN = "__time_span__"  # stats entry: first and last event time (ms)
BY_CONTENT = "__by_content__"  # text normaliser decided from all values (`resolve_content`)
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


def block_stats(frame: pl.DataFrame, normalisers: dict[str, str | None], options: FeatureOptions) -> dict:
    """Mergeable statistics of one block: counts, distinct values, ranges, samples, and for
    text the shape of its values (all JSON arrays? all paths?).

    `normalisers` comes from `choose_normalisers`; a BY_CONTENT column is counted as plain
    text and, when every value of the block starts with "/", also as a URL path (`as_url`).
    """
    stats: dict[str, dict] = {}
    top = 4 * options.max_vocab
    rng = np.random.default_rng(frame.height)
    time = frame.get_column("time") if "time" in frame.columns else None
    for column, normaliser in normalisers.items():
        if column not in frame.columns:
            continue
        series = frame.get_column(column)
        entry = {"rows": series.len(), "nonnull": series.len() - series.null_count()}
        if normaliser == "number":
            entry |= _number_stats(series, options, rng)
        else:
            entry |= _text_stats(frame, column, None if normaliser == BY_CONTENT else normaliser, time, top)
        if series.dtype == pl.String:
            values = series.drop_nulls()
            entry["arrays"] = bool(values.str.starts_with("[").all())
            entry["paths"] = bool(values.str.starts_with("/").all())
            if normaliser == BY_CONTENT and entry["paths"]:
                entry["as_url"] = _text_stats(frame, column, "url", time, top)
        stats[column] = entry
    if time is not None and frame.height:
        stats[TIME_SPAN] = {"min": int(time.min()), "max": int(time.max())}
    return stats


def _number_stats(series: pl.Series, options: FeatureOptions, rng: np.random.Generator) -> dict:
    """Distinct count, integrality, range, a uniform sample and (few levels) value counts."""
    values = series.drop_nulls().cast(pl.Float64).to_numpy()
    distinct = np.unique(values)
    keep = min(len(values), options.sample_per_block)
    sample = values if keep == len(values) else rng.choice(values, keep, replace=False)
    return {
        "numeric": True, "distinct": int(len(distinct)),
        "integral": bool(np.all(np.mod(values, 1) == 0)),
        "min": float(values.min()) if len(values) else None,
        "max": float(values.max()) if len(values) else None,
        "sample": sample.tolist(), "weight": len(values) / keep if keep else 0.0,
        "counts": _counts(pl.Series(values).cast(pl.Int64, strict=False).cast(pl.String), 4 * options.max_vocab)
        if len(distinct) <= 4 * options.max_int_levels else None,
    }


def _text_stats(frame: pl.DataFrame, column: str, normaliser: str | None, time: pl.Series | None, top: int) -> dict:
    """Distinct count, top value counts and lifetimes of the column's normalised text."""
    text = frame.select(normalised(column, normaliser)).to_series()
    distinct = text.n_unique() - (1 if frame.get_column(column).null_count() else 0)
    counts, lifetimes = _text_counts(text, time, top)
    return {"numeric": False, "distinct": distinct, "truncated": distinct > top,
            "counts": counts, "lifetimes": lifetimes}


def _counts(text: pl.Series, top: int) -> dict[str, int]:
    counts = text.drop_nulls().value_counts(sort=True).head(top)
    return dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list()))


def _text_counts(text: pl.Series, time: pl.Series | None, top: int) -> tuple[dict[str, int], dict | None]:
    """The `top` most frequent values (ties by value): their counts and [first, last] event times."""
    frame = pl.DataFrame({"value": text}).with_columns(time=time if time is not None else pl.lit(0, pl.Int64))
    grouped = (
        frame.drop_nulls("value").group_by("value")
        .agg(pl.len().alias("n"), pl.col("time").min().alias("first"), pl.col("time").max().alias("last"))
        .sort(["n", "value"], descending=[True, False]).head(top)
    )
    values, first, last = (grouped.get_column(c).to_list() for c in ("value", "first", "last"))
    counts = dict(zip(values, grouped.get_column("n").to_list()))
    return counts, ({v: [f, lt] for v, f, lt in zip(values, first, last)} if time is not None else None)


def merge_stats(parts: list[dict]) -> dict:
    """Combine block statistics (`block_stats` outputs) column by column."""
    merged: dict[str, dict] = {}
    for part in parts:
        for column, entry in part.items():
            into = merged.get(column)
            if column == TIME_SPAN:
                merged[column] = entry if into is None else {"min": min(into["min"], entry["min"]), "max": max(into["max"], entry["max"])}
            elif into is None:
                merged[column] = {**entry, "samples": [(entry.get("sample", []), entry.get("weight", 0.0))]}
                merged[column].pop("sample", None)
            else:
                _merge_entry(into, entry)
    return merged


def _merge_entry(into: dict, entry: dict) -> None:
    """Fold one block's statistics of a column into the merged ones, in place."""
    into["rows"] += entry["rows"]
    into["nonnull"] += entry["nonnull"]
    _merge_values(into, entry)
    if entry["numeric"]:
        into["integral"] = into["integral"] and entry["integral"]
        into["min"] = _none_min(into["min"], entry["min"])
        into["max"] = _none_max(into["max"], entry["max"])
        into["samples"].append((entry["sample"], entry["weight"]))
    if "arrays" in entry:
        into["arrays"] = into["arrays"] and entry["arrays"]
        into["paths"] = into["paths"] and entry["paths"]
        if "as_url" in into and "as_url" in entry:
            _merge_values(into["as_url"], entry["as_url"])
        else:  # some block holds a value that is no path: the column is not a URL
            into.pop("as_url", None)


def _merge_values(into: dict, entry: dict) -> None:
    """Distinct counts, value counts and (text) value lifetimes, in place."""
    into["distinct"] += entry["distinct"]
    into["truncated"] = into.get("truncated", False) or entry.get("truncated", False)
    if into["counts"] is None or entry["counts"] is None:
        into["counts"] = None
    else:
        for value, count in entry["counts"].items():
            into["counts"][value] = into["counts"].get(value, 0) + count
    if not entry["numeric"]:
        into["lifetimes"] = _merge_lifetimes(into["lifetimes"], entry["lifetimes"])


def _merge_lifetimes(into: dict | None, more: dict | None) -> dict | None:
    """Per value: the earliest first and the latest last time of either part."""
    if into is None or more is None:
        return None
    for value, (first, last) in more.items():
        seen = into.get(value)
        into[value] = [first, last] if seen is None else [min(seen[0], first), max(seen[1], last)]
    return into


def _none_min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _none_max(a, b):
    return b if a is None else a if b is None else max(a, b)


def weighted_quantiles(samples: list[tuple[list[float], float]], qs: list[float]) -> list[float]:
    """Quantiles of weighted samples: the smallest value whose cumulative weight reaches q."""
    values = np.concatenate([np.asarray(s, dtype=np.float64) for s, _ in samples])
    weights = np.concatenate([np.full(len(s), w) for s, w in samples])
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(weights[order])
    total = cumulative[-1]
    return [float(values[min(np.searchsorted(cumulative, q * total), len(values) - 1)]) for q in qs]


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
