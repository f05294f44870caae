"""Cluster operation: cluster.yaml validates; a pipeline job runs on a real two-node Ray cluster."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def test_cluster_yaml_validates_with_rays_own_schema():
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    groups = config["available_node_types"]
    assert {"head", "cpu", "gpu"} <= set(groups) and config["head_node_type"] == "head"
    assert groups["gpu"]["docker"]["worker_image"].endswith("-gpu")
    import ray

    assert ray.__version__ in config["docker"]["image"]  # the image matches the pinned Ray
    broken = copy.deepcopy(config)
    broken["available_node_types"]["cpu"]["min_workrs"] = 1  # a typo must not pass
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _node_ports() -> list[str]:
    agent, grpc, metrics, runtime_env = _free_ports(4)
    return [f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
            f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}"]


def _alive_nodes(address: str) -> int:
    from ray.util.state import list_nodes

    try:
        return sum(n.state == "ALIVE" for n in list_nodes(address=address))
    except Exception:  # noqa: BLE001 - any failure means the dashboard is not up yet
        return 0


@pytest.fixture(scope="module")
def two_nodes():
    """`ray start --head --block` plus a second `ray start --address --block`, each with its
    own temp dir. Stopping sends SIGTERM to each, which stops that node only (`ray stop`
    would stop every Ray on the machine, the test session's included)."""
    gcs, dashboard, client = _free_ports(3)
    # A throwaway cluster on loopback: no token auth (Ray's default for new clusters;
    # docs/OPERATIONS.md says how to submit to a cluster that has it).
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "disabled"}
    temp = [tempfile.mkdtemp(prefix="ocsf-ray-", dir="/tmp") for _ in range(2)]  # short: socket paths are limited
    head = [RAY, "start", "--block", "--head", f"--port={gcs}", "--num-cpus=2", "--include-dashboard=true",
            f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}", "--disable-usage-stats",
            f"--temp-dir={temp[0]}", *_node_ports()]
    worker = [RAY, "start", "--block", f"--address=127.0.0.1:{gcs}", "--num-cpus=2", f"--temp-dir={temp[1]}",
              *_node_ports()]
    address = f"http://127.0.0.1:{dashboard}"
    nodes = [subprocess.Popen(head, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 180
        while _alive_nodes(address) < 1:
            assert time.time() < deadline and nodes[0].poll() is None, "head node did not start"
            time.sleep(2)
        nodes.append(subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while _alive_nodes(address) < 2:
            assert time.time() < deadline and nodes[1].poll() is None, "second node did not join"
            time.sleep(2)
        yield address
    finally:
        for node in reversed(nodes):
            node.terminate()
            node.wait(timeout=120)
        for path in temp:
            shutil.rmtree(path, ignore_errors=True)


def _submit(client, entrypoint: str) -> str:
    """Submit a job from the repository and wait for it to end; its submission id."""
    from ray.job_submission import JobStatus

    submission = client.submit_job(
        entrypoint=f"{sys.executable} {entrypoint}",
        runtime_env={"working_dir": str(REPO), "excludes": [".venv", ".git", "demo-out", "**/__pycache__"]},
    )
    deadline = time.time() + 1800
    while client.get_job_status(submission) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.time() < deadline, "job did not finish in 30 minutes"
        time.sleep(5)
    assert client.get_job_status(submission) == JobStatus.SUCCEEDED, client.get_job_logs(submission)[-3000:]
    return submission


@pytest.fixture(scope="module")
def pipeline_job(two_nodes, object_store):
    """`jobs/pipeline.py` on the two-node cluster with its output on cluster storage (S3):
    the demo archive, features, bundle, scores and report all live there, so nothing can
    lean on the driver's disk being visible to the other node."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(two_nodes)
    out = f"{object_store}/pipeline"
    submission = _submit(client, f"jobs/pipeline.py --out {out} --demo-events 10000 --epochs 1 "
                                  "--max-batches-per-epoch 3 --workers 1 --explain-top 3")
    return client, submission, out


def test_pipeline_job_runs_on_both_nodes(pipeline_job, two_nodes):
    from ray.util.state import list_tasks

    from ocsf_ray.io.storage import parquet_files
    from ocsf_ray.io.storage import exists, read_bytes, read_json

    client, submission, out = pipeline_job
    assert parquet_files(f"{out}/scores")[0] and len(read_bytes(f"{out}/report.html")) > 1000
    assert read_json(f"{out}/evaluation.json")["method"]["auroc"] > 0.5
    assert exists(f"{out}/rca/evaluation.json")  # more than one source: the pipeline ran RCA
    assert "index" in read_json(f"{out}/bundle/manifest.json")
    job_id = client.get_job_info(submission).job_id
    tasks = list_tasks(address=two_nodes, filters=[("job_id", "=", job_id)], limit=10_000, raise_on_missing_output=False)
    nodes = {t.node_id for t in tasks if t.node_id}
    assert len(nodes) == 2, f"tasks ran on {len(nodes)} node(s)"


def test_score_job_reads_its_bundle_from_cluster_storage(pipeline_job):
    """`jobs/score.py` with the pipeline's bundle and archive on S3 gives every event the
    score the pipeline gave it: the scoring actors on both nodes loaded the same bundle."""
    from ocsf_ray.io.storage import read_parquet

    client, _, out = pipeline_job
    _submit(client, f"jobs/score.py {out}/archive/events --model {out}/bundle --out {out}/rescored --explain-top 0")
    columns = ["metadata_uid", "anomaly_score"]
    first = read_parquet(f"{out}/scores", columns).drop_nulls().sort("metadata_uid")
    again = read_parquet(f"{out}/rescored/scores", columns).drop_nulls().sort("metadata_uid")
    assert first.height > 1000 and first["metadata_uid"].equals(again["metadata_uid"])
    assert np.allclose(first["anomaly_score"].to_numpy(), again["anomaly_score"].to_numpy(), atol=1e-4)
