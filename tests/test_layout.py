"""Who may import whom (the library never imports the console, jobs or the Serve app),
and the Ray jobs' arguments, which come from the options dataclasses."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ocsf_ray.index import IndexOptions
from ocsf_ray.jobargs import add_options, options_from
from ocsf_ray.pipeline import PipelineOptions
from ocsf_ray.train import TrainOptions

REPO = Path(__file__).resolve().parents[1]
CONSOLE = {"ocsf_ray.cli", "ocsf_ray.cli_views"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_library_imports_no_console_job_or_serve_code():
    library = [p for p in (REPO / "ocsf_ray").rglob("*.py") if p.stem not in ("cli", "cli_views")]
    assert len(library) > 50
    for path in library:
        bad = {n for n in imported(path)
               if n.split(".")[0] in ("typer", "rich", "serve_app", "jobs") or any(n.startswith(c) for c in CONSOLE)}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_jobs_call_the_library_not_the_console():
    jobs = sorted((REPO / "jobs").glob("*.py"))
    assert {p.stem for p in jobs} >= {"pipeline", "featurize", "train", "score", "rca", "monitor", "tune"}
    for path in jobs:
        names = imported(path)
        assert not {n for n in names if n.split(".")[0] == "typer" or any(n.startswith(c) for c in CONSOLE)}, path.name
        assert "ocsf_ray.jobargs.run_job" in names, path.name


def parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, TrainOptions, skip=("seed",))
    add_options(parser, IndexOptions)
    return parser.parse_args(list(args))


def test_job_flags_keep_the_library_defaults_and_take_given_values():
    args = parse("--epochs", "2", "--corruption-rate", "0.25", "--k", "5")
    train = options_from(TrainOptions, args, PipelineOptions().train)
    assert train.epochs == 2 and train.corruption_rate == 0.25
    assert train.max_batches_per_epoch == PipelineOptions().train.max_batches_per_epoch  # the base's, not TrainOptions'
    assert train.batch_size == TrainOptions().batch_size
    index = options_from(IndexOptions, args)
    assert index.k == 5 and index.exclusion_minutes == IndexOptions().exclusion_minutes
    with pytest.raises(ValueError, match="corruption-rate"):
        options_from(TrainOptions, parse("--corruption-rate", "1.5"))
    with pytest.raises(ValueError, match="reference-max > k"):
        options_from(IndexOptions, parse("--k", "300000"))


def test_a_job_refuses_bad_arguments_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "jobs/train.py", "--features", str(tmp_path), "--out", str(tmp_path / "b"),
                             "--temperature", "0"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: need temperature > 0"
