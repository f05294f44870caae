"""Field rarity: how rare each categorical value is, and how far in its tail each numeric
lies, among a family's reference events.

The k-NN terms of a score measure how far an event lies from its nearest normal events;
they miss what a per-field count sees at once: a message template carried by 300 alike
events is each of those events' nearest neighbour (masking), yet it is 1 % of the family.
Per field, this is the density of HBOS (Goldstein & Dengel, KI 2012) for categoricals and
the empirical tail probability of ECOD (Li et al., IEEE TKDE 2022) for numerics, with two
changes for event archives:

- a categorical value is rated both in the whole family and for the event's own service
  (shrunk toward the family's rate), and the rarer reading counts: a template common
  elsewhere but new for this service is rare, and so is one rare everywhere but frequent
  within the one service an incident hit;
- counts skip the reference time shards around the event's own time, as the k-NN search
  does (`ocsf_ray.index.reference.TimeShards`), so a burst does not make itself common.

For field f with value x, p_f is:
    categorical  min(p(x), p(x | service)), p(x) = (n_x + 1) / (n + 2) in the family and
                 p(x | service) = (n_sx + a * p(x)) / (n_s + a) shrunk toward it
    numeric      min(1, 2 * min(P(X >= x), P(X <= x))), P the empirical distribution,
                 (count + 1) / (n + 1), of the reference events that share the event's
                 value of the numeric's context field, times exp(-d) for a value d scaled
                 units beyond that context's extremes (at most MAX_BEYOND)
and `score` gives -ln p_f per field (nats). Codes and scaled values are the FeatureSpec's.

The term (`term`) is not HBOS' plain sum over every field, which drowns one rare value in
dozens of fields' everyday variation (measured in bench/detect.py: a burst of a new
message template ranked below the top tenth of normal events). It sums, over categorical
fields, only the nats beyond the field's level, max(0, -ln p_f - level_f), and counts a
group of equivalent fields once, by the member farthest beyond its level. level_f is the larger of ln(1 / RARE)
and the field's own LEVEL_QUANTILE of -ln p over the reference events: a value rarer than
1 % is news in a field of a few common values (a message template, a status), while in a
field of many rare values (client IPs, user names on a login service) it is ordinary, and
only what is rarer than the rarest 5 % of reference events counts there. The quantile is
the 95th, not the 99th, so that a burst of one new value that is 1-5 % of the family (the
usual size of an incident in a log) cannot raise its own field's level; measured on
bench/detect.py's seed sample with a template burst of 1 %, the 99th percentile hid it
(AUPRC 0.084 against 0.559). Equivalent fields: fields whose codes map one to one
in the reference (a user's uid, name and e-mail; an error's message and type) state one
fact, which is not three times as rare for being stated three times.

Numerics are judged in context: a numeric's context is the categorical that explains most
of its variance in the reference (Kelley's adjusted epsilon-squared, `best_context`: a
duration's endpoint or span name), and its tail is taken among reference events with the
event's own context value (the whole family's when that value has under
MIN_CONTEXT_ROWS admissible rows). A request 20 times slower than its endpoint's slowest
is unheard of even when other endpoints are that slow every minute; family-wide it would
sit in the middle. Its level is set like a categorical's (the larger of ln(1 / RARE) and
its 95th percentile), so its natural extremes add little (measured on bench/detect.py's
seed sample: the slow-endpoint set's AUPRC 0.436 → 0.672, no other set lower by more
than run-to-run noise). Only the numerics' values enter: missing-value indicators, cyclic
time and entity-window features stay out (the k-NN terms weigh them with the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from ocsf_ray.features.spec import FeatureSpec
from ocsf_ray.features.transform import feature_columns

MIN_CONTEXT_ROWS = 30  # a numeric is judged within its context value only with this many admissible rows
MAX_BEYOND = 30.0  # scaled units beyond the extremes after which a numeric is no rarer
RARE = 0.01  # a categorical value adds to the term only as far as it is rarer than this
LEVEL_QUANTILE = 0.95  # ... and than this quantile of its field's -ln p over the reference
SERVICE_PRIOR = 10.0  # a: reference events of the family's rate a service's own rate is worth


def rarity_columns(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(categorical code columns, numeric value columns) the term reads. Missing-value
    indicators, cyclic time and entity-window features are left out: an hour of day or a
    busy minute is not rare, and the window features' extremes are the k-NN terms' to
    weigh in the context of the event's other fields."""
    categorical, _ = feature_columns(spec)
    return categorical, [f"num__{f.column}" for f in spec.numeric]


