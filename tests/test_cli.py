"""The `ocsf-ray` console: verbs listed, bad input refused in one line, featurize summary."""

from __future__ import annotations

import json
import subprocess
import sys

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
