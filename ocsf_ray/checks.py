"""Checks of a user's arguments and inputs, shared by the CLI, the Ray jobs and
`ocsf_ray.pipeline`: each returns what it checked or raises `InputError` (a ValueError)
whose one-line message tells the user what to fix."""

from __future__ import annotations

import posixpath

from ocsf_ray.io.sources import InputError, join_uri
from ocsf_ray.io.storage import exists

DEFAULT_PERCENTILE = 99.0


def flag_percentile(percentile: float | None = None, contamination: float | None = None) -> float:
    """The flagging threshold as a percentile of each family's reference scores.

    `contamination` c (the expected share of anomalies, as in scikit-learn) and
    `percentile` 100 (1 - c) are the same threshold; default 99: 1 % of events like the
    reference are flagged, a daily triage budget of about one event in a hundred.
    Raises InputError when both are given or either is out of range.
    """
    if percentile is not None and contamination is not None:
        raise InputError("give --percentile or --contamination, not both")
    if contamination is not None:
        if not 0 < contamination < 1:
            raise InputError("--contamination must be between 0 and 1")
        return 100.0 * (1.0 - contamination)
    if percentile is not None and not 0 < percentile < 100:
        raise InputError("--percentile must be between 0 and 100")
    return DEFAULT_PERCENTILE if percentile is None else percentile


def found_ground_truth(inputs: list[str], name: str = "labels.parquet") -> str | None:
    """Ground truth a synth archive carries beside its events (`<archive>/ground_truth/<name>`),
    looked for in each input and its parent; None when there is none."""
    for path in inputs:
        for root in (path, posixpath.dirname(path.rstrip("/"))):
            candidate = join_uri(root, "ground_truth", name)
            if exists(candidate):
                return candidate
    return None


def indexed_manifest(bundle: str):
    """A bundle's manifest; raises InputError when `bundle` is not a bundle or was
    written before indexing."""
    from ocsf_ray.train.manifest import BundleVersionError, Manifest

    try:
        manifest = Manifest.read(bundle)
    except BundleVersionError as err:
        raise InputError(str(err)) from None
    except (OSError, ValueError) as err:
        raise InputError(f"not a model bundle: {bundle} ({err.__class__.__name__}: {err})") from None
    if manifest.index is None:
        raise InputError(f"bundle {bundle} has no index: it was written before indexing; train it again")
    return manifest


def featurized_families(features: str) -> dict:
    """The families of a `featurize` output (`ocsf_ray.train.discover_features`); raises
    InputError when `features` is not one."""
    from ocsf_ray.train import discover_features

    try:
        return discover_features(features)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"not a featurize output: {features} ({err.__class__.__name__}: {err})") from None


def load_sweep(config: str):
    """A sweep definition (`ocsf_ray.tune.SweepConfig`) from YAML; raises InputError when
    it cannot be read or is not valid."""
    from pydantic import ValidationError

    from ocsf_ray.tune import SweepConfig

    try:
        return SweepConfig.from_yaml(config)
    except (OSError, ValidationError, ValueError) as err:
        raise InputError(f"bad sweep config {config}: {' '.join(str(err).split())}") from None


def check_rca_inputs(scores: str | None, dependencies: str | None, incidents: str | None) -> None:
    """Raises InputError when a given scores directory, dependencies file or incidents
    file is missing, or the dependencies file is not a caller → [callees] mapping."""
    import yaml

    from ocsf_ray.rca.dependencies import declared_dependencies

    for path, what in ((scores, "scores directory"), (dependencies, "dependencies file"), (incidents, "incidents file")):
        if path and not exists(path):
            raise InputError(f"{what} not found: {path}")
    if dependencies:
        try:
            declared_dependencies(dependencies)
        except (ValueError, yaml.YAMLError) as err:
            raise InputError(" ".join(str(err).split())) from None
