"""Ray Train wiring: one TorchTrainer run per event family, then a model bundle.

Runs live under `<bundle>/_runs/<family>`; starting `train` again with the same output
and `resume=True` makes Ray Train restore each unfinished run from its latest checkpoint.
When the bundle is a URI, so is Ray Train's storage: workers on any node upload their
checkpoints there and the driver reads the chosen one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ocsf_ray.io.sources import join_uri
from ocsf_ray.io.storage import absolute, remove
from ocsf_ray.train.bundle import (checkpoint_uri, latest_checkpoint, read_history, reset_bundle_dir, write_family,
                                   write_feature_family)
from ocsf_ray.train.data import FamilyFeatures, chronological_split, discover_features
from ocsf_ray.train.loop import train_loop_per_worker
from ocsf_ray.train.manifest import Manifest
from ocsf_ray.train.model import ModelConfig
from ocsf_ray.train.options import MIN_SCORED_ROWS, TrainOptions


def model_config_for(features: FamilyFeatures, options: TrainOptions) -> ModelConfig:
    """The TabularResNet shape for a family's feature columns and the training options."""
    categorical, numeric = features.columns
    return ModelConfig(
        cardinalities=tuple(f.cardinality for f in features.spec.categorical),
        n_numeric=len(numeric), d_model=options.d_model, n_blocks=options.n_blocks,
        dropout=options.dropout, embedding_dim=options.embedding_dim,
    )


def gpu_available() -> bool:
    """Whether the Ray cluster has a GPU (training then uses one per worker)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) >= 1


@dataclass
class FamilyRun:
    """One family's finished training: per-epoch history, best checkpoint, model shape and its
    train/validation split."""

    family: str
    history: list[dict]
    checkpoint: str  # the best epoch's checkpoint: a local directory or a URI
    model_config: ModelConfig
    train_rows: int
    val_rows: int
    cutoff: int


def family_trainer(features: FamilyFeatures, options: TrainOptions, name: str, storage: str, scaling,
                   resume_from: str | None = None, callbacks: tuple = ()):
    """The TorchTrainer of one family's pretraining (`train_loop_per_worker` on its
    chronological train/validation split), keeping its two best checkpoints by
    validation top-1 under `storage/name`; `scaling` is its Ray ScalingConfig. Used by
    `train_family` and by each Tune trial (`ocsf_ray.tune`)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    train, val, _ = chronological_split(features, options.val_fraction)
    categorical, numeric = features.columns
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"options": options.to_dict(), "model": model_config_for(features, options).to_dict(),
                           "categorical": categorical, "numeric": numeric, "resume_from": resume_from},
        scaling_config=scaling,
        run_config=RunConfig(
            name=name, storage_path=storage, callbacks=list(callbacks),
            checkpoint_config=CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="val_top1",
                                               checkpoint_score_order="max"),
            failure_config=FailureConfig(max_failures=1),
        ),
        datasets={"train": train, "val": val},
    )


def train_family(
    features: FamilyFeatures, runs_dir: str, options: TrainOptions, workers: int = 2,
    use_gpu: bool | None = None, resume_from: str | None = None,
) -> FamilyRun:
    """Pretrain one family's encoder with a TorchTrainer; keep the best epoch by val_top1."""
    from ray.train import ScalingConfig

    _, _, (cutoff, train_rows, val_rows) = chronological_split(features, options.val_fraction)
    model_config = model_config_for(features, options)
    use_gpu = gpu_available() if use_gpu is None else use_gpu
    trainer = family_trainer(features, options, features.family, absolute(runs_dir),
                             ScalingConfig(num_workers=workers, use_gpu=use_gpu), resume_from)
    result = trainer.fit()
    if result.error:
        raise result.error
    best = result.get_best_checkpoint(metric="val_top1", mode="max") or result.checkpoint
    history = read_history(checkpoint_uri(result.checkpoint.path, runs_dir))
    return FamilyRun(features.family, history, checkpoint_uri(best.path, runs_dir), model_config,
                     train_rows, val_rows, cutoff)


@dataclass
class BundleResult:
    """A trained bundle: where it is, its `Manifest` and each family's run."""

    path: str
    manifest: Manifest
    runs: dict[str, FamilyRun] = field(default_factory=dict)


def train_bundle(
    features_root: str, bundle: str, options: TrainOptions = TrainOptions(), workers: int = 2,
    use_gpu: bool | None = None, resume: bool = False, families: list[str] | None = None,
    on_family: Callable[[str, int, int], None] | None = None,
) -> BundleResult:
    """Train every family found under a `featurize` output and write one bundle."""
    found = discover_features(features_root)
    chosen = {f: v for f, v in found.items() if not families or f in families}
    runs_dir = join_uri(bundle, "_runs")
    if not resume:
        reset_bundle_dir(bundle)
        remove(runs_dir)
    summary, skipped, runs = {}, {}, {}
    for i, (family, features) in enumerate(chosen.items()):
        if on_family:
            on_family(family, i, len(chosen))
        categorical, numeric = features.columns
        if features.rows < MIN_SCORED_ROWS:
            skipped[family] = f"too small to score: {features.rows} rows < {MIN_SCORED_ROWS}"
            continue
        if features.rows < options.min_rows:
            write_feature_family(bundle, family, features.spec)
            summary[family] = {"rows": features.rows, "encoder": False, "categorical": len(categorical),
                               "numeric": len(numeric), "note": f"{features.rows} rows < min_rows {options.min_rows}: "
                               "no encoder, scored by its feature k-NN and field rarity"}
            continue
        resume_from = latest_checkpoint(join_uri(runs_dir, family)) if resume else None
        run = train_family(features, runs_dir, options, workers, use_gpu, resume_from)
        epochs = [m for m in run.history if m["epoch"] >= 0]
        with_best = max(epochs, key=lambda m: m["val_top1"], default={})
        write_family(bundle, family, run.checkpoint, run.model_config, features.spec, run.history)
        runs[family] = run
        summary[family] = {
            "rows": features.rows, "train_rows": run.train_rows, "val_rows": run.val_rows,
            "validation_from_time_ms": run.cutoff,
            "categorical": len(categorical), "numeric": len(numeric),
            "epochs_run": len(epochs), "best_epoch": with_best.get("epoch"),
            "val_top1": with_best.get("val_top1"), "val_loss": with_best.get("val_loss"),
            "untrained_val_top1": run.history[0]["val_top1"],
        }
    if on_family:
        on_family("", len(chosen), len(chosen))
    manifest = Manifest.new(summary, skipped, {**options.to_dict(), "workers": workers})
    manifest.write(bundle)
    return BundleResult(bundle, manifest, runs)
