"""Online scoring: the JSON events of a request → one result each, in input order.

The batch path's own functions do the work (`frame_records`, `canonicalize`,
`extract`, `FamilyScorer.score`, `explain`), so an event scores the same online as in
`ocsf-ray score`. Two steps, so that a server can batch concurrent requests:

1. `featurize_request`, per request: normalise, route to families, extract features.
   Window features (events per minute, gaps, series deviations) see the request's own
   events only, as batch scoring sees only its archive: the same events posted together
   score as they do in a batch run over exactly those events.
2. `score_requests`, per batch of requests: one embedding + FAISS search per family
   over the rows of every request, split back per request.

An event that cannot be normalised (an implausible time, a non-integer enum) or whose family
the bundle has no model for gets an `error` in its result; the others are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ocsf_ray.features.transform import extract, feature_columns
from ocsf_ray.index.explain import explain, raw_values
from ocsf_ray.index.scorer import FamilyScorer
from ocsf_ray.io.canonical import canonicalize
from ocsf_ray.io.options import IngestOptions
from ocsf_ray.io.records import ROW, frame_records
from ocsf_ray.train.manifest import BundleVersionError, Manifest

SOURCE = "request"  # an event without metadata.uid is named `request:<position>`
RESULT_COLUMNS = ["metadata_uid", "family", "anomaly_score", "percentile", "is_anomaly"]


class BundleError(ValueError):
    """A bundle that cannot serve, with the reason a caller can act on."""


def one_line(err: Exception) -> str:
    """`Type: first line of the message`: Polars and torch explain over many lines."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


@dataclass
class ServedBundle:
    """Every family's model, index and calibration, loaded before anything scores."""

    path: str
    manifest: Manifest
    scorers: dict[str, FamilyScorer]

    @classmethod
    def load(cls, path: str) -> ServedBundle:
        """Load fully or raise BundleError: a server swaps to a bundle only once it is
        whole, so any failure here (missing file, corrupt weights or index) is a reason
        to keep the old one, whatever its type."""
        try:
            manifest = Manifest.read(path)
        except BundleVersionError as err:
            raise BundleError(str(err)) from err
        except Exception as err:
            raise BundleError(f"not a model bundle: {path} ({one_line(err)})") from err
        if manifest.index is None:
            raise BundleError(f"bundle {path} has no index: it was written before indexing; train it again")
        if not manifest.families:
            raise BundleError(f"bundle {path} has no trained family")
        scorers = {}
        for family in manifest.families:
            try:
                scorers[family] = FamilyScorer.load(path, family)
            except Exception as err:
                raise BundleError(f"bundle {path}: family {family} failed to load ({one_line(err)})") from err
        return cls(path, manifest, scorers)

    @property
    def version(self) -> str:
        return self.manifest.version

    def describe(self) -> dict:
        """Version, path and each family's feature counts (what /v1/model shows)."""
        families = {}
        for family, scorer in self.scorers.items():
            codes, floats = feature_columns(scorer.model.spec)
            families[family] = {"categorical": len(codes), "numeric": len(floats), "features": len(codes) + len(floats)}
        return {"version": self.version, "path": self.path, "families": families}


@dataclass
class FamilyRows:
    """One family's events of one request: where they sit in it, features, canonical rows."""

    positions: np.ndarray
    features: pl.DataFrame
    events: pl.DataFrame


@dataclass
class RequestRows:
    """A request's events, featurized per family, and the results of those that failed."""

    size: int
    families: dict[str, FamilyRows] = field(default_factory=dict)
    errors: dict[int, dict] = field(default_factory=dict)  # position → result with `error`


def _uids(flat: pl.DataFrame) -> dict[int, str | None]:
    """Each flattened record's given metadata_uid by its position in the request."""
    if "metadata_uid" not in flat.columns:
        return {}
    return dict(zip(flat.get_column(ROW).to_list(), flat.get_column("metadata_uid").cast(pl.String).to_list()))


def featurize_request(bundle: ServedBundle, records: list[dict], options: IngestOptions = IngestOptions()) -> RequestRows:
    """Normalise one request's events as ingestion does and extract each family's features
    with the bundle's own FeatureSpec."""
    flat, shape_rejects = frame_records(records, list(range(len(records))), SOURCE)
    events, rejects = canonicalize(flat, SOURCE, options)
    rejects = pl.concat([shape_rejects, rejects])
    request = RequestRows(len(records))
    uids = _uids(flat)
    for row, reason in rejects.select("row", "reason").iter_rows():
        request.errors[row] = {"metadata_uid": uids.get(row), "error": reason}
    if events.height == 0:
        return request
    accepted = np.setdiff1d(np.arange(len(records)), rejects.get_column("row").to_numpy())  # canonicalize keeps order
    events = events.with_columns(pl.Series("__position", accepted))
    for (family,), part in events.partition_by("family", as_dict=True, maintain_order=True).items():
        positions = part.get_column("__position").to_numpy()
        if family not in bundle.scorers:
            reason = f"family {family} has no model in bundle {bundle.version}"
            for position, uid in zip(positions, part.get_column("metadata_uid").to_list()):
                request.errors[int(position)] = {"metadata_uid": uid, "family": family, "error": reason}
            continue
        part = part.drop("__position")
        request.families[family] = FamilyRows(positions, extract(part, bundle.scorers[family].model.spec), part)
    return request


def score_requests(bundle: ServedBundle, requests: list[RequestRows], percentile: float) -> list[list[dict]]:
    """Results of every request of a batch, each in its input order; one scoring call per
    family over all the requests' rows (scores do not depend on how rows are batched)."""
    results: list[list[dict | None]] = [[None] * r.size for r in requests]
    for i, request in enumerate(requests):
        for position, error in request.errors.items():
            results[i][position] = error
    families = dict.fromkeys(f for r in requests for f in r.families)
    for family in families:
        parts = [(i, r.families[family]) for i, r in enumerate(requests) if family in r.families]
        scored = bundle.scorers[family].score(pl.concat([p.features for _, p in parts]), percentile)
        finite = scored.select(RESULT_COLUMNS).with_columns(pl.col(pl.Float64).fill_nan(None))  # JSON has no NaN
        rows = iter(finite.to_dicts())
        for i, part in parts:
            for position in part.positions:
                results[i][position] = next(rows)
    return results


def explain_request(bundle: ServedBundle, request: RequestRows, results: list[dict], top: int = 5) -> None:
    """Add each scored event's neighbours and the features that set it apart (the batch
    explanation, `ocsf_ray.index.explain`) to its result."""
    for family, part in request.families.items():
        scorer = bundle.scorers[family]
        explained = explain(scorer, part.features, raw_values(part.events, scorer.model.spec), top)
        for position, item in zip(part.positions, explained):
            results[position] |= {"neighbours": item["neighbours"], "features": item["features"]}


def score_records(bundle: ServedBundle, records: list[dict], percentile: float, explained: bool = False) -> list[dict]:
    """One request, unbatched: featurize, score and (optionally) explain."""
    request = featurize_request(bundle, records)
    (results,) = score_requests(bundle, [request], percentile)
    if explained:
        explain_request(bundle, request, results)
    return results
