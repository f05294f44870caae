"""Cluster operation: cluster.yaml validates; a pipeline job runs on a real two-node Ray cluster."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def test_pipeline_job_runs_on_both_nodes(two_nodes, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient
    from ray.util.state import list_tasks

    client = JobSubmissionClient(two_nodes)
    out = tmp_path / "out"
    submission = client.submit_job(
        entrypoint=f"{sys.executable} jobs/pipeline.py --out {out} --events 10000 --epochs 1 "
                   "--max-batches-per-epoch 3 --workers 1 --explain-top 3",
        runtime_env={"working_dir": str(REPO), "excludes": [".venv", ".git", "demo-out", "**/__pycache__"]},
    )
    deadline = time.time() + 1800
    while client.get_job_status(submission) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.time() < deadline, "job did not finish in 30 minutes"
        time.sleep(5)
    logs = client.get_job_logs(submission)
    assert client.get_job_status(submission) == JobStatus.SUCCEEDED, logs[-3000:]

    scores = list((out / "scores").glob("*.parquet"))
    assert scores and (out / "report.html").stat().st_size > 1000
    assert json.loads((out / "evaluation.json").read_text())["method"]["auroc"] > 0.5
    assert (out / "rca" / "evaluation.json").exists()  # more than one source: the pipeline ran RCA
    job_id = client.get_job_info(submission).job_id
    tasks = list_tasks(address=two_nodes, filters=[("job_id", "=", job_id)], limit=10_000, raise_on_missing_output=False)
    nodes = {t.node_id for t in tasks if t.node_id}
    assert len(nodes) == 2, f"tasks ran on {len(nodes)} node(s)"
