"""Self-supervised contrastive pretraining on Ray Train, and model bundles (see DESIGN.md)."""

from ocsf_ray.train.bundle import FamilyModel, ModelBundle, load_bundle
from ocsf_ray.train.data import discover_features
from ocsf_ray.train.model import ContrastiveModel, ModelConfig, TabularResNet
from ocsf_ray.train.options import TrainOptions
from ocsf_ray.train.trainer import train_bundle, train_family

__all__ = [
    "ContrastiveModel", "FamilyModel", "ModelBundle", "ModelConfig", "TabularResNet", "TrainOptions",
    "discover_features", "load_bundle", "train_bundle", "train_family",
]
