"""Model bundles: one directory that `score`, `serve` and `monitor` accept as is.

    <bundle>/manifest.json                 version, created, per-family data summary, library versions
    <bundle>/<family>/model.pt             encoder weights (no projection head: it is for training only)
    <bundle>/<family>/model_config.json
    <bundle>/<family>/feature_spec.json
    <bundle>/<family>/metrics.json         per-epoch training history and the chosen epoch
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata

import numpy as np
import polars as pl
import torch

from ocsf_ray.features.spec import FeatureSpec
from ocsf_ray.features.transform import extract, feature_columns
from ocsf_ray.train.model import ModelConfig, TabularResNet

MANIFEST = "manifest.json"


def library_versions() -> dict[str, str]:
    names = ("ocsf-ray", "ray", "torch", "polars", "pyarrow", "numpy", "faiss-gpu", "faiss-cpu")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def read_history(checkpoint_dir: str) -> list[dict]:
    """Every epoch's metrics so far, as kept in a checkpoint (Ray keeps only the best
    checkpoints, so their metrics alone would miss epochs)."""
    state = torch.load(os.path.join(checkpoint_dir, "state.pt"), map_location="cpu", weights_only=False)
    return state["history"]


def latest_checkpoint(run_dir: str) -> str | None:
    """The checkpoint of a run's latest epoch, to resume from."""
    if not os.path.isdir(run_dir):
        return None
    found = []
    for entry in os.listdir(run_dir):
        state = os.path.join(run_dir, entry, "state.pt")
        if entry.startswith("checkpoint") and os.path.exists(state):
            epoch = torch.load(state, map_location="cpu", weights_only=False)["epoch"]
            found.append((epoch, os.path.join(run_dir, entry)))
    return max(found)[1] if found else None


def write_family(bundle: str, family: str, checkpoint_dir: str, model_config: ModelConfig,
                 spec: FeatureSpec, history: list[dict]) -> None:
    """Copy the chosen checkpoint's encoder and its spec and history into the bundle."""
    target = os.path.join(bundle, family)
    os.makedirs(target, exist_ok=True)
    state = torch.load(os.path.join(checkpoint_dir, "state.pt"), map_location="cpu", weights_only=False)
    encoder = {k.removeprefix("encoder."): v for k, v in state["model"].items() if k.startswith("encoder.")}
    torch.save(encoder, os.path.join(target, "model.pt"))
    with open(os.path.join(target, "model_config.json"), "w") as handle:
        json.dump(model_config.to_dict(), handle, indent=1)
    with open(os.path.join(target, "feature_spec.json"), "w") as handle:
        json.dump(spec.to_dict(), handle, indent=1)
    with open(os.path.join(target, "metrics.json"), "w") as handle:
        json.dump({"chosen_epoch": state["epoch"], "best_val_top1": state["best"], "history": history}, handle, indent=1)


def write_manifest(bundle: str, families: dict[str, dict], skipped: dict[str, str], options: dict) -> dict:
    manifest = {
        "version": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8],
        "created": datetime.now(timezone.utc).isoformat(),
        "families": families,
        "skipped": skipped,
        "train_options": options,
        "libraries": library_versions(),
    }
    with open(os.path.join(bundle, MANIFEST), "w") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def best_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class FamilyModel:
    """A ready-to-embed model with the FeatureSpec its inputs must be made with."""

    family: str
    model: TabularResNet
    spec: FeatureSpec
    device: torch.device

    def embed_features(self, features: pl.DataFrame, batch_size: int = 4096) -> np.ndarray:
        """Feature rows (as written by `featurize`) → float32 embeddings [rows, dim]."""
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
    path: str
    manifest: dict
    families: dict[str, FamilyModel]


def read_manifest(path: str) -> dict:
    with open(os.path.join(path, MANIFEST)) as handle:
        return json.load(handle)


def family_spec(path: str, family: str) -> FeatureSpec:
    with open(os.path.join(path, family, "feature_spec.json")) as handle:
        return FeatureSpec.from_dict(json.load(handle))


def load_family(path: str, family: str, device: torch.device | None = None) -> FamilyModel:
    """One family's encoder in eval mode on the best device present, with its spec."""
    device = device or best_device()
    directory = os.path.join(path, family)
    with open(os.path.join(directory, "model_config.json")) as handle:
        config = ModelConfig.from_dict(json.load(handle))
    spec = family_spec(path, family)
    model = TabularResNet(config)
    model.load_state_dict(torch.load(os.path.join(directory, "model.pt"), map_location="cpu"))
    return FamilyModel(family, model.to(device).eval(), spec, device)


def load_bundle(path: str, device: torch.device | None = None) -> ModelBundle:
    """Load every family model of a bundle."""
    manifest = read_manifest(path)
    return ModelBundle(path, manifest, {f: load_family(path, f, device) for f in manifest["families"]})


def reset_bundle_dir(path: str) -> None:
    """Families of an earlier bundle in the same place must not survive into a new one."""
    if os.path.isdir(path):
        for entry in os.listdir(path):
            if entry != "_runs":
                full = os.path.join(path, entry)
                shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
    os.makedirs(path, exist_ok=True)
