"""Shared fixtures: one real local Ray for the whole session, small OCSF archives."""

from __future__ import annotations

import json

import pytest
import ray

from ocsf_shapes import api_events


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray with more logical CPUs than this 2-core machine has cores, so
    Data tasks and Train workers can run side by side in later tests."""
    from ocsf_ray.runtime import start_ray

    start_ray(num_cpus=4)
    yield
    ray.shutdown()


@pytest.fixture
def write_ndjson(tmp_path):
    """Write a list of dicts (or raw lines) as an NDJSON file and return its path."""

    def write(name: str, records: list) -> str:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    return write


@pytest.fixture(scope="session")
def featurized(ray_session, tmp_path_factory):
    """A `featurize` output of 1,500 API events (one family, 6003_log) for training tests."""
    from ocsf_ray.features import featurize_archive
    from ocsf_ray.io import read_events

    raw = tmp_path_factory.mktemp("raw")
    events = api_events(1500, seed=21)
    (raw / "events.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    out = tmp_path_factory.mktemp("features")
    featurize_archive(read_events([str(raw)], str(out)), str(out))
    return str(out)


def collect(dataset):
    """A (small) Ray Dataset as one Polars frame, for assertions."""
    import polars as pl
    import pyarrow as pa

    tables = ray.get(dataset.to_arrow_refs())
    return pl.from_arrow(pa.concat_tables(tables, promote_options="permissive"))
