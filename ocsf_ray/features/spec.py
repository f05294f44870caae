"""FeatureSpec: what was learned from training data to turn events into model inputs.

Fitted once (`ocsf_ray.features.fit`), saved as JSON beside the features, and reused
unchanged at score and serve time so new data never needs refitting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ocsf_ray.features.templates import TemplateState

MISSING_CODE = 0  # the column had no value
UNSEEN_CODE = 1  # a value not in the vocabulary (new at score time, or too rare at fit time)
FIRST_CODE = 2


@dataclass(frozen=True)
class FeatureOptions:
    """Column selection and scaling knobs, with their defaults in one place.

    max_vocab / min_count: a categorical keeps its max_vocab most frequent values seen
        at least min_count times; everything else maps to UNSEEN_CODE.
    id_like_ratio: a text column with more distinct values than this share of its
        non-null rows (after normalisation) is an identifier and is dropped.
    short_lived_fraction / max_short_lived_share: a text column is also an identifier when
        more than max_short_lived_share of its rows carry a value whose first and last
        event lie within short_lived_fraction of the fitted time span (and that at most
        max_occurrence_events events carry, see below): ids repeated by
        every event of one request or trace (4 spans of a trace: 25 % distinct, so the
        ratio test misses them) but never again. In the synthetic archives such ids scored
        100 % of rows, real categories at most 24 % (user names of application logs).
    max_occurrence_events: a short-lived value counts towards that share only when at most
        this many events carry it: a request or trace has a handful to a few dozen events
        (at most 19 in the synthetic archives), while an entity seen in a burst (one IP's
        hundreds of failed logons within minutes, a password spray) is carried by many,
        and is the value that matters most, not an identifier.
    occurrence_objects: a text `..._uid` / `..._id` column whose OCSF path contains one of
        these objects identifies an occurrence, not an entity, and is dropped whatever its
        statistics: a session id used all day by one user recurs like the user's name in
        the day it was fitted on, yet no value comes back the next day. Entity ids
        (`actor_user_uid`, `device_uid`) are kept: they are the recurring categories.
    min_coverage: a text column whose kept vocabulary covers less than this share of its
        rows is mostly "unseen" and carries no signal (trace ids repeated a few times,
        random subnets): it is dropped.
    max_int_levels: an integer-valued number with at most this many distinct values
        (status codes, enum ids) is categorical, not numeric.
    clip: scaled numerics are clipped to [-clip, clip] so one outlier cannot dominate.
    sample_per_block: numeric quantiles come from uniform samples of at most this many
        values per block, weighted by block size (exact when blocks are smaller).
    template_sample / template_depth / template_sim_th / template_max_children: message
        columns are parsed into Drain templates (`ocsf_ray.features.templates`) mined from
        at most template_sample distinct masked messages (the most frequent), with drain3's
        depth, similarity threshold and children per tree node.
    include / exclude: columns forced in or out whatever the data says.
    host_fields / actor_fields: the first present names the host / actor entity of
        window features.
    series_fields: the first present categorical names what a numeric measures (a
        metric's name, an operation): each numeric is also expressed as its deviation
        from the median of its own series (service, host, that name), because a value
        is abnormal for its series, not for the whole family (95 % CPU next to 2 GB of
        memory says nothing on one global scale).
    hour_of_day_min_days / day_of_week_min_days: cyclic time features are used only when
        the fitted data spans this many days: with fewer cycles, "03:00" names one stretch
        of this archive rather than a habit, and every event's nearest neighbours (which
        scoring takes from other hours, see IndexOptions.exclusion_minutes) would differ
        from it by their time of day alone.
    """

    max_vocab: int = 1000
    min_count: int = 2
    id_like_ratio: float = 0.5
    short_lived_fraction: float = 0.01
    max_short_lived_share: float = 0.5
    max_occurrence_events: int = 50
    occurrence_objects: tuple[str, ...] = ("session", "trace", "span", "request", "transaction", "correlation")
    min_coverage: float = 0.5
    max_int_levels: int = 32
    clip: float = 10.0
    sample_per_block: int = 8192
    template_sample: int = 20_000
    template_depth: int = 4
    template_sim_th: float = 0.4
    template_max_children: int = 100
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    host_fields: tuple[str, ...] = ("device_hostname", "host_name", "src_endpoint_hostname")
    actor_fields: tuple[str, ...] = ("actor_user_uid", "actor_user_name", "user_uid", "user_name")
    series_fields: tuple[str, ...] = ("metric_name", "span_operation", "api_operation", "http_request_url_path")
    hour_of_day_min_days: float = 3.0
    day_of_week_min_days: float = 21.0

    def __post_init__(self) -> None:
        if self.max_vocab < 1 or self.min_count < 1:
            raise ValueError("--max-vocab and --min-count must be at least 1")


@dataclass(frozen=True)
class CategoricalFeature:
    """A text or integer column coded by its fitted vocabulary (codes from FIRST_CODE;
    missing and unseen values have their own codes), after its normaliser."""

    column: str
    normaliser: str | None
    vocabulary: tuple[str, ...]  # value at index i has code FIRST_CODE + i
    # a message column's Drain templates (its vocabulary then holds templates); None for
    # every other column and for "message" features fitted before Drain (regex masks only)
    templates: TemplateState | None = None

    @property
    def cardinality(self) -> int:
        """Number of codes, the reserved ones included (the embedding table's size)."""
        return FIRST_CODE + len(self.vocabulary)


@dataclass(frozen=True)
class NumericFeature:
    """A number scaled robustly: (log1p(x) if `log1p` else x - median) / scale, clipped."""

    column: str
    log1p: bool  # non-negative and heavy-tailed: compress before scaling
    median: float
    scale: float  # the larger of the interquartile range and the 1st-99th percentile spread / 4.65 (log1p'd)
    indicator: bool  # the column had missing values at fit time


@dataclass(frozen=True)
class FeatureSpec:
    """Per-family recipe: categoricals, numerics, entity windows and the clip bound."""

    family: str
    rows: int
    categorical: tuple[CategoricalFeature, ...]
    numeric: tuple[NumericFeature, ...]
    host_column: str | None
    actor_column: str | None
    clip: float
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it was left out
    series_column: str | None = None
    # cyclic time features, only once the data covers enough cycles (see FeatureOptions)
    hour_of_day: bool = True
    day_of_week: bool = True

    def to_dict(self) -> dict:
        """JSON-ready fields (one family of feature_spec.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        """The spec `to_dict` wrote."""
        return cls(
            family=data["family"],
            rows=data["rows"],
            categorical=tuple(
                CategoricalFeature(c["column"], c["normaliser"], tuple(c["vocabulary"]),
                                   TemplateState.from_dict(c["templates"]) if c.get("templates") else None)
                for c in data["categorical"]
            ),
            numeric=tuple(NumericFeature(**n) for n in data["numeric"]),
            host_column=data["host_column"],
            actor_column=data["actor_column"],
            clip=data["clip"],
            dropped=dict(data.get("dropped", {})),
            series_column=data.get("series_column"),
            hour_of_day=data.get("hour_of_day", True),
            day_of_week=data.get("day_of_week", True),
        )


def save_specs(specs: dict[str, FeatureSpec], uri: str) -> None:
    """Write `{"version": 1, "families": {family: spec}}` as JSON at `uri` (any filesystem)."""
    from ocsf_ray.io.sources import filesystem_for

    fs, inner, _ = filesystem_for(uri)
    payload = json.dumps({"version": 1, "families": {k: v.to_dict() for k, v in specs.items()}}, indent=1)
    with fs.open_output_stream(inner) as stream:
        stream.write(payload.encode())


def load_specs(uri: str) -> dict[str, FeatureSpec]:
    """Family → FeatureSpec from a file `save_specs` wrote; OSError when it is missing."""
    from ocsf_ray.io.sources import filesystem_for

    fs, inner, _ = filesystem_for(uri)
    with fs.open_input_stream(inner) as stream:
        data = json.loads(stream.read())
    return {k: FeatureSpec.from_dict(v) for k, v in data["families"].items()}
