"""evaluate: metrics on constructed cases, baselines on an easy case, the result's shape,
HBOS and the time-excluded k-NN baseline on small matrices."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from ocsf_ray.evaluate import code_rarity, evaluate_run, hbos, knn_raw, write_evaluation
from ocsf_ray.features.spec import CategoricalFeature, FeatureSpec, NumericFeature, save_specs
from ocsf_ray.features.transform import feature_columns

FAMILIES = {"3002_log": (300, "INC-001"), "6003_trace": (200, "INC-002")}  # rows, incident of its anomalies
INCIDENTS = [{"id": "INC-001", "type": "cpu_saturation"}, {"id": "INC-002", "type": "error_burst"}]
METRIC_KEYS = {"auroc", "auprc", "precision_at_k", "recall_at_threshold", "flagged_rate", "per_incident_type"}
BASELINES = {"hbos", "isolation_forest", "ecod", "knn_raw", "template_rarity", "severity", "random"}


def _spec(family: str, rows: int) -> FeatureSpec:
    categorical = (CategoricalFeature("kind", None, ("a", "b", "c")), CategoricalFeature("message", "message", ("ok", "fail")),
                   CategoricalFeature("severity_id", "integer", ("1", "4")))
    return FeatureSpec(family, rows, categorical,
                       (NumericFeature("latency", False, 0.0, 1.0, False), NumericFeature("bytes", False, 0.0, 1.0, True)),
                       None, None, 10.0)


def _family_frame(family: str, rows: int, incident: str, rng) -> pl.DataFrame:
    """Normal rows near 0; every 20th row an anomaly with numerics shifted by 8, a rare
    message template and severity 4 in every other one of them."""
    categorical, floats = feature_columns(_spec(family, rows))
    label = np.arange(rows) % 20 == 7
    data = {c: rng.normal(0, 1, rows).astype(np.float32) for c in floats}
    data["num__bytes__missing"] = np.zeros(rows, np.float32)
    for column in ("num__latency", "num__bytes"):
        data[column] = np.where(label, data[column] + 8, data[column]).astype(np.float32)
    return pl.DataFrame({
        "metadata_uid": [f"{family}-{i}" for i in range(rows)],
        "time": np.arange(rows, dtype=np.int64) * 1000,
        "service": "svc", "source_kind": "log",
        "cat__kind": rng.integers(2, 5, rows).astype(np.int32),
        "cat__message": np.where(label, 3, 2).astype(np.int32),
        "cat__severity_id": np.where(label & (np.arange(rows) % 40 == 7), 3, 2).astype(np.int32),
        **data,
        "family": family,
        "label": label,
        "incident_id": pl.Series([incident if x else None for x in label], dtype=pl.String),
    })


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(5)
    return pl.concat([_family_frame(f, rows, inc, rng) for f, (rows, inc) in FAMILIES.items()])


def _write_run(root, events: pl.DataFrame, score: np.ndarray, flagged: np.ndarray, features: bool = True):
    """A scored run under root/run (features beside scores) and ground truth under root/truth."""
    run, truth = root / "run", root / "truth"
    (run / "scores").mkdir(parents=True)
    truth.mkdir()
    if features:
        save_specs({f: _spec(f, rows) for f, (rows, _) in FAMILIES.items()}, str(run / "feature_spec.json"))
        for family in FAMILIES:
            (run / "features" / family).mkdir(parents=True)
            events.filter(pl.col("family") == family).drop("family", "label", "incident_id").write_parquet(
                run / "features" / family / "part-00000.parquet")
    events.select("metadata_uid", "time", "service", "source_kind", "family").with_columns(
        knn_distance=pl.Series(score, dtype=pl.Float32), anomaly_score=pl.Series(score, dtype=pl.Float64),
        percentile=pl.lit(50.0), is_anomaly=pl.Series(flagged),
    ).write_parquet(run / "scores" / "part-00000.parquet")
    rejected = pl.DataFrame({"metadata_uid": ["rejected-0"], "label": [True], "incident_id": ["INC-001"]})
    pl.concat([events.select("metadata_uid", "label", "incident_id"), rejected]).rename(
        {"label": "is_anomaly"}).write_parquet(truth / "labels.parquet")
    (truth / "incidents.json").write_text(json.dumps(INCIDENTS))
    return str(run / "scores"), str(truth / "labels.parquet")


def test_perfect_and_reversed_scores(events, tmp_path):
    label = events["label"].to_numpy()
    flagged = label & (events["family"] == "3002_log").to_numpy()  # only the first family's anomalies
    scores_dir, labels = _write_run(tmp_path / "perfect", events, label * 5.0 + 0.1, flagged)
    result = evaluate_run(scores_dir, labels, ks=(10, 100))
    method = result["method"]
    assert (result["events"], result["positives"]) == (500, 25)
    assert method["auroc"] == 1.0 and method["auprc"] == 1.0
    assert method["precision_at_k"] == {"10": 1.0, "100": 0.25}
    assert method["precision_at_positives"] == 1.0
    assert method["recall_at_threshold"] == pytest.approx(15 / 25)
    assert method["flagged_rate"] == pytest.approx(15 / 500)
    per_type = method["per_incident_type"]
    assert {t: (m["recall"], m["events"]) for t, m in per_type.items()} == {"cpu_saturation": (1.0, 15), "error_burst": (0.0, 10)}
    assert all(m["auroc"] == m["auprc"] == m["precision_at_positives"] == 1.0 for m in per_type.values())
    assert per_type["error_burst"]["precision_at_k"] == {"10": 1.0, "100": 0.1}  # 10 of its kind among 485 + 10
    reversed_dir, labels = _write_run(tmp_path / "reversed", events, 5.0 - label * 5.0, flagged)
    assert evaluate_run(reversed_dir, labels, features_root=str(tmp_path / "perfect" / "run"))["method"]["auroc"] == 0.0


def test_baselines_find_shifted_anomalies(events, tmp_path):
    label = events["label"].to_numpy()
    scores_dir, labels = _write_run(tmp_path, events, np.zeros(len(events)), label)
    result = evaluate_run(scores_dir, labels, fit_cap=150)  # the larger family is subsampled
    assert set(result) >= {"method", "baselines", "events", "positives", "notes"}
    assert set(result["baselines"]) == BASELINES
    for metrics in (result["method"], *result["baselines"].values()):
        assert set(metrics) >= METRIC_KEYS
        assert set(metrics["precision_at_k"]) == {"100", "1000"}
    baselines = result["baselines"]
    assert baselines["knn_raw"]["auroc"] > 0.9 and baselines["isolation_forest"]["auroc"] > 0.9
    assert baselines["ecod"]["auroc"] > 0.8 and baselines["hbos"]["auroc"] > 0.8
    assert baselines["template_rarity"]["auroc"] == 1.0  # the anomalies' template is the rare one
    assert 0.6 < baselines["severity"]["auroc"] < 1.0  # half the anomalies have the high severity
    assert 0.3 < baselines["random"]["auroc"] < 0.7
    assert all(b["flagged_rate"] == pytest.approx(25 / 500) for b in baselines.values())
    assert baselines["knn_raw"]["per_incident_type"]["error_burst"]["events"] == 10
    assert any("same share" in note for note in result["notes"])


def test_missing_features_skip_feature_baselines(events, tmp_path):
    label = events["label"].to_numpy()
    scores_dir, labels = _write_run(tmp_path, events, label * 1.0, label, features=False)
    result = evaluate_run(scores_dir, labels)
    assert result["method"]["auroc"] == 1.0
    assert set(result["baselines"]) == {"random"}
    assert any("features not found" in note for note in result["notes"])


def test_unscored_and_unlabelled_events(events, tmp_path):
    """Events without a model score rank last; events absent from the labels are normal."""
    label = events["label"].to_numpy()
    score = np.where(label, 5.0, 1.0)
    scores_dir, labels = _write_run(tmp_path, events, score, label, features=False)
    frame = pl.read_parquet(f"{scores_dir}/part-00000.parquet")
    unlabelled = frame.head(1).with_columns(metadata_uid=pl.lit("not-in-labels"), anomaly_score=pl.lit(None, pl.Float64))
    pl.concat([frame, unlabelled]).write_parquet(f"{scores_dir}/part-00000.parquet")
    result = evaluate_run(scores_dir, labels)
    assert (result["events"], result["positives"]) == (501, 25)
    assert result["method"]["auroc"] == 1.0
    assert any("no model score" in note for note in result["notes"])


def test_knn_raw_excludes_only_the_self_match():
    x = np.arange(6, dtype=np.float32).reshape(-1, 1) * 2  # points 0, 2, 4, ...
    fit = np.array([0, 1, 2])  # 0, 2, 4 fitted; 6, 8, 10 only scored
    scores = knn_raw(x, fit, neighbours=1)
    np.testing.assert_allclose(scores, [2, 2, 2, 2, 4, 6])


def test_knn_raw_excludes_neighbours_from_the_events_own_hour():
    """Ten hours of 20 events each, every event's one feature its hour: without exclusion an
    event's neighbours are its own hour's (distance 0); with 60-minute exclusion the hours
    around its own are skipped too, as the index does, so the nearest are 2 hours away."""
    hour = np.repeat(np.arange(10), 20)
    times = hour * 3_600_000 + np.tile(np.arange(20), 10) * 60_000
    x = hour.astype(np.float32).reshape(-1, 1)
    fit = np.arange(len(x))
    np.testing.assert_allclose(knn_raw(x, fit, 5), 0.0)
    np.testing.assert_allclose(knn_raw(x, fit, 5, times, exclusion_minutes=0.0), 0.0)
    np.testing.assert_allclose(knn_raw(x, fit, 5, times, exclusion_minutes=60.0), 2.0)
    burst = np.where(hour == 4, 100.0, x[:, 0]).astype(np.float32).reshape(-1, 1)  # an hour-long burst of one value
    assert knn_raw(burst, fit, 5)[hour == 4].max() == 0.0  # its own events hide it...
    assert knn_raw(burst, fit, 5, times, 60.0)[hour == 4].min() > 90  # ...unless excluded


def test_hbos_ranks_rare_bins_first():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (500, 3)).astype(np.float32)
    x[:5] += 6  # five outliers on every column
    x[:, 2] = 1.0  # a constant column is ignored
    scores = hbos(x, np.arange(100, 500))  # fitted without the outliers, scores every row
    assert scores.shape == (500,)
    assert scores[:5].min() > np.quantile(scores[5:], 0.99)


def test_code_rarity():
    np.testing.assert_allclose(code_rarity(np.array([2, 2, 2, 3])), -np.log([0.75, 0.75, 0.75, 0.25]))


def test_write_evaluation(tmp_path):
    result = {"method": {"auroc": 0.5}, "baselines": {}, "events": 1, "positives": 0, "notes": []}
    path = tmp_path / "nested" / "evaluation.json"
    write_evaluation(result, str(path))
    assert json.loads(path.read_text()) == result
