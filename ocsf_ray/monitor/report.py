"""The monitoring report: per family, how far the current data has moved from the
bundle's reference (embeddings, features, scores); overall, whether to retrain and why.

    <out>/monitor/current/        the current data: canonical/, rejects/, features/ made
                                  with the bundle's own FeatureSpecs, feature_spec.json
    <out>/monitor/report.json     this report (plus a `challenger` section with --retrain)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import polars as pl

from ocsf_ray.index.scorer import FamilyScorer
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import join_uri
from ocsf_ray.io.storage import write_json
from ocsf_ray.monitor.current import featurize_with_bundle, sample_features
from ocsf_ray.monitor.drift import embedding_drift, feature_drift, score_drift
from ocsf_ray.monitor.options import MonitorOptions
from ocsf_ray.train.manifest import Manifest

Progress = Callable[[str, int, int], None]
REPORT = "report.json"


def check_family(scorer: FamilyScorer, current: pl.DataFrame, rows: int, options: MonitorOptions) -> dict:
    """One family's three drift sections: a sample of its current feature rows against
    the reference rows and embeddings stored in the bundle (a uniform sample of the
    training data, at most `IndexOptions.reference_max` rows, in time order)."""
    index = scorer.index
    found = scorer.neighbours(current)
    sections = {
        "embedding": embedding_drift(index.embeddings, found.embeddings, options),
        "features": feature_drift(index.reference, current, scorer.model.spec, options),
        "score": score_drift(scorer.score(current, options.percentile, found), options),
    }
    reasons = [reason for section in sections.values() for reason in section["reasons"]]
    return {"rows": rows, "sampled_rows": current.height, "reference_rows": index.reference.height, "tested": True,
            **sections, "drifted": bool(reasons), "reasons": reasons}


def recommendation(families: dict[str, dict], unmodelled: dict[str, int]) -> tuple[bool, list[str]]:
    """Retrain when any tested family drifted, or when the bundle models none of the
    current data's families (`families`: every modelled family, tested or not)."""
    reasons = [f"{family}: {reason}" for family, found in families.items() for reason in found["reasons"]]
    if not families and unmodelled:
        reasons.append(f"the bundle models none of the current data's families ({', '.join(unmodelled)})")
    return bool(reasons), reasons


def monitor_archive(bundle: str, archive: CanonicalArchive, root: str, options: MonitorOptions = MonitorOptions(),
                    on_progress: Progress | None = None) -> dict:
    """Featurize an ingested archive with the bundle's specs under `<root>/current` and
    check every family the bundle models; the report (not yet written)."""
    manifest = Manifest.read(bundle)
    step = on_progress or (lambda description, done, total: None)
    found = featurize_with_bundle(bundle, archive, join_uri(root, "current"),
                                  on_family=lambda family, done, total: step(f"features {family}", done, total))
    families = {}
    for i, (family, features) in enumerate(found.items()):
        step(f"check {family}", i, len(found))
        if features.rows < options.min_rows:
            families[family] = {"rows": features.rows, "tested": False, "drifted": False, "reasons": [],
                                "note": f"{features.rows} current rows < min_rows {options.min_rows}: not tested"}
            continue
        current = sample_features(join_uri(root, "current"), family, options.max_rows, options.seed)
        families[family] = check_family(FamilyScorer.load(bundle, family), current, features.rows, options)
    step("checked", len(found), len(found))
    unmodelled = {f: archive.families[f].rows for f in archive.families if f not in found}
    retrain, reasons = recommendation(families, unmodelled)
    return {
        "created": datetime.now(timezone.utc).isoformat(),
        "bundle": bundle, "bundle_version": manifest.version,
        "events": {"read": archive.rows_read, "accepted": archive.accepted, "rejected": archive.rejected},
        "options": options.to_dict(),
        "families": families,
        "unmodelled_families": unmodelled,
        "absent_families": [f for f in manifest.families if f not in archive.families],
        "retrain_recommended": retrain, "reasons": reasons,
    }


def write_report(report: dict, root: str) -> str:
    """`<root>/report.json` (root: `<out>/monitor`, local or on cluster storage)."""
    path = join_uri(root, REPORT)
    write_json(report, path)
    return path
