"""Mergeable column statistics of a family's events: computed per Ray Data block
(`block_stats`), combined in any order (`merge_stats`), then read by
`ocsf_ray.features.fit.decide_spec`.

Exactness: categorical counts, distinct counts and value lifetimes are exact while each
block has at most 4 x max_vocab distinct values; beyond that a block reports only its most
frequent values, and the distinct count becomes the sum over blocks (an upper bound, so a
column can only err towards being called an identifier). Numeric
quantiles are exact when every block holds at most `sample_per_block` values and
otherwise come from uniform per-block samples weighted by block size (rank error
about 1/sqrt(sample) per block).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ocsf_ray.features.normalise import normalised
from ocsf_ray.features.spec import FeatureOptions

TIME_SPAN = "__time_span__"  # stats entry: first and last event time (ms)
BY_CONTENT = "__by_content__"  # text normaliser decided from all values (`fit.resolve_content`)


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
    """Quantiles of (values, weight per value) samples: the smallest value whose
    cumulative weight reaches q (numpy's weighted `inverted_cdf`). Exact when the samples
    are whole blocks; for uniform per-block samples of s values, rank error about
    1/sqrt(s) per block (see the module docstring)."""
    values = np.concatenate([np.asarray(s, dtype=np.float64) for s, _ in samples])
    weights = np.concatenate([np.full(len(s), w) for s, w in samples])
    return np.quantile(values, qs, weights=weights, method="inverted_cdf").tolist()
