"""Monitoring on a real local Ray, no mocks: the drift statistics on known samples, then
`ocsf-ray monitor` with a bundle trained on day 1 of a synthetic system: day 2 of the
same system is no drift (exit 0) and a challenger trained on a single batch of it does
not replace the champion (one `--retrain` run, checked by two tests); another system is
drift (exit 3)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ocsf_ray.cli import app
from ocsf_ray.features import FeatureOptions
from ocsf_ray.monitor import MonitorOptions
from ocsf_ray.io.storage import children, copy_tree, read_bytes, read_json, write_json
from ocsf_ray.monitor.champion import decide, promote
from ocsf_ray.monitor.drift import embedding_drift, population_stability, score_drift, value_churn
from ocsf_ray.train import TrainOptions

# API logs and metrics (spans and logins pass too but add minutes of training). Log trace
# and session ids are new every day; the fitted specs leave them out
# (ocsf_ray.features.fit), else the log family drifts every day. Service versions
# are real categories but move with each deployment: with them the span model flagged
# 1.4-1.7x the promised rate on day 2 and 1-4 of 16 embedding dimensions moved, too close
# to the thresholds for a test (docs/MONITORING.md, Known limits), so they are excluded here.
FAMILIES = ["6003_log", "99_metric"]
FEATURES = FeatureOptions(exclude=("service_version",))
CHAMPION = TrainOptions(epochs=3, batch_size=128, d_model=32, n_blocks=1, embedding_dim=16, val_batch_size=128,
                        min_rows=300, max_batches_per_epoch=20, learning_rate=3e-3)


def digest(directory) -> dict[str, str]:
    found = {}
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = hashlib.sha256(handle.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def system(ray_session, tmp_path_factory):
    """A 2-day archive of one system and a bundle trained on its first day."""
    from ocsf_ray.features import fit_family, save_specs, write_features
    from ocsf_ray.index import IndexOptions, index_bundle
    from ocsf_ray.io import read_events
    from ocsf_ray.synth import SynthConfig, generate_archive
    from ocsf_ray.train import train_bundle

    root = tmp_path_factory.mktemp("monitor")
    generate_archive(SynthConfig(out=root / "archive", events=24_000, services=6, incidents=0, days=2, seed=1))
    features = str(root / "features")
    archive = read_events([str(root / "archive" / "events" / "*" / "20260105*")], features)
    specs = {family: fit_family(archive, family, FEATURES) for family in FAMILIES}
    for family, spec in specs.items():
        write_features(archive, family, spec, features)
    save_specs(specs, os.path.join(features, "feature_spec.json"))
    bundle = str(root / "bundle")
    trained = train_bundle(features, bundle, CHAMPION, workers=1)
    assert sorted(trained.manifest.families) == FAMILIES
    index_bundle(bundle, features, IndexOptions())
    return root, bundle


def day_two(root) -> str:
    return str(root / "archive" / "events" / "*" / "20260106*")


@pytest.fixture(scope="module")
def day_two_run(system):
    """`monitor --retrain` on day 2, the challenger trained on one batch (a worse model)."""
    root, bundle = system
    before, out = digest(bundle), root / "retrain"
    result = CliRunner().invoke(app, ["monitor", "--model", bundle, "--current", day_two(root), "--out", str(out),
                                      "--retrain", "--epochs", "1", "--max-batches-per-epoch", "1"])
    return result, out, bundle, before


def report_of(out) -> dict:
    return json.loads((out / "monitor" / "report.json").read_text())


# --- statistics on samples with a known answer -------------------------------------


def test_embedding_drift_counts_only_the_moved_dimensions():
    rng = np.random.default_rng(0)
    reference, current = rng.normal(size=(5000, 16)), rng.normal(size=(4000, 16))
    same = embedding_drift(reference, current, MonitorOptions())
    assert same["drifted_dimensions"] == 0 and not same["drifted"] and same["reasons"] == []
    current[:, :6] += 0.5  # a shift of half a standard deviation: KS statistic about 0.2
    moved = embedding_drift(reference, current, MonitorOptions())
    assert moved["drifted_dimensions"] == 6 and moved["drifted"]
    assert moved["mean_wasserstein"] > same["mean_wasserstein"] + 0.1
    assert "6 of 16 dimensions" in moved["reasons"][0]


def test_population_stability_and_churn():
    rng = np.random.default_rng(1)
    reference = rng.choice(np.arange(2, 12), size=5000, p=np.linspace(1, 2, 10) / 15)
    assert population_stability(reference, rng.permutation(reference)[:3000], 12, 20) < 0.02
    shifted = np.where(rng.random(3000) < 0.4, 2, rng.choice(reference, 3000))  # 40 % moved to one value
    assert population_stability(reference, shifted, 12, 20) > 0.2
    assert value_churn(reference, 12) == 0.0  # every value of the later half was seen earlier
    identifiers = np.arange(2, 1002)  # each row its own value, in time order
    assert value_churn(identifiers, 1002) == 1.0


def test_score_drift_needs_both_ratio_and_significance():
    options = MonitorOptions()
    as_promised = score_drift(pl.DataFrame({"is_anomaly": np.arange(10_000) < 110, "percentile": np.zeros(10_000),
                                            "anomaly_score": np.zeros(10_000)}), options)
    assert not as_promised["drifted"] and as_promised["ratio"] == pytest.approx(1.1)
    tripled = score_drift(pl.DataFrame({"is_anomaly": np.arange(10_000) < 300, "percentile": np.zeros(10_000),
                                        "anomaly_score": np.zeros(10_000)}), options)
    assert tripled["drifted"] and tripled["binomial_pvalue"] < 1e-10
    few = score_drift(pl.DataFrame({"is_anomaly": np.arange(100) < 3, "percentile": np.zeros(100),
                                    "anomaly_score": np.zeros(100)}), options)
    assert few["ratio"] == pytest.approx(3.0) and not few["drifted"]  # 3 of 100: not significant


def test_decide_requires_every_champion_family_and_no_loss():
    both = {"a": {"held_out_rows": 100, "champion_val_top1": 0.5, "challenger_val_top1": 0.6},
            "b": {"held_out_rows": 300, "champion_val_top1": 0.5, "challenger_val_top1": 0.45}}
    promoted, reason = decide(both, ["a", "b"])
    assert not promoted and "0.4875 < champion's 0.5000" in reason  # weighted by rows (unweighted: 0.525)
    both["b"]["challenger_val_top1"] = 0.5
    assert decide(both, ["a", "b"])[0]
    assert not decide(both, ["a", "b", "c"])[0]  # promoting would drop the champion's model of c


def test_bad_arguments_exit_2(tmp_path):
    missing = CliRunner().invoke(app, ["monitor", "--model", str(tmp_path / "nothing"), "--current", str(tmp_path)])
    assert missing.exit_code == 2 and "not a model bundle" in missing.output


# --- the command on synthetic systems -------------------------------------------------


def test_another_day_of_the_same_system_is_no_drift(day_two_run):
    result, out, _, _ = day_two_run
    assert result.exit_code == 0, result.output
    report = report_of(out)
    assert report["retrain_recommended"] is False and report["reasons"] == []
    for family in FAMILIES:
        found = report["families"][family]
        assert found["tested"] and not found["drifted"], found["reasons"]
        assert found["embedding"]["drifted_share"] <= 0.25
        assert found["features"]["max_psi"] <= 0.2 and found["features"]["max_new_category_rate"] <= 0.05
        assert found["score"]["rows"] == found["sampled_rows"] == found["rows"] and found["score"]["ratio"] < 2.0
    assert "3002_log" in report["unmodelled_families"]  # reported, not checked
    assert "no drift" in result.output


def test_another_system_is_drift(system):
    from ocsf_ray.synth import SynthConfig, generate_archive

    root, bundle = system
    generate_archive(SynthConfig(out=root / "other", events=12_000, services=10, incidents=0, days=1, seed=7))
    result = CliRunner().invoke(app, ["monitor", "--model", bundle, "--current", str(root / "other" / "events"),
                                      "--out", str(root / "drift")])
    assert result.exit_code == 3, result.output
    report = report_of(root / "drift")
    assert report["retrain_recommended"] is True
    metric = report["families"]["99_metric"]  # other hosts and services, another load
    assert metric["drifted"] and metric["embedding"]["drifted"] and metric["score"]["ratio"] > 2.0
    hostnames = next(c for c in metric["features"]["categorical"] if c["column"] == "cat__device_hostname")
    assert hostnames["new_category_rate"] > 0.5 and not hostnames["volatile"]
    assert any("99_metric: feature cat__device_hostname" in r for r in report["reasons"])
    assert "retraining recommended" in result.output


def test_a_worse_challenger_leaves_the_champion_untouched(day_two_run):
    result, out, bundle, before = day_two_run
    challenger = report_of(out)["challenger"]
    assert challenger["winner"] == "champion" and challenger["promoted"] is False and challenger["backup"] is None
    assert challenger["challenger_val_top1"] < challenger["champion_val_top1"], challenger
    for family in FAMILIES:
        held_out = challenger["families"][family]
        assert held_out["held_out_rows"] > 100 and held_out["challenger_val_top1"] is not None
    assert json.loads((out / "monitor" / "challenger" / "manifest.json").read_text())["train_options"]["epochs"] == 1
    assert digest(bundle) == before and not (out / "monitor" / "backup").exists()
    assert "champion wins" in result.output


def test_promotion_backs_up_the_champion_first(system, tmp_path):
    _, bundle = system
    champion, challenger = tmp_path / "champion", tmp_path / "challenger"
    shutil.copytree(bundle, champion)
    shutil.copytree(bundle, challenger)
    manifest = json.loads((challenger / "manifest.json").read_text())
    manifest["version"] = "challenger-version"
    (challenger / "manifest.json").write_text(json.dumps(manifest))
    original = digest(champion)
    backup = promote(str(champion), str(challenger), str(tmp_path / "backup"))
    assert digest(backup) == original
    assert json.loads((champion / "manifest.json").read_text())["version"] == "challenger-version"
    assert not (champion / "_runs").exists()  # training checkpoints stay with the challenger
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "challenger", "champion"]  # no staging left


def test_promotion_on_cluster_storage(system, object_store, tmp_path):
    """On S3 (no rename) the challenger's files replace the champion's, after a backup."""
    _, bundle = system
    root = f"{object_store}/{tmp_path.name}"
    champion, challenger = f"{root}/champion", f"{root}/challenger"
    copy_tree(bundle, champion, skip=("_runs",))
    copy_tree(bundle, challenger)
    write_json(read_json(f"{challenger}/manifest.json") | {"version": "challenger-version"}, f"{challenger}/manifest.json")
    backup = promote(champion, challenger, f"{root}/backup")
    assert read_json(f"{backup}/manifest.json")["version"] == read_json(f"{bundle}/manifest.json")["version"]
    assert read_json(f"{champion}/manifest.json")["version"] == "challenger-version"
    family = next(iter(read_json(f"{champion}/manifest.json")["families"]))
    assert read_bytes(f"{backup}/{family}/model.pt") == read_bytes(f"{bundle}/{family}/model.pt")
    assert "_runs" not in children(champion)  # training checkpoints stay with the challenger
