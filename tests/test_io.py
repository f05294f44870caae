"""Ingestion: shapes, types, identity, rejects and input errors."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocsf_ray.io import (
    IngestOptions, InputError, canonicalize, decimal_to_hex128, plan_chunks, read_chunk,
    read_events, resolve_inputs,
)
from ocsf_shapes import api_events, flattened, json_strings


def canonical_of(path: str) -> pl.DataFrame:
    """Canonical events of a single-chunk file, in-process (no Ray)."""
    (chunk,) = plan_chunks(resolve_inputs([path]))
    flat, read_rejects = read_chunk(chunk)
    events, rejects = canonicalize(flat, chunk.file.uri, IngestOptions())
    assert read_rejects.height == 0 and rejects.height == 0
    return events.sort("metadata_uid")


def test_three_shapes_give_identical_canonical_rows(tmp_path, write_ndjson):
    events = api_events(60, seed=3)
    nested = write_ndjson("nested.ndjson", events)
    flat = write_ndjson("flat.ndjson", [flattened(e) for e in events])
    strings = write_ndjson("strings.jsonl", [json_strings(e) for e in events])
    parquet = str(tmp_path / "nested.parquet")
    pq.write_table(pa.Table.from_pylist(events), parquet)
    seed_like = str(tmp_path / "both.parquet")  # JSON strings *and* flattened columns, like the seed sample
    pq.write_table(pa.Table.from_pylist([json_strings(e) | flattened(e) for e in events]), seed_like)

    reference = canonical_of(nested)
    assert reference.height == 60
    assert "http_request_url_path" in reference.columns
    assert reference["resources_count"].to_list() == [2] * 60
    assert reference["resources_type"].unique().to_list() == ["order"]
    assert json.loads(reference["resources"][0])[1] == {"type": "user", "uid": "u"}
    for other in (flat, strings, parquet, seed_like):
        frame = canonical_of(other)
        assert sorted(frame.columns) == sorted(reference.columns), other
        assert frame.select(reference.columns).equals(reference), other


def test_types_time_units_and_trace_ids(write_ndjson):
    base = api_events(1)[0]
    trace = 181958587857711254581963225683264747715
    variants = [
        base | {"time": 1768921951, "metadata": {"uid": "s"}},
        base | {"time": 1768921951935, "metadata": {"uid": "ms"}},
        base | {"time": 1768921951935123, "metadata": {"uid": "us"}},
        base | {"time": "2026-01-20T15:12:31.935Z", "metadata": {"uid": "iso"}},
        base | {"time": "2026-01-20 17:12:31.935+02:00", "metadata": {"uid": "iso-offset"}},
        base | {"time": "1768921951.935", "metadata": {"uid": "s-text"}},
        base | {"trace_id": str(trace), "metadata": {"uid": "dec"}},
        base | {"trace_id": "88e3f30548617fcedcf74271293b38c3", "metadata": {"uid": "hex"}},
        base | {"severity_id": "4", "class_uid": 6003.0, "metadata": {"uid": "text-enum"}},
    ]
    frame = canonical_of(write_ndjson("t.ndjson", variants))
    by_uid = {r["metadata_uid"]: r for r in frame.to_dicts()}
    assert frame.schema["time"] == pl.Int64
    assert by_uid["s"]["time"] == 1768921951000
    assert by_uid["ms"]["time"] == by_uid["us"]["time"] == by_uid["iso"]["time"] == 1768921951935
    assert by_uid["iso-offset"]["time"] == by_uid["s-text"]["time"] == 1768921951935
    assert by_uid["dec"]["trace_id"] == "88e3f30548617fcedcf74271293b38c3" == format(trace, "032x")
    assert by_uid["hex"]["trace_id"] == "88e3f30548617fcedcf74271293b38c3"
    assert by_uid["text-enum"]["severity_id"] == 4 and frame.schema["severity_id"] == pl.Int64
    assert frame.schema["http_response_code"] == pl.Float64
    assert frame.schema["actor_user_uid"] == pl.String


def test_decimal_to_hex128_is_exact_at_the_edges():
    values = [0, 1, 2**64 - 1, 2**64, 2**127 + 12345, 2**128 - 1]
    hexed = decimal_to_hex128(pl.Series([str(v) for v in values])).to_list()
    assert hexed == [format(v, "032x") for v in values]


def test_surrogate_uid_when_metadata_uid_is_absent(write_ndjson):
    events = [{k: v for k, v in e.items() if k != "metadata"} for e in api_events(3)]
    frame = canonical_of(write_ndjson("no-uid.ndjson", events))
    assert sorted(frame["metadata_uid"].to_list()) == ["no-uid.ndjson:1", "no-uid.ndjson:2", "no-uid.ndjson:3"]


BAD_LINES = {
    "unparsable JSON": '{"class_uid": 6003, "time": ',
    "not a JSON object": "[1, 2, 3]",
    "missing time": json.dumps({"class_uid": 6003, "metadata": {"uid": "no-time"}}),
    "time: not a plausible time": json.dumps({"class_uid": 6003, "time": "yesterday-ish"}),
    "class_uid: not a non-negative integer": json.dumps({"class_uid": "api", "time": 1768921951935}),
    "severity_id: not a non-negative integer": json.dumps({"class_uid": 6003, "severity_id": 2.5, "time": 1768921951935}),
}


def test_rejects_are_written_counted_and_explained(ray_session, tmp_path, write_ndjson):
    good = api_events(20, seed=5)
    lines = [json.dumps(e) for e in good[:10]] + list(BAD_LINES.values()) + [json.dumps(e) for e in good[10:]]
    write_ndjson("mixed.ndjson", lines)
    gz = tmp_path / "more.json.gz"  # a JSON array with one non-object element, gzipped
    gz.write_bytes(gzip.compress(json.dumps(api_events(5, seed=6) + ["oops"]).encode()))
    parquet = tmp_path / "bad-time.parquet"
    rows = api_events(4, seed=7)
    rows[2]["time"] = None
    pq.write_table(pa.Table.from_pylist(rows), parquet)

    out = tmp_path / "out"
    archive = read_events([str(tmp_path)], str(out))
    rejects = pl.read_parquet(out / "rejects")
    assert archive.rows_read == 20 + len(BAD_LINES) + 6 + 4
    assert archive.rejected == rejects.height == len(BAD_LINES) + 2
    assert archive.accepted + archive.rejected == archive.rows_read
    assert sum(f.rows for f in archive.families.values()) == archive.accepted
    mixed = rejects.filter(pl.col("source_file").str.ends_with("mixed.ndjson")).sort("row")
    assert mixed["row"].to_list() == list(range(11, 11 + len(BAD_LINES)))  # 1-based line numbers
    for reason, (found, raw) in zip(BAD_LINES, mixed.select("reason", "raw").iter_rows()):
        assert found.startswith(reason), (reason, found)
    assert mixed["raw"][0] == BAD_LINES["unparsable JSON"]
    array_reject = rejects.filter(pl.col("source_file").str.ends_with("more.json.gz"))
    assert array_reject["row"].to_list() == [5] and "not a JSON object" in array_reject["reason"][0]
    parquet_reject = rejects.filter(pl.col("source_file").str.ends_with("bad-time.parquet"))
    assert parquet_reject["row"].to_list() == [2] and parquet_reject["reason"][0] == "missing time"
    assert json.loads(parquet_reject["raw"][0])["metadata"]["uid"] == rows[2]["metadata"]["uid"]


def test_unreadable_inputs_fail_before_any_work(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        resolve_inputs([str(tmp_path / "missing")])
    odd = tmp_path / "events.csv"
    odd.write_text("a,b\n")
    with pytest.raises(InputError, match="unknown format"):
        resolve_inputs([str(odd)])
    with pytest.raises(InputError, match="no file matches"):
        resolve_inputs([str(tmp_path / "*.ndjson")])


def test_directories_and_globs_resolve_recursively(tmp_path, write_ndjson):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.ndjson", "a/b/two.jsonl.gz", "a/_SUCCESS", "a/b/notes.txt"):
        (tmp_path / name).write_bytes(gzip.compress(b"{}") if name.endswith(".gz") else b"{}")
    names = [f.name for f in resolve_inputs([str(tmp_path / "a")])]
    assert names == ["two.jsonl.gz", "one.ndjson"]  # sorted by path: a/b/... before a/one...; markers and .txt skipped
    assert [f.name for f in resolve_inputs([str(tmp_path / "a" / "*.ndjson")])] == ["one.ndjson"]
    assert resolve_inputs([str(tmp_path / "a" / "b" / "two.jsonl.gz")])[0].compressed
