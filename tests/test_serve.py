"""Online scoring over real HTTP: a Ray Serve app on a small trained bundle, no mocks.

One app serves the whole module (starting Serve costs seconds); the reload test puts the
original bundle back when it is done.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest
import requests
from ocsf_shapes import api_events, flattened
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ocsf_ray.cli import app as cli

TOKEN = "test-token-3f9c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 512 * 1024


@pytest.fixture(scope="module")
def bundle(featurized, tmp_path_factory):
    """A tiny bundle of one family (6003_log), trained for a few batches and indexed."""
    from ocsf_ray.index import IndexOptions, index_bundle
    from ocsf_ray.train import TrainOptions, train_bundle

    path = str(tmp_path_factory.mktemp("serve-bundle"))
    options = TrainOptions(epochs=1, batch_size=64, d_model=32, n_blocks=1, embedding_dim=16,
                           val_batch_size=64, min_rows=200, max_batches_per_epoch=5)
    train_bundle(featurized, path, options, workers=1)
    index_bundle(path, featurized, IndexOptions())
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def url(bundle):
    from ray import serve

    from serve_app.app import build_app
    from serve_app.settings import TOKEN_ENV, ServeSettings

    settings = ServeSettings(model=bundle, max_body_bytes=MAX_BODY, max_events=1000, batch_wait_timeout_s=0.02,
                             scorer_num_cpus=0.5, ingress_num_cpus=0.25)
    os.environ[TOKEN_ENV] = TOKEN  # the builder hands it to the ingress's environment
    try:
        application = build_app(settings)
    finally:
        del os.environ[TOKEN_ENV]
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application, name="ocsf-ray-test", route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def score(url: str, events: list, **params) -> requests.Response:
    return requests.post(f"{url}/v1/score", json={"events": events}, params=params, headers=AUTH, timeout=120)


def metrics(url: str) -> dict[str, list]:
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_health_readiness_and_model(url, bundle):
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}
    ready = requests.get(f"{url}/readyz", timeout=30)
    manifest = json.load(open(os.path.join(bundle, "manifest.json")))
    assert ready.status_code == 200 and ready.json()["model_version"] == manifest["version"]
    model = requests.get(f"{url}/v1/model", headers=AUTH, timeout=30).json()
    assert model["version"] == manifest["version"] and model["percentile"] == 99.0
    family = model["families"]["6003_log"]
    assert family["categorical"] == manifest["families"]["6003_log"]["categorical"]
    assert family["features"] == family["categorical"] + family["numeric"] > 0


def test_single_and_batch_scoring_keep_input_order(url):
    events = api_events(30, seed=7)
    single = score(url, events[:1])
    assert single.status_code == 200
    (result,) = single.json()["results"]
    assert result["metadata_uid"] == "evt-7-0" and result["family"] == "6003_log"
    assert result["anomaly_score"] >= 0 and 0 <= result["percentile"] <= 100
    assert result["is_anomaly"] == (result["percentile"] >= 99.0)
    batch = score(url, events[::-1]).json()["results"]
    assert [r["metadata_uid"] for r in batch] == [f"evt-7-{i}" for i in range(29, -1, -1)]
    assert all("error" not in r for r in batch)


def test_nested_and_flattened_shapes_score_the_same(url):
    event = api_events(1, seed=8)[0]
    nested = score(url, [event]).json()["results"][0]
    flat = score(url, [flattened(event)]).json()["results"][0]
    assert flat["anomaly_score"] == pytest.approx(nested["anomaly_score"], abs=1e-9)


def test_events_that_cannot_be_normalised_get_their_own_error(url):
    good = api_events(3, seed=9)
    bad_time = {**good[0], "time": "yesterday-ish", "metadata": {"uid": "bad-time"}}
    bad_enum = {**good[0], "class_uid": "six thousand", "metadata": {"uid": "bad-enum"}}
    unknown = {**good[0], "class_uid": 3002, "metadata": {"uid": "auth-1"}}
    response = score(url, [good[0], bad_time, good[1], bad_enum, unknown, good[2]])
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["metadata_uid"] for r in results] == ["evt-9-0", "bad-time", "evt-9-1", "bad-enum", "auth-1", "evt-9-2"]
    assert "time: not a plausible time" in results[1]["error"] and "anomaly_score" not in results[1]
    assert "class_uid: not a non-negative integer" in results[3]["error"]
    assert "3002_log" in results[4]["error"] and "no model" in results[4]["error"]
    assert all(results[i]["anomaly_score"] is not None for i in (0, 2, 5))


def test_an_event_lacking_a_field_the_bundle_knows_is_scored_as_missing(url):
    event = api_events(1, seed=16)[0]
    event["http_response"] = {"code": 200}  # no latency: a numeric feature, and one its series windows use
    answer = score(url, [event])
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["anomaly_score"] is not None


def test_explain_adds_neighbours_and_feature_contributions(url, bundle):
    events = api_events(4, seed=10)
    plain = score(url, events).json()["results"]
    explained = score(url, events, explain="true").json()["results"]
    reference = set(pl.read_parquet(os.path.join(bundle, "6003_log", "reference.parquet"))["metadata_uid"])
    for before, item in zip(plain, explained):
        assert item["anomaly_score"] == pytest.approx(before["anomaly_score"], abs=1e-9)
        assert len(item["neighbours"]) == 20 and {n["metadata_uid"] for n in item["neighbours"]} <= reference
        distances = [n["distance"] for n in item["neighbours"]]
        assert distances == sorted(distances)
        contributions = [f["contribution"] for f in item["features"]]
        assert 0 < len(contributions) <= 5 and contributions == sorted(contributions, reverse=True)
        assert all(f["text"].startswith(f["feature"]) for f in item["features"])
    assert "neighbours" not in plain[0]


def test_online_scores_equal_batch_scores(url, tmp_path):
    """The events of one file, posted in one request, score as `ocsf-ray score` scores that
    file (window features see the same events on both paths)."""
    events = api_events(300, seed=5)
    path = tmp_path / "new.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    model = requests.get(f"{url}/v1/model", headers=AUTH, timeout=30).json()["path"]
    done = CliRunner().invoke(cli, ["score", str(path), "--model", model, "--out", str(tmp_path / "out"), "--explain-top", "0"])
    assert done.exit_code == 0, done.output
    batch = pl.read_parquet(tmp_path / "out" / "scores" / "*.parquet")
    online = pl.DataFrame(score(url, events).json()["results"]).select("metadata_uid", "anomaly_score", "percentile", "is_anomaly")
    joined = batch.join(online, on="metadata_uid", suffix="_online")
    assert joined.height == len(events) == batch.height
    assert (joined["anomaly_score"] - joined["anomaly_score_online"]).abs().max() <= 1e-5
    assert (joined["percentile"] - joined["percentile_online"]).abs().max() <= 1e-5
    assert (joined["is_anomaly"] == joined["is_anomaly_online"]).all()
    assert joined["anomaly_score"].n_unique() > 100  # real, varied scores, not a constant


def test_v1_needs_the_bearer_token(url):
    events = api_events(1, seed=11)
    assert requests.post(f"{url}/v1/score", json={"events": events}, timeout=30).status_code == 401
    wrong = requests.post(f"{url}/v1/score", json={"events": events}, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    basic = requests.get(f"{url}/v1/model", headers={"Authorization": f"Basic {TOKEN}"}, timeout=30)
    assert basic.status_code == 401
    assert requests.post(f"{url}/v1/reload", json={"model": "/tmp"}, timeout=30).status_code == 401
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200  # probes and scrapes stay open


def test_too_many_events_and_too_large_bodies_are_413(url):
    too_many = score(url, [{"time": 1}] * 1001)
    assert too_many.status_code == 413 and "at most 1,000" in too_many.json()["detail"]
    explain_many = score(url, api_events(101, seed=12), explain="true")
    assert explain_many.status_code == 413
    padding = {"events": [{"time": 1, "message": "x" * 1000}] * 600}  # about 600 KB > 512 KiB
    declared = requests.post(f"{url}/v1/score", json=padding, headers=AUTH, timeout=60)
    assert declared.status_code == 413 and "at most" in declared.json()["detail"]
    body = json.dumps(padding).encode()
    chunked = requests.post(f"{url}/v1/score", data=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                            headers=AUTH | {"Content-Type": "application/json"}, timeout=60)
    assert chunked.status_code == 413 and "over" in chunked.json()["detail"]


def test_malformed_json_and_wrong_types_are_422_with_the_field_path(url):
    broken = requests.post(f"{url}/v1/score", data=b'{"events": [{"time": 1}', headers=AUTH, timeout=30)
    assert broken.status_code == 422 and "Invalid JSON" in broken.json()["detail"]
    cases = {
        json.dumps({"events": "not a list"}): "body.events",
        json.dumps({"events": [{"time": 1}, 5]}): "body.events.1",
        json.dumps({"events": []}): "body.events",
        json.dumps({"event": [{"time": 1}]}): "body.event",
    }
    for body, where in cases.items():
        answer = requests.post(f"{url}/v1/score", data=body, headers=AUTH, timeout=30)
        assert answer.status_code == 422, body
        assert answer.json()["detail"].startswith(f"{where}:") or f"; {where}:" in answer.json()["detail"], answer.text
        assert "Traceback" not in answer.text
    flag = score(url, api_events(1, seed=13), explain="maybe")
    assert flag.status_code == 422 and "query.explain" in flag.json()["detail"]
    reload = requests.post(f"{url}/v1/reload", json={"model": 7}, headers=AUTH, timeout=30)
    assert reload.status_code == 422 and "body.model" in reload.json()["detail"]
    assert requests.get(f"{url}/readyz", timeout=30).status_code == 200  # and the replicas live on
    assert score(url, api_events(1, seed=13)).status_code == 200


def test_reload_swaps_bundles_and_a_failed_reload_keeps_the_old_one(url, bundle, tmp_path):
    retrained = tmp_path / "retrained"
    shutil.copytree(bundle, retrained)
    manifest = json.loads((retrained / "manifest.json").read_text())
    manifest["version"] = "retrained-1"
    (retrained / "manifest.json").write_text(json.dumps(manifest))
    events = api_events(5, seed=14)
    before = score(url, events).json()
    try:
        swapped = requests.post(f"{url}/v1/reload", json={"model": str(retrained)}, headers=AUTH, timeout=120)
        assert swapped.status_code == 200 and swapped.json()["version"] == "retrained-1"
        after = score(url, events).json()
        assert after["model_version"] == "retrained-1" != before["model_version"]
        assert [r["anomaly_score"] for r in after["results"]] == pytest.approx([r["anomaly_score"] for r in before["results"]])

        broken = tmp_path / "broken"
        shutil.copytree(retrained, broken)
        manifest["version"] = "broken-1"
        (broken / "manifest.json").write_text(json.dumps(manifest))
        (broken / "6003_log" / "model.pt").write_bytes(b"not a checkpoint")
        failed = requests.post(f"{url}/v1/reload", json={"model": str(broken)}, headers=AUTH, timeout=120)
        assert failed.status_code == 422 and "previous one keeps serving" in failed.json()["detail"]
        assert "6003_log" in failed.json()["detail"] or "model.pt" in failed.json()["detail"]
        assert requests.get(f"{url}/v1/model", headers=AUTH, timeout=30).json()["version"] == "retrained-1"
        assert score(url, events).json()["model_version"] == "retrained-1"
        missing = requests.post(f"{url}/v1/reload", json={"model": str(tmp_path / "nothing")}, headers=AUTH, timeout=60)
        assert missing.status_code == 422 and "not a model bundle" in missing.json()["detail"]

        manifest["version"] = "retrained-2"  # retrained in place: the same path reloads too
        (retrained / "manifest.json").write_text(json.dumps(manifest))
        again = requests.post(f"{url}/v1/reload", json={"model": str(retrained)}, headers=AUTH, timeout=120)
        assert again.status_code == 200 and score(url, events).json()["model_version"] == "retrained-2"
    finally:
        restored = requests.post(f"{url}/v1/reload", json={"model": bundle}, headers=AUTH, timeout=120)
    assert restored.status_code == 200 and score(url, events).json()["model_version"] == before["model_version"]


def test_reload_from_cluster_storage(url, bundle, object_store, tmp_path):
    """A bundle on S3: every scorer replica reads it from there, not from a local disk."""
    from ocsf_ray.io.storage import copy_tree, read_json, write_json

    remote = f"{object_store}/{tmp_path.name}/bundle"
    copy_tree(bundle, remote, skip=("_runs",))
    write_json(read_json(f"{remote}/manifest.json") | {"version": "on-s3"}, f"{remote}/manifest.json")
    events = api_events(5, seed=15)
    before = score(url, events).json()
    try:
        swapped = requests.post(f"{url}/v1/reload", json={"model": remote}, headers=AUTH, timeout=120)
        assert swapped.status_code == 200 and swapped.json()["version"] == "on-s3"
        after = score(url, events).json()
        assert after["model_version"] == "on-s3"
        assert [r["anomaly_score"] for r in after["results"]] == pytest.approx([r["anomaly_score"] for r in before["results"]])
    finally:
        restored = requests.post(f"{url}/v1/reload", json={"model": bundle}, headers=AUTH, timeout=120)
    assert restored.status_code == 200


def test_concurrent_requests_share_batches_and_metrics_count_them(url):
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
    events = api_events(16, seed=15)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda e: score(url, [e]), events))
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["results"][0]["metadata_uid"] for a in answers] == [e["metadata"]["uid"] for e in events]
    found = metrics(url)
    batches = {s.name: s for s in found["ocsf_serve_batch_requests"] if s.name != "ocsf_serve_batch_requests_created"}
    singles = next(s.value for s in found["ocsf_serve_batch_requests"] if s.labels.get("le") == "1.0")
    assert batches["ocsf_serve_batch_requests_count"].value > singles  # some batch held more than one request
    requests_ok = {(s.labels["endpoint"], s.labels["status"]): s.value
                   for s in found["ocsf_serve_requests"] if s.name == "ocsf_serve_requests_total"}
    assert batches["ocsf_serve_batch_requests_sum"].value == requests_ok[("/v1/score", "200")]  # each batch counted once
    assert requests_ok[("/healthz", "200")] >= 1
    scored = next(s.value for s in found["ocsf_serve_events_scored"] if s.name.endswith("_total"))
    assert scored >= 16
    latency = [s for s in found["ocsf_serve_request_seconds"]
               if s.name.endswith("_count") and s.labels["endpoint"] == "/v1/score"]
    assert latency and latency[0].value >= 16
