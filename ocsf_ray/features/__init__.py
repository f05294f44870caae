"""Feature extraction: FeatureSpec fitting and Polars transforms (see DESIGN.md)."""

from ocsf_ray.features.fit import fit_spec
from ocsf_ray.features.pipeline import featurize_archive, fit_family, write_features
from ocsf_ray.features.spec import (
    CategoricalFeature, FeatureOptions, FeatureSpec, NumericFeature, load_specs, save_specs,
)
from ocsf_ray.features.transform import extract, feature_columns

__all__ = [
    "CategoricalFeature", "FeatureOptions", "FeatureSpec", "NumericFeature", "extract",
    "feature_columns", "featurize_archive", "fit_family", "fit_spec",
    "load_specs", "save_specs", "write_features",
]
