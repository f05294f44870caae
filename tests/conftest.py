"""Shared fixtures: one real local Ray for the whole session, small OCSF archives."""

from __future__ import annotations

import json
import os
import socket

import pytest
import ray

from ocsf_shapes import api_events


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Cluster storage for the tests is a local S3 server (moto), started on demand by the
# `object_store` fixture. Its address is in the environment before any Ray starts, so
# every Ray worker, and every node a test starts, reaches it the way nodes of a real
# cluster reach S3 (pyarrow reads AWS_ENDPOINT_URL).
S3_PORT = _free_port()
os.environ.update({
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
})


@pytest.fixture(scope="session")
def object_store():
    """A real S3 API on loopback with a bucket; yields the bucket's URI (s3://...)."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{S3_PORT}", scheme="http",
                      allow_bucket_creation=True).create_dir("ocsf-ray-test")
    yield "s3://ocsf-ray-test"
    server.stop()


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
