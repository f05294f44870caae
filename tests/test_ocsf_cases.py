"""Other producers' OCSF shapes: the corpus in tests/ocsf_cases/ (one file per kind, with
the canonical rows, rejects and reasons it must give) and a property test that mixes
malformed lines into valid events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsf_ray.io import IngestOptions, plan_chunks, resolve_inputs
from ocsf_ray.io.ingest import stage_chunk

CASES = Path(__file__).parent / "ocsf_cases"


def stage(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, int, int]:
    """(events, rejects, rows read, duplicate uids) of every chunk under `path`, in-process."""
    parts = [stage_chunk(c, IngestOptions()) for c in plan_chunks(resolve_inputs([str(path)]))]
    events = pl.concat([p[0] for p in parts if p[0].height], how="diagonal_relaxed") if any(p[0].height for p in parts) \
        else pl.DataFrame()
    return events, pl.concat([p[1] for p in parts]), sum(p[2] for p in parts), sum(p[3] for p in parts)


def plain(value):
    return value.isoformat(timespec="milliseconds") if isinstance(value, dt.datetime) else value


@pytest.mark.parametrize("expected", sorted(CASES.glob("*.expected.json")), ids=lambda p: p.name.split(".")[0])
def test_each_kind_gives_its_canonical_rows_and_rejects(expected):
    want = json.loads(expected.read_text())
    events, rejects, read, duplicates = stage(expected.with_name(expected.name.replace(".expected.json", ".jsonl")))
    assert events.height == len(want["accepted"]) and rejects.height == len(want["rejects"])
    assert events.height + rejects.height == read
    for row, expect in zip(events.iter_rows(named=True), want["accepted"]):
        assert {c: plain(row.get(c)) for c in expect} == expect
    for (row, reason, raw), (want_row, want_reason) in zip(rejects.sort("row").select("row", "reason", "raw").iter_rows(),
                                                           want["rejects"]):
        assert row == want_row and reason.startswith(want_reason), (row, reason)
        assert raw is not None
    assert duplicates == want.get("duplicates", 0)


def test_files_of_one_name_in_two_folders_get_distinct_surrogates():
    events, _, _, _ = stage(CASES / "same_name")
    assert sorted(events["metadata_uid"]) == [
        "2024-05-01/events.jsonl:1", "2024-05-01/events.jsonl:2", "2024-05-02/events.jsonl:1", "2024-05-02/events.jsonl:2"]


def test_parquet_maps_and_zoned_timestamps(tmp_path):
    """A security-lake `unmapped` map column and a zoned Parquet timestamp."""
    table = pa.table({
        "time": pa.array([dt.datetime(2024, 4, 1, 12, tzinfo=dt.timezone.utc)] * 3, pa.timestamp("us", tz="Europe/Paris")),
        "class_uid": pa.array([4001, 4001, 4001], pa.int32()),
        "unmapped": pa.array([[("site.id", "a"), ("zone", "1")], [("zone", "2")], None], pa.map_(pa.string(), pa.string())),
    })
    path = tmp_path / "lake.parquet"
    pq.write_table(table, path)
    events, rejects, read, _ = stage(path)
    assert (events.height, rejects.height, read) == (3, 0, 3)
    assert events["time"].to_list() == [1711972800000] * 3  # the instant, whatever the zone
    assert events["unmapped_site_id"].to_list() == ["a", None, None]
    assert events["unmapped_zone"].to_list() == ["1", "2", None]


# -- property: malformed lines among valid events ------------------------------------

BAD_KINDS = {
    "unparsable": st.just('{"time": 1700000000000, "class_uid": '),
    "not an object": st.sampled_from(["[1, 2]", '"text"', "42", "null"]),
    "missing time": st.builds(lambda s: json.dumps({"class_uid": 6003, "message": s}), st.text(max_size=8)),
    "time bool": st.just('{"time": true, "class_uid": 6003}'),
    "time huge": st.integers(10**20, 10**25).map(lambda t: json.dumps({"time": t, "class_uid": 6003})),
    "enum object": st.just('{"time": 1700000000000, "class_uid": 6003, "severity_id": {"id": 2}}'),
    "enum text": st.sampled_from(["high", "2.5", "-1"]).map(
        lambda v: json.dumps({"time": 1700000000000, "class_uid": 6003, "severity_id": v})),
    "negative class": st.integers(-10**6, -1).map(lambda c: json.dumps({"time": 1700000000000, "class_uid": c})),
    "port text": st.just('{"time": 1700000000000, "class_uid": 4001, "src_endpoint": {"port": "ssh"}}'),
    "datetime text": st.just('{"time": 1700000000000, "class_uid": 2003, "finding_info": {"created_time_dt": "soon"}}'),
}

_scalar = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=10), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
valid_event = st.fixed_dictionaries({
    "time": st.integers(1_600_000_000_000, 1_800_000_000_000),
    "class_uid": st.sampled_from([6003, 3002, 4001]),
    "severity_id": st.integers(0, 6),
    "message": st.text(max_size=20),
    "user": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8)}),
    "src_endpoint": st.fixed_dictionaries({"port": st.integers(1, 65535)}),
    "unmapped": st.dictionaries(st.sampled_from(["a", "b", "c"]), _scalar, max_size=3),
})


def leaves(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        out.update(leaves(value, name + "_") if isinstance(value, dict) else {name: value})
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid=st.lists(valid_event, min_size=1, max_size=12),
       bad=st.lists(st.one_of(*BAD_KINDS.values()), min_size=1, max_size=6), data=st.data())
def test_valid_events_survive_malformed_lines_unchanged(tmp_path_factory, valid, bad, data):
    lines = [json.dumps({**e, "metadata": {"uid": f"ok-{i}"}}) for i, e in enumerate(valid)]
    for line in bad:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    path = tmp_path_factory.mktemp("mixed") / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    events, rejects, read, _ = stage(path)
    assert read == len(lines)
    assert events.height == len(valid) and rejects.height == len(bad)
    rows = {r["metadata_uid"]: r for r in events.iter_rows(named=True)}
    for i, event in enumerate(valid):
        row = rows[f"ok-{i}"]
        for column, value in leaves(event).items():
            found = row[column]
            if column == "src_endpoint_port":
                assert found == float(value)
            elif isinstance(found, str) and not isinstance(value, str):  # a column of mixed types is text
                assert json.loads(found) == pytest.approx(value, rel=1e-6), (column, value, found)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):  # numbers are float64
                assert found == pytest.approx(value, rel=1e-6) and not isinstance(found, bool), (column, value, found)
            else:
                assert found == value and type(found) is type(value), (column, value, found)


BAD_LINES = [  # ten kinds of malformed line
    '{"time": 1768921951935, "class_uid": ', "[1, 2]", json.dumps({"class_uid": 6003, "message": "no time"}),
    '{"time": true, "class_uid": 6003}', '{"time": 17137957280870000000000, "class_uid": 6003}',
    '{"time": 1768921951935, "class_uid": 6003, "severity_id": {"id": 2}}',
    '{"time": 1768921951935, "class_uid": 6003, "severity_id": "high"}', '{"time": 1768921951935, "class_uid": -7}',
    '{"time": 1768921951935, "class_uid": 6003, "src_endpoint": {"port": "ssh"}}',
    '{"time": 1768921951935, "class_uid": 6003, "start_time_dt": "soon"}',
]


def test_featurize_accepts_every_good_event_whole_and_rejects_each_bad_line(ray_session, tmp_path):
    from typer.testing import CliRunner

    from ocsf_ray.cli import app
    from ocsf_shapes import api_events

    good = [json.dumps(e) for e in api_events(1000, seed=14)]
    bad = [BAD_LINES[i % len(BAD_LINES)] for i in range(24)]
    lines = list(good)
    for i, line in enumerate(bad):
        lines.insert(17 + i * 41, line)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "mixed.jsonl").write_text("\n".join(good) + "\n")

    result = CliRunner().invoke(app, ["featurize", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rejects = pl.read_parquet(tmp_path / "out" / "rejects")
    assert rejects.height == 24 and sorted(rejects["raw"]) == sorted(bad)
    staged = pl.read_parquet(tmp_path / "out" / "canonical" / "*" / "*.parquet")
    alone, no_rejects, _, _ = stage(tmp_path / "good")
    assert no_rejects.height == 0 and staged.height == alone.height == 1000
    alone = alone.drop("metadata_uid")
    staged = staged.select(alone.columns).sort(alone.columns, nulls_last=True)
    assert staged.equals(alone.sort(alone.columns, nulls_last=True))  # every field of every good event, unchanged
