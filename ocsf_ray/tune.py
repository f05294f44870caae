"""Hyperparameter sweeps on Ray Tune over the Ray Train pretraining of one family.

Follows the Train V2 + Tune integration: each Tune trial runs a small driver function
that launches its own TorchTrainer, whose per-epoch reports reach Tune through
`TuneReportCallback`, so ASHA can stop weak trials early. Trials are compared on the
retrieval accuracy (`best_val_top1`), which does not depend on the loss temperature.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocsf_ray.io.sources import join_uri
from ocsf_ray.io.storage import read_bytes
from ocsf_ray.train.bundle import checkpoint_uri, read_history, reset_bundle_dir, write_family
from ocsf_ray.train.manifest import Manifest
from ocsf_ray.train.data import FamilyFeatures
from ocsf_ray.train.options import TrainOptions
from ocsf_ray.train.trainer import family_trainer, model_config_for

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["asha", "fifo"] = "asha"
    grace_period: int = 1
    reduction_factor: int = 2


class SweepConfig(BaseModel):
    """A sweep definition as written in tune_configs/*.yaml."""

    model_config = ConfigDict(extra="forbid")
    trials: int = Field(4, ge=1)
    max_concurrent_trials: int = Field(1, ge=1)
    workers_per_trial: int = Field(1, ge=1)
    resources_per_worker: dict[str, float] = {"CPU": 1}
    metric: str = "best_val_top1"
    scheduler: SchedulerConfig = SchedulerConfig()
    fixed: dict[str, Any] = {}
    search_space: dict[str, dict[str, list]] = {}
    seed: int = 0

    @field_validator("fixed", "search_space")
    @classmethod
    def _known_options(cls, value: dict) -> dict:
        unknown = set(value) - set(TrainOptions.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return value

    @field_validator("search_space")
    @classmethod
    def _known_distributions(cls, value: dict) -> dict:
        for name, spec in value.items():
            if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
                raise ValueError(f"{name}: give exactly one of {', '.join(DISTRIBUTIONS)}")
        return value

    @classmethod
    def from_yaml(cls, path: str) -> "SweepConfig":
        return cls.model_validate(yaml.safe_load(read_bytes(path)) or {})

    def param_space(self) -> dict:
        from ray import tune

        space = {}
        for name, spec in self.search_space.items():
            kind, args = next(iter(spec.items()))
            space[name] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
        return space


def _trial(config: dict, context: dict) -> None:
    """One Tune trial: a TorchTrainer run whose epoch reports are forwarded to Tune."""
    from ray import tune
    from ray.train import ScalingConfig
    from ray.tune.integration.ray_train import TuneReportCallback

    options = TrainOptions(**{**context["fixed"], **config})
    scaling = ScalingConfig(num_workers=context["workers"], resources_per_worker=context["resources"],
                            use_gpu=context["resources"].get("GPU", 0) > 0)
    family_trainer(context["features"], options, tune.get_context().get_trial_name(), context["storage"], scaling,
                   callbacks=(TuneReportCallback(),)).fit()


def run_sweep(sweep: SweepConfig, features: FamilyFeatures, out: str):
    """Run the sweep and export its best trial's best epoch as a bundle at `out`."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    storage = join_uri(out, "_runs")
    epochs = sweep.fixed.get("epochs", TrainOptions.epochs)
    scheduler = (
        # max_t past the last epoch: ASHA stops only weak trials at its rungs, and a
        # trial that ran all its epochs ends on its own (its Train run shuts down cleanly)
        ASHAScheduler(time_attr="training_iteration", max_t=epochs + 1, grace_period=sweep.scheduler.grace_period,
                      reduction_factor=sweep.scheduler.reduction_factor)
        if sweep.scheduler.type == "asha" else FIFOScheduler()
    )
    context = {"fixed": sweep.fixed, "features": features, "workers": sweep.workers_per_trial,
               "resources": sweep.resources_per_worker, "storage": storage}
    tuner = tune.Tuner(
        # the trial's driver only waits; Ray Train schedules the workers with their resources
        tune.with_resources(tune.with_parameters(_trial, context=context), {"CPU": 0.01}),
        param_space=sweep.param_space(),
        tune_config=tune.TuneConfig(metric=sweep.metric, mode="max", num_samples=sweep.trials, scheduler=scheduler,
                                    max_concurrent_trials=sweep.max_concurrent_trials,
                                    search_alg=tune.search.BasicVariantGenerator(
                                        random_state=sweep.seed, max_concurrent=sweep.max_concurrent_trials)),
        run_config=tune.RunConfig(name="sweep", storage_path=storage),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=sweep.metric, mode="max")
    history = best.metrics_dataframe
    best_row = history.loc[history["val_top1"].idxmax()]
    chosen = dict(best.config)
    options = TrainOptions(**{**sweep.fixed, **chosen})
    reset_bundle_dir(out)
    checkpoint = checkpoint_uri(best_row["checkpoint_path"], storage)
    write_family(out, features.family, checkpoint, model_config_for(features, options),
                 features.spec, read_history(checkpoint))
    trials = [
        {**r.config,
         "best_val_top1": (r.metrics or {}).get("best_val_top1"), "epochs": (r.metrics or {}).get("epoch", -1) + 1}
        for r in results
    ]
    summary = {features.family: {"rows": features.rows, "val_top1": float(best_row["val_top1"]),
                                 "best_epoch": int(best_row["epoch"]), "chosen": chosen}}
    manifest = Manifest.new(summary, {}, {**options.to_dict(), "sweep_trials": trials})
    manifest.write(out)
    return manifest, trials
