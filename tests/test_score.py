"""The main job end to end: `ocsf-ray run` on a synth archive, then `score` in another
process with the bundle it wrote. Real Ray, torch, FAISS; no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ocsf_ray.cli import app

AUROC_FLOOR = 0.70  # random ranks at 0.5; an untrained or broken scorer stays near it


@pytest.fixture(scope="module")
def demo_run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    made = CliRunner().invoke(app, ["synth", "--out", str(root / "archive"), "--events", "40000", "--services", "6",
                                    "--incidents", "6", "--days", "0.5", "--seed", "3"])
    assert made.exit_code == 0, made.output
    out = root / "out"
    result = CliRunner().invoke(app, ["run", str(root / "archive" / "events"), "--out", str(out),
                                      "--epochs", "2", "--max-batches-per-epoch", "30", "--explain-top", "10"])
    assert result.exit_code == 0, result.output
    return root, out, result.output


def read_scores(out) -> pl.DataFrame:
    return pl.read_parquet(os.path.join(out, "scores", "*.parquet"))


def test_run_scores_every_event_and_ranks_incidents_high(demo_run):
    root, out, output = demo_run
    scores = read_scores(out)
    labels = pl.read_parquet(root / "archive" / "ground_truth" / "labels.parquet")
    assert scores.height == labels.height  # one row per accepted event (synth rows are all valid)
    assert scores.get_column("metadata_uid").n_unique() == scores.height
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation["baselines"]) == {"hbos", "ecod", "isolation_forest", "knn_raw", "template_rarity", "severity",
                                            "random"}
    assert evaluation["method"]["auroc"] >= AUROC_FLOOR
    assert evaluation["method"]["auroc"] > evaluation["baselines"]["random"]["auroc"] + 0.1
    scored = scores.drop_nulls("anomaly_score")
    flagged = scored.get_column("is_anomaly").mean()
    assert 0.002 < flagged < 0.1  # percentile 99 of reference scores flags on the order of 1 %
    assert (scored.get_column("is_anomaly") == (scored.get_column("percentile") >= 99.0)).all()
    for name in ("report.html", "score_distribution.png", "embedding_map.png", "explanations.json"):
        assert (out / name).stat().st_size > 1000, name
    assert "AUROC" in output and "report:" in output
    rca = json.loads((out / "rca" / "evaluation.json").read_text())  # more than one source: run includes RCA
    assert rca["method"]["incidents"] == 6 and "root causes" in output


def test_explanations_name_features_that_really_differ(demo_run):
    """The first feature of each explanation: the event's own feature value differs from
    the typical value among the neighbours it names (read back from the bundle)."""
    _, out, _ = demo_run
    explanations = json.loads((out / "explanations.json").read_text())
    assert explanations and all(len(e["neighbours"]) == 20 for e in explanations)
    checked = 0
    for item in explanations:
        first = item["features"][0]
        assert first["contribution"] > 0
        features = pl.read_parquet(out / "features" / item["family"] / "*.parquet").filter(
            pl.col("metadata_uid") == item["metadata_uid"])
        reference = pl.read_parquet(out / "bundle" / item["family"] / "reference.parquet")
        neighbours = reference.filter(pl.col("metadata_uid").is_in([n["metadata_uid"] for n in item["neighbours"]]))
        assert neighbours.height == 20
        column = next(c for c in features.columns if c.endswith(_column_suffix(first["feature"])))
        own = features.get_column(column)[0]
        typical = neighbours.get_column(column).mode().sort()[0] if column.startswith("cat__") else neighbours.get_column(column).median()
        assert own != pytest.approx(typical, abs=1e-6), (item["metadata_uid"], first)
        checked += 1
    assert checked == len(explanations)


def test_explanations_say_which_term_decided_and_the_shares_add_up_to_the_score(demo_run):
    _, out, _ = demo_run
    for item in json.loads((out / "explanations.json").read_text()):
        assert set(item["terms"]) == {"embedding", "features", "rarity"}
        assert item["terms"][item["deciding_term"]] == max(item["terms"].values())
        assert sum(s["share"] for s in item["score_shares"]) == pytest.approx(item["anomaly_score"], rel=1e-6)
        if item["deciding_term"] == "rarity":  # fields named as the bundle's rarity term reads them
            assert all(0 < s["tail_probability"] <= 1 for s in item["score_shares"] if "tail_probability" in s)


def _column_suffix(label: str) -> str:
    """A feature group's label → the end of its first feature column name."""
    mapping = {"hour of day (UTC)": "hour_sin", "day of week": "dow_sin"}
    if label in mapping:
        return mapping[label]
    if " against its series" in label:
        return f"series_{label.split(' ')[0]}_dev"
    if " against series medians" in label:
        return f"service_{label.split(' ')[0]}_dev_1m"
    for entity in ("service", "host", "user"):
        suffixes = {f"events of this {entity} in the same minute": "events_1m",
                    f"error share of this {entity}'s events in the same minute": "error_share_1m",
                    f"seconds since this {entity}'s previous event": "gap_s"}
        if label in suffixes:
            return f"{'actor' if entity == 'user' else entity}_{suffixes[label]}"
    return label.split(" (")[0]