@dataclass(frozen=True)
class ShardCounts:
    """Counts of integer keys in each time shard, stored sparse as sorted (shard, key) pairs."""

    pairs: np.ndarray  # sorted shard * stride + key
    counts: np.ndarray  # [pairs]
    stride: int

    @classmethod
    def of(cls, shard: np.ndarray, keys: np.ndarray, stride: int) -> "ShardCounts":
        pairs, counts = np.unique(shard.astype(np.int64) * stride + keys, return_counts=True)
        return cls(pairs, counts, stride)

    def at(self, shard: np.ndarray, keys: np.ndarray) -> np.ndarray:
        wanted = shard.astype(np.int64) * self.stride + keys
        where = np.clip(np.searchsorted(self.pairs, wanted), 0, max(len(self.pairs) - 1, 0))
        found = (len(self.pairs) > 0) & (self.pairs[where] == wanted) & (shard >= 0)
        return np.where(found, self.counts[where] if len(self.pairs) else 0, 0)

    def admissible(self, keys: np.ndarray, totals: np.ndarray, query_shard: np.ndarray, radius: int) -> np.ndarray:
        """Each key's count over the shards farther than `radius` from the query's shard."""
        out = totals[keys].astype(np.int64)
        for offset in range(-radius, radius + 1):
            out -= self.at(query_shard + offset, keys)
        return out


