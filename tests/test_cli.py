"""The `ocsf-ray` console: verbs listed, bad input refused in one line, featurize summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from ocsf_ray.cli import app
from ocsf_shapes import api_events


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from ocsf_ray.cli import app; app()", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_help_lists_the_verbs():
    result = run_cli("--help")
    assert result.returncode == 0
    for verb in ("synth", "featurize"):
        assert verb in result.stdout


def test_unreadable_input_is_a_one_line_error(tmp_path):
    result = run_cli("featurize", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: no such file or directory: {tmp_path / 'missing.parquet'}"]
    assert not (tmp_path / "out").exists()


def test_featurize_prints_counts_and_writes_outputs(ray_session, tmp_path, write_ndjson):
    lines = [json.dumps(e) for e in api_events(150, seed=9)] + ["{broken"]
    path = write_ndjson("events.ndjson", lines)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["featurize", path, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "151" in result.output and "150" in result.output  # read, accepted
    assert "6003_log" in result.output
    assert "http_request_url_path~url" in result.output
    features = pl.read_parquet(out / "features" / "6003_log")
    assert features.height == 150
    assert pl.read_parquet(out / "rejects").height == 1
    spec = json.loads((out / "feature_spec.json").read_text())
    assert "6003_log" in spec["families"]
    # a second run replaces the first instead of mixing with it
    again = CliRunner().invoke(app, ["featurize", path, "--out", str(out)])
    assert again.exit_code == 0
    assert pl.read_parquet(out / "features" / "6003_log").height == 150


def test_synth_then_featurize_through_the_cli(ray_session, tmp_path):
    archive = tmp_path / "archive"
    made = CliRunner().invoke(app, ["synth", "--out", str(archive), "--events", "6000", "--services", "4",
                                    "--incidents", "1", "--days", "0.125", "--seed", "3"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["featurize", str(archive / "events"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "feature_spec.json").read_text())["families"]
    assert {"6003_log", "6003_trace", "99_metric", "3002_log"} <= set(spec)
    labels = pl.read_parquet(archive / "ground_truth" / "labels.parquet")
    features = pl.concat([pl.read_parquet(out / "features" / f).select("metadata_uid", "source_kind") for f in spec])
    assert features.height == labels.height  # every generated event was accepted and featurized
    assert set(features["metadata_uid"]) == set(labels["metadata_uid"])
    assert not (out / "rejects").exists()
    trace = features.filter(pl.col("metadata_uid").is_in(
        pl.read_parquet(out / "features" / "6003_trace")["metadata_uid"].implode()))
    assert set(trace["source_kind"]) == {"trace"}


def test_train_and_tune_refuse_what_is_not_a_featurize_output(tmp_path):
    smoke = str(Path(__file__).parent.parent / "tune_configs" / "smoke.yaml")
    for verb in (["train"], ["tune", "--config", smoke]):
        result = run_cli(*verb, "--features", str(tmp_path), "--out", str(tmp_path / "b"))
        assert result.returncode == 2
        assert result.stderr.strip().startswith("error: not a featurize output")
        assert len(result.stderr.strip().splitlines()) == 1


def test_score_evaluate_and_run_refuse_bad_arguments_in_one_line(tmp_path):
    events = tmp_path / "e.ndjson"
    events.write_text("{}\n")
    bad_yaml = tmp_path / "deps.yaml"
    bad_yaml.write_text("frontend: checkout\n")  # callees must be a list
    cases = {
        ("score", str(events), "--model", str(tmp_path), "--out", str(tmp_path / "o")): "error: not a model bundle",
        ("evaluate", "--scores", str(tmp_path), "--labels", str(events)): "error: no scores under",
        ("run", str(events), "--out", str(tmp_path / "o"), "--percentile", "99", "--contamination", "0.01"):
            "error: give --percentile or --contamination",
        ("run", str(events), "--out", str(tmp_path / "o"), "--contamination", "1.5"): "error: --contamination must be",
        ("rca", str(events), "--out", str(tmp_path / "o"), "--scores", str(tmp_path / "none")): "error: scores directory not found",
        ("rca", str(events), "--out", str(tmp_path / "o"), "--dependencies", str(tmp_path / "d.yaml")):
            "error: dependencies file not found",
        ("rca", str(events), "--out", str(tmp_path / "o"), "--dependencies", str(bad_yaml)):
            "error: " + str(bad_yaml) + ": expected a mapping of caller to a list of callees",
    }
    for args, message in cases.items():
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().startswith(message), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
