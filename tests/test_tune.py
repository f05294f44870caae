"""The smoke sweep on a real local Ray: at least two trials, the best one exported as a bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from ocsf_ray.index import FamilyScorer, IndexOptions, index_bundle
from ocsf_ray.train import discover_features, load_bundle
from ocsf_ray.tune import SweepConfig, run_sweep

CONFIGS = Path(__file__).parent.parent / "tune_configs"


def test_shipped_sweeps_parse():
    default = SweepConfig.from_yaml(str(CONFIGS / "default.yaml"))
    assert default.resources_per_worker.get("GPU") == 1
    assert {"d_model", "n_blocks", "dropout", "learning_rate", "weight_decay", "temperature",
            "corruption_rate", "batch_size"} <= set(default.search_space)


def test_bad_sweeps_are_refused():
    with pytest.raises(ValidationError, match="unknown training option"):
        SweepConfig.model_validate({"search_space": {"d_modle": {"choice": [8]}}})
    with pytest.raises(ValidationError, match="exactly one of"):
        SweepConfig.model_validate({"search_space": {"d_model": {"normal": [8, 1]}}})


def test_smoke_sweep_runs_trials_and_exports_the_best(featurized, tmp_path):
    features = discover_features(featurized)["6003_log"]
    sweep = SweepConfig.from_yaml(str(CONFIGS / "smoke.yaml"))
    manifest, trials = run_sweep(sweep, features, str(tmp_path / "bundle"))
    assert len(trials) >= 2
    scores = [t["best_val_top1"] for t in trials]
    assert all(s is not None for s in scores)
    chosen = manifest.families["6003_log"]
    assert chosen.val_top1 == pytest.approx(max(scores))
    bundle = load_bundle(str(tmp_path / "bundle"))
    model = bundle.families["6003_log"]
    assert model.model.config.d_model == chosen.chosen["d_model"]
    rows = pl.read_parquet(features.files[0]).head(10)
    embeddings = model.embed_features(rows)
    assert embeddings.shape == (10, 16) and np.isfinite(embeddings).all()
    # the exported bundle indexes and scores like any other
    index_bundle(str(tmp_path / "bundle"), featurized, IndexOptions(k=5))
    scores = FamilyScorer.load(str(tmp_path / "bundle"), "6003_log").score(rows)
    assert scores.height == 10 and scores.get_column("anomaly_score").is_finite().all()