@dataclass
class FieldRarity:
    """The fitted term of one family: fit once from the reference rows, then `score`."""

    categorical: list[str]
    numeric: list[str]
    bounds: np.ndarray  # time shard j holds reference rows bounds[j]:bounds[j + 1]
    radius: int  # shards within this distance of a query's are skipped (-1: none)
    services: dict[str, int]  # reference service -> index; other services get len(services)
    code_counts: list[tuple[ShardCounts, np.ndarray]]  # per categorical: per shard, totals
    service_code_counts: list[tuple[ShardCounts, np.ndarray]]
    service_counts: tuple[ShardCounts, np.ndarray]
    contexts: list[int]  # per numeric: the categorical it is judged within (-1: none)
    values: list[np.ndarray]  # per numeric: the reference's distinct values, sorted
    keys: list[list[np.ndarray]]  # per numeric: context code * stride + value rank, [all, shard 0, ...], sorted
    family_keys: list[list[np.ndarray]]  # per numeric: value ranks alike, ignoring the context
    extremes: list[tuple[np.ndarray, np.ndarray]]  # per numeric: (min, max) per context code
    cardinality: list[int]
    groups: np.ndarray  # per categorical: the index of the first field it is equivalent to
    levels: np.ndarray | None = None  # per field: nats below which a value adds nothing

    @classmethod
    def fit(cls, reference: pl.DataFrame, spec: FeatureSpec, bounds: np.ndarray, radius: int) -> "FieldRarity":
        """`reference`: feature rows sorted by time (rows of shard j at bounds[j]:bounds[j+1])."""
        categorical, numeric = rarity_columns(spec)
        shard = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
        services = {s: i for i, s in enumerate(sorted(reference.get_column("service").fill_null("").unique().to_list()))}
        service = _service_index(reference, services)
        cardinality = [int(f.cardinality) for f in spec.categorical]
        code_counts, service_code_counts = [], []
        for column, width in zip(categorical, cardinality):
            codes = _codes(reference, column, width)
            code_counts.append(_counted(shard, codes, width))
            service_code_counts.append(_counted(shard, service * width + codes, (len(services) + 1) * width))
        codes = [_codes(reference, c, w) for c, w in zip(categorical, cardinality)]
        contexts, distinct, keys, family_keys, extremes = [], [], [], [], []
        for column in numeric:
            values = _values(reference, column)
            context = best_context(values, codes)
            code = codes[context] if context >= 0 else np.zeros(len(values), np.int64)
            width = cardinality[context] if context >= 0 else 1
            uniques, rank = np.unique(values, return_inverse=True)
            key = code * (len(uniques) + 1) + rank
            contexts.append(context)
            distinct.append(uniques)
            keys.append(_by_shard(key, bounds))
            family_keys.append(_by_shard(rank, bounds) if context >= 0 else keys[-1])
            low, high = np.full(width, np.inf), np.full(width, -np.inf)
            np.minimum.at(low, code, values)
            np.maximum.at(high, code, values)
            extremes.append((low, high))
        fitted = cls(categorical, numeric, np.asarray(bounds), radius, services, code_counts, service_code_counts,
                     _counted(shard, service, len(services) + 1), contexts, distinct, keys, family_keys, extremes, cardinality,
                     equivalent_fields(reference, categorical))
        levels = np.full(len(categorical) + len(numeric), -np.log(RARE))
        if reference.height:
            nats = fitted.score(reference, shard, np.ones(reference.height, bool))
            levels = np.maximum(levels, np.quantile(nats, LEVEL_QUANTILE, axis=0))
        return replace(fitted, levels=levels)

    def score(self, features: pl.DataFrame, query_shard: np.ndarray, in_reference: np.ndarray) -> np.ndarray:
        """-ln p per field, [rows, categorical + numeric] in `fields()` order (nats).

        `query_shard`: each row's time shard (outside 0..shards-1 when outside the reference
        period: nothing is skipped); `in_reference`: rows that are reference events
        themselves, whose own count is taken out when no shard is skipped."""
        own = np.where(in_reference & (self.radius < 0), 1, 0)
        radius = max(self.radius, -1)
        service = _service_index(features, self.services)
        n_total = self.service_counts[1].sum()
        n_service = self.service_counts[0].admissible(service, self.service_counts[1], query_shard, radius) - own
        n = np.full(features.height, n_total, np.int64) - self._skipped_rows(query_shard, radius) - own
        parts = []
        for column, width, (by_code, code_totals), (by_pair, pair_totals) in zip(
                self.categorical, self.cardinality, self.code_counts, self.service_code_counts):
            codes = _codes(features, column, width)
            n_code = by_code.admissible(codes, code_totals, query_shard, radius) - own
            n_pair = by_pair.admissible(service * width + codes, pair_totals, query_shard, radius) - own
            p_code = (n_code + 1.0) / (n + 2.0)
            p_service = (n_pair + SERVICE_PRIOR * p_code) / (n_service + SERVICE_PRIOR)
            parts.append(-np.log(np.minimum(p_code, p_service)))
        for j, column in enumerate(self.numeric):
            context = self.contexts[j]
            codes = _codes(features, self.categorical[context], self.cardinality[context]) if context >= 0 \
                else np.zeros(features.height, np.int64)
            parts.append(-np.log(self._tail(j, _values(features, column), codes, query_shard, radius, own)))
        return np.column_stack(parts) if parts else np.zeros((features.height, 0))

    def fields(self) -> list[str]:
        return self.categorical + self.numeric

    def contributions(self, nats: np.ndarray) -> np.ndarray:
        """Each field's part of the term, [rows, fields] like `score`'s output: its nats
        beyond its level, where a group of equivalent categoricals gives its excess to its
        member farthest beyond (ties: the first) and 0 to the others."""
        excess = np.maximum(nats - self.levels, 0.0)
        parts = np.zeros_like(nats)
        parts[:, len(self.categorical):] = excess[:, len(self.categorical):]
        rows = np.arange(nats.shape[0])
        for group in np.unique(self.groups):
            members = np.flatnonzero(self.groups == group)
            rarest = members[np.argmax(excess[:, members], axis=1)]
            parts[rows, rarest] = excess[rows, rarest]
        return parts

    def term(self, nats: np.ndarray) -> np.ndarray:
        """The field-rarity term [rows] (nats beyond each field's level, summed over numerics
        and groups of equivalent categoricals) from `score`'s per-field nats."""
        return self.contributions(nats).sum(axis=1)

    def _skipped_rows(self, query_shard: np.ndarray, radius: int) -> np.ndarray:
        sizes = np.diff(self.bounds)
        skipped = np.zeros(len(query_shard), np.int64)
        for offset in range(-radius, radius + 1):
            shard = query_shard + offset
            inside = (shard >= 0) & (shard < len(sizes))
            skipped[inside] += sizes[shard[inside]]
        return skipped

    def _tail(self, j: int, x: np.ndarray, codes: np.ndarray, query_shard: np.ndarray, radius: int,
              own: np.ndarray) -> np.ndarray:
        """Two-sided empirical tail probability of each x among the admissible reference
        values of its context code (of the whole family where that has under
        MIN_CONTEXT_ROWS), times exp(-d) for d scaled units beyond the context's extremes."""
        values, stride = self.values[j], len(self.values[j]) + 1
        within = self._counts(self.keys[j], codes * stride, x, j, query_shard, radius) - own
        family = within
        if self.contexts[j] >= 0:
            family = self._counts(self.family_keys[j], np.zeros_like(codes), x, j, query_shard, radius) - own
        use = within[2] >= MIN_CONTEXT_ROWS
        at_most, at_least, total = np.where(use, within, family)
        tail = np.minimum(1.0, 2.0 * np.minimum(at_least + 1.0, at_most + 1.0) / (np.maximum(total, 0) + 1.0))
        if not len(values):
            return tail
        low, high = (e[np.clip(codes, 0, len(e) - 1)] for e in self.extremes[j])
        low, high = np.where(use, low, values[0]), np.where(use, high, values[-1])
        return tail * np.exp(-np.minimum(np.maximum(0.0, np.maximum(x - high, low - x)), MAX_BEYOND))

    def _counts(self, keys: list[np.ndarray], base: np.ndarray, x: np.ndarray, j: int, query_shard: np.ndarray,
                radius: int) -> np.ndarray:
        """[3, rows]: admissible reference values at most x, at least x, and all, among the
        keys from `base` to `base` + stride (one context code)."""
        stride = len(self.values[j]) + 1
        below = np.searchsorted(self.values[j], x, side="right")
        above = np.searchsorted(self.values[j], x, side="left")
        edges = np.stack([base, base + below, base + above, base + stride])

        def count(sorted_keys: np.ndarray, columns) -> np.ndarray:
            at = np.searchsorted(sorted_keys, edges[:, columns], side="left")
            return np.stack([at[1] - at[0], at[3] - at[2], at[3] - at[0]])

        found = count(keys[0], slice(None))
        for shard, shard_keys in enumerate(keys[1:]):
            rows = np.flatnonzero(np.abs(query_shard - shard) <= radius)
            if rows.size:
                found[:, rows] -= count(shard_keys, rows)
        return found