def test_reference_events_are_never_their_own_neighbours(demo_run):
    from ocsf_ray.index import FamilyScorer

    _, out, _ = demo_run
    scorer = FamilyScorer.load(str(out / "bundle"), "6003_log")
    reference = scorer.index.reference.head(500)
    found = scorer.neighbours(reference)
    assert not (found.ids == np.arange(500)[:, None]).any()
    assert (found.ids >= 0).all()


def test_score_in_another_process_gives_the_same_scores_and_counts_rejects(demo_run, tmp_path):
    """The bundle written by `run` scores the same events identically in a fresh process;
    malformed rows in the input go to rejects and the counts add up."""
    root, out, _ = demo_run
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"class_uid": 6003, "time": "not a time"}\n{not json\n')
    scored_out = tmp_path / "scored"
    command = [sys.executable, "-m", "ocsf_ray.cli", "score", str(root / "archive" / "events"), str(bad),
               "--model", str(out / "bundle"), "--out", str(scored_out), "--num-cpus", "2", "--explain-top", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    again, first = read_scores(scored_out), read_scores(out)
    assert again.height == first.height
    joined = first.join(again, on="metadata_uid", suffix="_again").drop_nulls("anomaly_score")
    assert joined.height == first.drop_nulls("anomaly_score").height
    assert np.allclose(joined["anomaly_score"], joined["anomaly_score_again"], atol=1e-5)
    assert (joined["is_anomaly"] == joined["is_anomaly_again"]).all()
    rejects = pl.read_parquet(scored_out / "rejects" / "*.parquet")
    assert rejects.height == 2 and set(rejects.get_column("source_file").str.split("/").list.last()) == {"bad.ndjson"}
    assert "rejected" in done.stderr and json.loads((scored_out / "explanations.json").read_text())


def test_top_events_are_distinct_when_a_uid_repeats(demo_run, tmp_path):
    """One metadata_uid over the 20 highest-scored rows (a producer reusing uids across
    files): the explained top list names it once, by its highest-scored row, and then
    the next distinct events."""
    from ocsf_ray.index.triage import explain_top

    _, out, _ = demo_run
    scores = read_scores(out).drop_nulls("anomaly_score")
    family = scores.sort("anomaly_score", descending=True).get_column("family")[0]
    scores = scores.filter(pl.col("family") == family).sort(["anomaly_score", "metadata_uid"], descending=[True, False])
    repeated = scores.get_column("metadata_uid").head(20).implode()
    renamed = (pl.when(pl.col("metadata_uid").is_in(repeated)).then(pl.lit("repeated"))
               .otherwise(pl.col("metadata_uid")).alias("metadata_uid"))
    for part in ("features", "canonical"):
        for path in (out / part / family).rglob("*.parquet"):
            copy = tmp_path / path.relative_to(out)
            copy.parent.mkdir(parents=True, exist_ok=True)
            pl.read_parquet(path).with_columns(renamed).write_parquet(copy)
    (tmp_path / "scores").mkdir()
    scores.with_columns(renamed).write_parquet(tmp_path / "scores" / "part-0.parquet")
    explained = explain_top(str(out / "bundle"), str(tmp_path), 5, top_features=1)
    others = scores.filter(~pl.col("metadata_uid").is_in(repeated)).get_column("metadata_uid").head(4).to_list()
    assert [e["metadata_uid"] for e in explained] == ["repeated", *others]
    assert explained[0]["anomaly_score"] == pytest.approx(scores.get_column("anomaly_score")[0], rel=1e-4)


def test_the_scorer_is_an_estimator_with_pyods_conventions(demo_run):
    """fit → decision_scores_ on the fit rows in their order, threshold_ from contamination
    (the share of fit rows labelled 1), decision_function on the same rows gives the same
    scores (each row is still excluded from its own neighbours and counts)."""
    from ocsf_ray.index import FamilyScorer
    from ocsf_ray.train.bundle import load_family

    _, out, _ = demo_run
    features = pl.read_parquet(out / "features" / "6003_log" / "*.parquet").sample(3000, seed=0)
    detector = FamilyScorer(load_family(str(out / "bundle"), "6003_log"), contamination=0.02).fit(features)
    assert detector.decision_scores_.shape == (3000,)
    assert 0.015 <= detector.labels_.mean() <= 0.02
    np.testing.assert_allclose(detector.decision_function(features), detector.decision_scores_, atol=1e-5)
    shuffled = features.sample(fraction=1.0, shuffle=True, seed=1)
    by_uid = dict(zip(features.get_column("metadata_uid"), detector.decision_scores_))
    np.testing.assert_allclose(detector.decision_function(shuffled),
                               [by_uid[u] for u in shuffled.get_column("metadata_uid")], atol=1e-5)
