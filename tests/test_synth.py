"""ocsf_ray.synth: determinism, ground truth consistency, OCSF shape, read-back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ocsf_ray.synth import SOURCES, SynthConfig, generate_archive
from ocsf_ray.synth.incidents import KINDS
from ocsf_ray.synth.strings import decimal128, hex128

SMALL = dict(events=8_000, services=5, incidents=2, days=0.25)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _service(source: str) -> pl.Expr:
    """Where each source names its service (6008 logs only in metadata.product.name)."""
    if source == "logs":
        return pl.coalesce(pl.col("api").struct.field("service").struct.field("name"),
                           pl.col("metadata").struct.field("product").struct.field("name"))
    return pl.col("service").struct.field("name")


def _events(out: Path) -> pl.DataFrame:
    return pl.concat([
        pl.read_parquet(out / "events" / s / "**" / "*.parquet").select(
            metadata_uid=pl.col("metadata").struct.field("uid"), time="time",
            service=_service(s), source=pl.lit(s))
        for s in SOURCES
    ])


@pytest.fixture(scope="module")
def archive(ray_session, tmp_path_factory):
    """Every incident kind once, on an 8-service system over half a day."""
    out = tmp_path_factory.mktemp("synth") / "archive"
    progress = []
    summary = generate_archive(SynthConfig(out=out, events=60_000, services=8, incidents=len(KINDS), days=0.5),
                               on_progress=lambda done, total: progress.append((done, total)))
    return summary, progress


@pytest.mark.parametrize("fmt", ["parquet", "ndjson"])
def test_same_seed_same_bytes_other_seed_other_bytes(ray_session, tmp_path, fmt):
    first = generate_archive(SynthConfig(out=tmp_path / "a", format=fmt, **SMALL))
    again = generate_archive(SynthConfig(out=tmp_path / "b", format=fmt, **SMALL))
    other = generate_archive(SynthConfig(out=tmp_path / "c", format=fmt, seed=1, **SMALL))
    a, b, c = (_files(s.out) for s in (first, again, other))
    assert a == b
    assert a["ground_truth/labels.parquet"] != c["ground_truth/labels.parquet"]
    assert [k for k in a if k.startswith("events/")] and all(a[k] != c.get(k) for k in a if k.startswith("events/"))


def test_summary_counts_and_progress(archive):
    summary, progress = archive
    assert summary.total_events == pytest.approx(60_000, rel=0.02)
    assert all(summary.events_per_source[s] > 0 for s in SOURCES)
    assert progress[0] == (0, progress[-1][1]) and progress[-1][0] == progress[-1][1]
    layout = {p.relative_to(summary.events_dir).parts[0] for p in summary.events_dir.rglob("part-*.parquet")}
    assert layout == set(SOURCES)
    hour_dirs = {p.parent.name for p in summary.events_dir.rglob("part-*.parquet")}
    assert all(len(h) == 10 and h.startswith("20260105") for h in hour_dirs)


def test_labels_cover_every_event_exactly_once(archive):
    summary, _ = archive
    events = _events(summary.out)
    labels = pl.read_parquet(summary.ground_truth_dir / "labels.parquet")
    assert labels.columns == ["metadata_uid", "is_anomaly", "incident_id"]
    assert events["metadata_uid"].is_unique().all() and labels["metadata_uid"].is_unique().all()
    assert labels.height == events.height == summary.total_events
    assert events.join(labels, on="metadata_uid", how="anti").is_empty()
    assert (labels["is_anomaly"] == labels["incident_id"].is_not_null()).all()
    assert labels["is_anomaly"].sum() == summary.anomalous_events


def test_every_incident_has_labelled_events_and_root_event(archive):
    summary, _ = archive
    incidents = json.loads((summary.ground_truth_dir / "incidents.json").read_text())
    assert {i["type"] for i in incidents} == {k.name for k in KINDS}
    labels = pl.read_parquet(summary.ground_truth_dir / "labels.parquet")
    counts = dict(labels.group_by("incident_id").len().drop_nulls().iter_rows())
    changes = pl.read_parquet(summary.events_dir / "config" / "**" / "*.parquet")
    for inc in incidents:
        assert counts.get(inc["id"], 0) == inc["labelled_events"] > 0
        assert inc["start"] < inc["end"] and inc["root_cause_kind"]
        if inc["type"] in ("bad_deployment", "cache_invalidation_storm"):
            root = changes.filter(pl.col("metadata").struct.field("uid") == inc["root_event_uid"])
            assert root["time"].to_list() == [inc["start"]]
            assert root["service"].struct.field("name").to_list() == [inc["root_service"]]
            assert labels.filter(pl.col("metadata_uid") == inc["root_event_uid"])["incident_id"].to_list() == [inc["id"]]


def test_root_anomalies_start_before_their_callers(archive):
    summary, _ = archive
    labels = pl.read_parquet(summary.ground_truth_dir / "labels.parquet")
    anomalous = _events(summary.out).join(labels.filter("is_anomaly"), on="metadata_uid")
    first = anomalous.group_by("incident_id", "service").agg(pl.col("time").min())
    for inc in json.loads((summary.ground_truth_dir / "incidents.json").read_text()):
        starts = dict(first.filter(pl.col("incident_id") == inc["id"]).select("service", "time").iter_rows())
        root = starts.pop(inc["root_service"])
        callers = {a["service"] for a in inc["affected_services"] if a["hop"] > 0}
        assert callers & set(starts), inc["id"]  # the incident did reach a caller
        assert all(root < t for s, t in starts.items() if s in callers), (inc["id"], root, starts)


def test_events_are_nested_ocsf(archive):
    summary, _ = archive
    logs = pl.read_parquet(summary.events_dir / "logs" / "**" / "*.parquet")
    assert set(logs["class_uid"].unique()) == {6003, 6008}
    assert (logs["type_uid"] == logs["class_uid"] * 100 + logs["activity_id"]).all()
    assert logs["metadata"].struct.field("version").unique().to_list() == ["1.3.0"]
    errors = logs.filter(pl.col("class_uid") == 6008)
    assert errors["api"].is_null().all()  # 6008 names its service only as the product
    api = logs.filter(pl.col("class_uid") == 6003)
    assert api["api"].struct.field("service").struct.field("name").is_not_null().all()
    assert api["message"].str.contains(r"\d").mean() > 0.5
    traces = pl.read_parquet(summary.events_dir / "traces" / "**" / "*.parquet")
    assert traces["metadata"].struct.field("profiles").list.first().unique().to_list() == ["trace"]
    span = traces["span"].struct.unnest()
    assert span["uid"].is_unique().all()
    parents = set(span["parent_uid"].drop_nulls())
    assert parents <= set(span["uid"])  # every parent span is in the archive
    assert (traces["end_time"] - traces["start_time"] == traces["duration"]).all()
    metrics = pl.read_parquet(summary.events_dir / "metrics" / "**" / "*.parquet")
    names = set(metrics["metric"].struct.field("name").unique())
    assert {"cpu_usage_percent", "memory_usage_bytes", "request_rate", "error_rate",
            "latency_p95_ms", "requests_total"} <= names
    assert set(metrics["metric"].struct.field("type").unique()) == {"gauge", "counter"}


def test_log_trace_ids_are_decimal_forms_of_span_trace_ids(archive):
    summary, _ = archive
    logs = pl.read_parquet(summary.events_dir / "logs" / "**" / "*.parquet")
    decimal = logs["trace"].struct.field("uid").drop_nulls()
    assert 0.3 < len(decimal) / logs.height < 0.9 and decimal.str.contains(r"^\d+$").all()
    hexes = set(pl.read_parquet(summary.events_dir / "traces" / "**" / "*.parquet")["trace"].struct.field("uid"))
    assert {format(int(d), "032x") for d in decimal.head(500)} <= hexes


def test_requests_total_is_a_counter_that_resets_on_deploys(archive):
    summary, _ = archive
    metrics = pl.read_parquet(summary.events_dir / "metrics" / "**" / "*.parquet")
    counter = (metrics.filter(pl.col("metric").struct.field("name") == "requests_total")
               .select(host=pl.col("device").struct.field("hostname"), time="time",
                       value=pl.col("metric").struct.field("value")).sort("host", "time"))
    drops = counter.with_columns(step=pl.col("value").diff().over("host")).filter(pl.col("step") < 0)
    assert counter["value"].max() > 0 and drops.height < counter["host"].n_unique() * 6


def test_ndjson_holds_nested_objects(ray_session, tmp_path):
    summary = generate_archive(SynthConfig(out=tmp_path / "n", format="ndjson", **SMALL))
    files = sorted(summary.events_dir.rglob("part-*.ndjson.gz"))
    assert {f.relative_to(summary.events_dir).parts[0] for f in files} == set(SOURCES)
    rows = [json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).splitlines()]
    assert len(rows) == summary.total_events
    assert all(isinstance(r["metadata"], dict) and r["metadata"]["uid"] for r in rows)


@pytest.mark.parametrize("fmt", ["parquet", "ndjson"])
def test_reads_back_through_ingestion_without_rejects(ray_session, tmp_path, fmt):
    from ocsf_ray.io import read_events

    summary = generate_archive(SynthConfig(out=tmp_path / "a", format=fmt, **SMALL))
    archive = read_events([str(summary.events_dir)], str(tmp_path / "ingested"))
    assert archive.rejected == 0 and archive.accepted == archive.rows_read == summary.total_events
    topology = json.loads((summary.ground_truth_dir / "topology.json").read_text())
    names = {s["name"] for s in topology["services"]}
    assert set().union(*(f.service_names for f in archive.families.values())) <= names


def test_existing_archive_is_not_overwritten_by_default(ray_session, tmp_path):
    generate_archive(SynthConfig(out=tmp_path, **SMALL))
    with pytest.raises(FileExistsError):
        generate_archive(SynthConfig(out=tmp_path, **SMALL))


@pytest.mark.parametrize("bad", [dict(events=10), dict(services=2), dict(format="csv"),
                                 dict(days=0.01), dict(incidents=30, days=0.5)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SynthConfig(**bad)


def test_decimal_trace_ids_match_python_ints():
    rng = np.random.default_rng(7)
    hi, lo = (rng.integers(0, 2**64, 200, dtype=np.uint64, endpoint=False) for _ in range(2))
    hi[:2], lo[:2] = 0, [0, 5]
    expected = [str(int(h, 16)) for h in hex128(hi, lo).to_pylist()]
    assert decimal128(hi, lo).to_pylist() == expected