def best_context(values: np.ndarray, codes: list[np.ndarray]) -> int:
    """The categorical that explains most of a numeric's variance in the reference, by
    Kelley's adjusted epsilon-squared (a one-way ANOVA's share of explained variance,
    corrected for the number of levels so that an identifier does not win by having one
    level per row); -1 when none explains any."""
    n = len(values)
    total = float(((values - values.mean()) ** 2).sum()) if n else 0.0
    best, best_share = -1, 0.0
    for i, code in enumerate(codes):
        levels = np.unique(code, return_inverse=True)[1]
        k = int(levels.max()) + 1 if n else 0
        if total <= 0 or k < 2 or n - k < 1:
            continue
        within = total - float((np.bincount(levels, values) ** 2 / np.bincount(levels)).sum() - n * values.mean() ** 2)
        share = 1.0 - (within / (n - k)) / (total / (n - 1))
        if share > best_share:
            best, best_share = i, share
    return best


def equivalent_fields(reference: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """For each column, the index of the first column whose codes map one to one onto its
    own in `reference` (itself if none): equal when the pairs of codes are exactly as many
    as each column's distinct codes."""
    first = np.arange(len(columns))
    distinct = [reference.get_column(c).n_unique() for c in columns]
    for j in range(len(columns)):
        for i in range(j):
            if first[i] == i and distinct[i] == distinct[j] and \
                    reference.select(columns[i], columns[j]).n_unique() == distinct[j]:
                first[j] = i
                break
    return first


def _by_shard(keys: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    """[all keys, keys of shard 0, of shard 1, ...], each sorted."""
    return [np.sort(keys)] + [np.sort(keys[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]


def _counted(shard: np.ndarray, keys: np.ndarray, width: int) -> tuple[ShardCounts, np.ndarray]:
    return ShardCounts.of(shard, keys, width), np.bincount(keys, minlength=width)


def _codes(frame: pl.DataFrame, column: str, width: int) -> np.ndarray:
    return np.clip(frame.get_column(column).fill_null(0).to_numpy().astype(np.int64), 0, width - 1)


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()


def _service_index(frame: pl.DataFrame, services: dict[str, int]) -> np.ndarray:
    names = frame.get_column("service").fill_null("")
    return names.replace_strict(services, default=len(services), return_dtype=pl.Int64).to_numpy()
