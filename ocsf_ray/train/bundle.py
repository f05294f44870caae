"""Model bundles: one directory that `score`, `serve` and `monitor` accept as is.

A bundle may live on local disk or on cluster storage (a URI): it is read and written
only through `ocsf_ray.io.storage`, so the scoring actors and Serve replicas on any node
load the same bundle the driver wrote.

    <bundle>/manifest.json                 `ocsf_ray.train.manifest.Manifest`: version, per-family summary, index
    <bundle>/<family>/model.pt             encoder weights (no projection head: it is for training only)
    <bundle>/<family>/model_config.json
    <bundle>/<family>/feature_spec.json
    <bundle>/<family>/metrics.json         per-epoch training history and the chosen epoch

A family with too few rows to train an encoder (`TrainOptions.min_rows`) has only its
feature_spec.json and `"encoder": false` in the manifest: it is scored by its feature
terms alone (`FamilyModel.embed_features` is then the scaled feature vector).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from ocsf_ray.features.spec import FeatureSpec
from ocsf_ray.features.transform import extract, feature_columns, feature_vectors
from ocsf_ray.io.sources import filesystem_for, join_uri, write_bytes
from ocsf_ray.io.storage import children, exists, is_uri, read_bytes, read_json, remove, write_json
from ocsf_ray.train.manifest import Manifest
from ocsf_ray.train.model import ModelConfig, TabularResNet

STATE = "state.pt"  # a training checkpoint's one file (train/loop.py writes it)


def _torch_load(uri: str, **options):
    return torch.load(io.BytesIO(read_bytes(uri)), map_location="cpu", **options)


def checkpoint_state(checkpoint: str) -> dict:
    """A training checkpoint's state (local directory or URI): weights, epoch, history."""
    return _torch_load(join_uri(checkpoint, STATE), weights_only=False)


def checkpoint_uri(path: str, storage: str) -> str:
    """Ray reports checkpoint paths inside the storage's filesystem ("bucket/key" for
    s3://bucket/key): put the storage's scheme back."""
    return path if is_uri(path) or not is_uri(storage) else filesystem_for(storage)[2] + path


def read_history(checkpoint: str) -> list[dict]:
    """Every epoch's metrics so far, as kept in a checkpoint (Ray keeps only the best
    checkpoints, so their metrics alone would miss epochs)."""
    return checkpoint_state(checkpoint)["history"]


def latest_checkpoint(run_dir: str) -> str | None:
    """The checkpoint of a run's latest epoch, to resume from."""
    found = []
    for entry in children(run_dir):
        state = join_uri(run_dir, entry, STATE)
        if entry.startswith("checkpoint") and exists(state):
            found.append((checkpoint_state(join_uri(run_dir, entry))["epoch"], join_uri(run_dir, entry)))
    return max(found)[1] if found else None


def _write_torch(value, uri: str) -> None:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    write_bytes(buffer.getvalue(), uri)


def write_family(bundle: str, family: str, checkpoint: str, model_config: ModelConfig,
                 spec: FeatureSpec, history: list[dict]) -> None:
    """Copy the chosen checkpoint's encoder and its spec and history into the bundle."""
    target = join_uri(bundle, family)
    state = checkpoint_state(checkpoint)
    encoder = {k.removeprefix("encoder."): v for k, v in state["model"].items() if k.startswith("encoder.")}
    _write_torch(encoder, join_uri(target, "model.pt"))
    write_json(model_config.to_dict(), join_uri(target, "model_config.json"))
    write_json(spec.to_dict(), join_uri(target, "feature_spec.json"))
    write_json({"chosen_epoch": state["epoch"], "best_val_top1": state["best"], "history": history},
               join_uri(target, "metrics.json"))


def write_feature_family(bundle: str, family: str, spec: FeatureSpec) -> None:
    """A family without an encoder: its FeatureSpec alone."""
    write_json(spec.to_dict(), join_uri(bundle, family, "feature_spec.json"))


def best_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class FamilyModel:
    """A ready-to-embed model with the FeatureSpec its inputs must be made with; `model`
    is None for a family without an encoder, whose embedding is its scaled feature vector
    (`ocsf_ray.features.transform.feature_vectors`)."""

    family: str
    model: TabularResNet | None
    spec: FeatureSpec
    device: torch.device

    @property
    def has_encoder(self) -> bool:
        return self.model is not None

    def embed_features(self, features: pl.DataFrame, batch_size: int = 4096) -> np.ndarray:
        """Feature rows (as written by `featurize`) → float32 embeddings [rows, dim]."""
        if self.model is None:
            return feature_vectors(features, self.spec)
        categorical, numeric = feature_columns(self.spec)
        outputs = []
        with torch.no_grad():
            for start in range(0, features.height, batch_size):
                part = features.slice(start, batch_size)
                codes = torch.from_numpy(part.select(categorical).to_numpy().astype(np.int64)).reshape(part.height, -1)
                numerics = torch.from_numpy(part.select(numeric).to_numpy().astype(np.float32)).reshape(part.height, -1)
                outputs.append(self.model(codes.to(self.device), numerics.to(self.device)).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.model.config.embedding_dim), np.float32)

    def embed_events(self, events: pl.DataFrame) -> np.ndarray:
        """Canonical events → embeddings, featurized with this model's own spec."""
        return self.embed_features(extract(events, self.spec))


@dataclass
class ModelBundle:
    """Every family model of a bundle, loaded (`load_bundle`), with its manifest."""

    path: str
    manifest: Manifest
    families: dict[str, FamilyModel]


def family_spec(path: str, family: str) -> FeatureSpec:
    """The FeatureSpec a bundle's family was trained with (scoring never refits it)."""
    return FeatureSpec.from_dict(read_json(join_uri(path, family, "feature_spec.json")))


def load_family(path: str, family: str, device: torch.device | None = None) -> FamilyModel:
    """One family's encoder in eval mode on the best device present, with its spec (no
    encoder where the manifest says the family has none)."""
    device = device or best_device()
    spec = family_spec(path, family)
    entry = Manifest.read(path).families.get(family)
    if entry is not None and not entry.encoder:
        return FamilyModel(family, None, spec, device)
    config = ModelConfig.from_dict(read_json(join_uri(path, family, "model_config.json")))
    model = TabularResNet(config)
    model.load_state_dict(_torch_load(join_uri(path, family, "model.pt")))
    return FamilyModel(family, model.to(device).eval(), spec, device)


def load_bundle(path: str, device: torch.device | None = None) -> ModelBundle:
    """Load every family model of a bundle."""
    manifest = Manifest.read(path)
    return ModelBundle(path, manifest, {f: load_family(path, f, device) for f in manifest.families})


def reset_bundle_dir(path: str) -> None:
    """Families of an earlier bundle in the same place must not survive into a new one."""
    for entry in children(path):
        if entry != "_runs":
            remove(join_uri(path, entry))
