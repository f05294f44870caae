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
    numeric      min(1, 2 * min(P(X >= x), P(X <= x))) with P from the reference's empirical
                 distribution, (count + 1) / (n + 1), times exp(-d) for a value d scaled
                 units (IQRs) beyond the reference's extremes, plus NUMERIC_FLOOR
and `score` gives -ln p_f per field (nats). Codes and scaled values are the FeatureSpec's.

The term (`term`) is not HBOS' plain sum over every field, which drowns one rare value in
dozens of fields' everyday variation (measured in bench/detect.py: a burst of a new
message template ranked below the top tenth of normal events). It sums, over categorical
fields, only the nats beyond the field's level, max(0, -ln p_f - level_f), and counts a
group of equivalent fields once, by its rarest member. level_f is the larger of ln(1 / RARE)
and the field's own LEVEL_QUANTILE of -ln p over the reference events: a value rarer than
1 % is news in a field of a few common values (a message template, a status), while in a
field of many rare values (client IPs, user names on a login service) it is ordinary, and
only what is rarer than the rarest 5 % of reference events counts there. The quantile is
the 95th, not the 99th, so that a burst of one new value that is 1-5 % of the family (the
usual size of an incident in a log) cannot raise its own field's level; measured on
bench/detect.py's seed sample with a template burst of 1 %, the 99th percentile hid it
(AUPRC 0.084 against 0.559). Equivalent fields: fields whose codes map one to one
in the reference (a user's uid, name and e-mail; an error's message and type) state one
fact, which is not three times as rare for being stated three times. Numerics stay out of
the term: each has its own natural extreme 1 %, and summed these outweighed real rare
values; the two k-NN terms see a numeric's deviation in the context of the event's other
fields. Numerics' tail probabilities are still reported per field (explanations), where
NUMERIC_FLOOR keeps a natural extreme from reading as ln(n) nats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from ocsf_ray.features.spec import FeatureSpec
from ocsf_ray.features.transform import feature_columns

NUMERIC_FLOOR = 0.01  # a numeric's tail probability counts as at least this (HBOS' alpha)
RARE = 0.01  # a categorical value adds to the term only as far as it is rarer than this
LEVEL_QUANTILE = 0.95  # ... and than this quantile of its field's -ln p over the reference
SERVICE_PRIOR = 10.0  # a: reference events of the family's rate a service's own rate is worth


def rarity_columns(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(categorical code columns, numeric columns) the term reads; cyclic time features are
    left out (an hour of day is not rare, and they are off below a few days anyway)."""
    categorical, floats = feature_columns(spec)
    return categorical, [c for c in floats if not c.startswith("time__")]


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
    sorted_values: list[list[np.ndarray]]  # per numeric: [all, shard 0, shard 1, ...], sorted
    cardinality: list[int]
    groups: np.ndarray  # per categorical: the index of the first field it is equivalent to
    levels: np.ndarray | None = None  # per categorical: nats below which a value adds nothing

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
        sorted_values = []
        for column in numeric:
            values = _values(reference, column)
            sorted_values.append([np.sort(values)] + [np.sort(values[lo:hi]) for lo, hi in zip(bounds, bounds[1:])])
        fitted = cls(categorical, numeric, np.asarray(bounds), radius, services, code_counts, service_code_counts,
                     _counted(shard, service, len(services) + 1), sorted_values, cardinality,
                     equivalent_fields(reference, categorical))
        levels = np.full(len(categorical), -np.log(RARE))
        if reference.height:
            nats = fitted.score(reference, shard, np.ones(reference.height, bool), numeric=False)
            levels = np.maximum(levels, np.quantile(nats, LEVEL_QUANTILE, axis=0))
        return replace(fitted, levels=levels)

    def score(self, features: pl.DataFrame, query_shard: np.ndarray, in_reference: np.ndarray,
              numeric: bool = True) -> np.ndarray:
        """-ln p per field, [rows, categorical + numeric] in `fields()` order (nats);
        [rows, categorical] when not `numeric`.

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
        for column, values in zip(self.numeric if numeric else (), self.sorted_values):
            parts.append(-np.log(self._tail(_values(features, column), values, query_shard, radius, own, n) + NUMERIC_FLOOR))
        return np.column_stack(parts) if parts else np.zeros((features.height, 0))

    def fields(self) -> list[str]:
        return self.categorical + self.numeric

    def contributions(self, nats: np.ndarray) -> np.ndarray:
        """Each field's part of the term, [rows, fields] like `score`'s output: a group of
        equivalent categoricals gives its nats beyond the level to its member farthest
        beyond (ties: the first), every other field gets 0."""
        parts = np.zeros_like(nats)
        excess = np.maximum(nats[:, :len(self.categorical)] - self.levels, 0.0)
        rows = np.arange(nats.shape[0])
        for group in np.unique(self.groups):
            members = np.flatnonzero(self.groups == group)
            rarest = members[np.argmax(excess[:, members], axis=1)]
            parts[rows, rarest] = excess[rows, rarest]
        return parts

    def term(self, nats: np.ndarray) -> np.ndarray:
        """The field-rarity term [rows] (nats beyond each field's level, summed over groups of
        equivalent categoricals) from `score`'s per-field nats."""
        return self.contributions(nats).sum(axis=1)

    def _skipped_rows(self, query_shard: np.ndarray, radius: int) -> np.ndarray:
        sizes = np.diff(self.bounds)
        skipped = np.zeros(len(query_shard), np.int64)
        for offset in range(-radius, radius + 1):
            shard = query_shard + offset
            inside = (shard >= 0) & (shard < len(sizes))
            skipped[inside] += sizes[shard[inside]]
        return skipped

    def _tail(self, x: np.ndarray, values: list[np.ndarray], query_shard: np.ndarray, radius: int,
              own: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Two-sided empirical tail probability of each x among the admissible reference values."""
        everything = values[0]
        at_least = len(everything) - np.searchsorted(everything, x, side="left")
        at_most = np.searchsorted(everything, x, side="right")
        for j, shard_values in enumerate(values[1:]):
            rows = np.flatnonzero(np.abs(query_shard - j) <= radius)
            if rows.size:
                at_least[rows] -= len(shard_values) - np.searchsorted(shard_values, x[rows], side="left")
                at_most[rows] -= np.searchsorted(shard_values, x[rows], side="right")
        at_least, at_most = at_least - own, at_most - own
        tail = np.minimum(1.0, 2.0 * np.minimum(at_least + 1.0, at_most + 1.0) / (n + 1.0))
        if everything.size:
            beyond = np.maximum(0.0, np.maximum(x - everything[-1], everything[0] - x))
            tail = tail * np.exp(-beyond)
        return tail


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


def _counted(shard: np.ndarray, keys: np.ndarray, width: int) -> tuple[ShardCounts, np.ndarray]:
    return ShardCounts.of(shard, keys, width), np.bincount(keys, minlength=width)


def _codes(frame: pl.DataFrame, column: str, width: int) -> np.ndarray:
    return np.clip(frame.get_column(column).fill_null(0).to_numpy().astype(np.int64), 0, width - 1)


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()


def _service_index(frame: pl.DataFrame, services: dict[str, int]) -> np.ndarray:
    names = frame.get_column("service").fill_null("")
    return names.replace_strict(services, default=len(services), return_dtype=pl.Int64).to_numpy()
