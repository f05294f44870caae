"""Feature extraction: the Ray Data path equals the single-process Polars functions,
window features are right across blocks, and a fitted spec transforms new data."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from ocsf_ray.features import (
    FeatureOptions, extract, fit_family, fit_spec, load_specs, save_specs, write_features,
)
from ocsf_ray.features.spec import MISSING_CODE, UNSEEN_CODE
from ocsf_ray.io import IngestOptions, canonicalize, plan_chunks, read_chunk, read_events, resolve_inputs
from ocsf_shapes import api_events

FILES = 12


@pytest.fixture(scope="module")
def split_archive(ray_session, tmp_path_factory):
    """The same 1,200 events as 12 files (many Ray blocks) and as one in-process frame."""
    root = tmp_path_factory.mktemp("split")
    import json

    for i in range(FILES):
        events = api_events(100, seed=100 + i, start_ms=1_768_900_000_000 + i * 7_000)
        (root / f"part-{i:02d}.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    archive = read_events([str(root)], str(tmp_path_factory.mktemp("out")))
    frames = []
    for chunk in plan_chunks(resolve_inputs([str(root)])):
        flat, _ = read_chunk(chunk)
        frames.append(canonicalize(flat, chunk.file.uri, IngestOptions())[0])
    whole = pl.concat(frames, how="diagonal_relaxed")
    return archive, whole


def distributed_features(archive, spec) -> pl.DataFrame:
    import tempfile

    out = tempfile.mkdtemp()
    assert write_features(archive, "6003_log", spec, out) == FILES * 100
    return pl.read_parquet(f"{out}/features/6003_log/")


def test_distributed_fit_equals_single_process_fit(split_archive):
    archive, whole = split_archive
    assert list(archive.families) == ["6003_log"]
    distributed = fit_family(archive, "6003_log", FeatureOptions())
    local = fit_spec(whole, "6003_log")
    assert distributed == local
    columns = {f.column: f for f in local.categorical}
    assert set(columns["http_request_url_path"].vocabulary) == {
        "/api/users/<id>", "/api/checkout", "/api/search", "/api/orders/<id>/items",
    }
    assert set(columns["message"].vocabulary) == {"Request took <num>ms", "Database timeout after <num>ms"}
    assert columns["message"].templates is not None  # Drain templates, mined on the driver from merged counts
    assert set(columns["message"].vocabulary) <= set(columns["message"].templates.templates)
    assert columns["http_response_code"].vocabulary == ("200", "504")
    assert columns["src_endpoint_ip"].normaliser == "ip"
    assert all(v.endswith(".0/24") for v in columns["src_endpoint_ip"].vocabulary)
    assert set(columns["http_request_user_agent"].vocabulary) == {"python-requests", "Mozilla", "curl"}
    assert local.dropped["trace_id"].startswith("id-like")
    assert local.dropped["metadata_product_name"] == "constant"
    assert "resources" in local.dropped and "resources_count" in local.dropped
    assert [n.column for n in local.numeric] == ["http_response_latency", "src_endpoint_port"]
    assert local.numeric[0].log1p  # latencies are heavy-tailed and non-negative


def test_ray_features_equal_single_process_features(split_archive):
    archive, whole = split_archive
    spec = fit_spec(whole, "6003_log")
    distributed = distributed_features(archive, spec).sort("metadata_uid")
    local = extract(whole, spec).sort("metadata_uid")
    assert distributed.height == local.height == FILES * 100
    assert distributed.columns == local.columns
    assert distributed.equals(local)
    codes = [c for c in local.columns if c.startswith("cat__")]
    assert all(local.schema[c] == pl.Int32 for c in codes)
    assert all(local.schema[c] == pl.Float32 for c in local.columns if c.startswith(("num__", "time__", "win__")))


def test_window_features_match_a_row_by_row_reference(split_archive):
    """Per service: events in the same minute and seconds since the previous event (until
    the next, for the first), recomputed naively over all rows, agree with the distributed features."""
    import math

    archive, whole = split_archive
    spec = fit_spec(whole, "6003_log")
    features = distributed_features(archive, spec)
    rows = sorted(whole.select("metadata_uid", "service", "time").iter_rows(), key=lambda r: (r[2], r[0]))
    per_minute = Counter((service, time // 60_000) for _, service, time in rows)
    times: dict[str, list[int]] = {}
    for _, service, time in rows:
        times.setdefault(service, []).append(time)
    expected = {}
    for uid, service, time in rows:
        series = times[service]
        at = series.index(time)
        # the first event of a service: the gap until its second one
        gap = (time - series[at - 1] if at else series[1] - time) / 1000
        expected[uid] = (math.log1p(per_minute[(service, time // 60_000)]), math.log1p(gap))
    got = {
        uid: (count, gap)
        for uid, count, gap in features.select("metadata_uid", "win__service_events_1m", "win__service_gap_s").iter_rows()
    }
    assert got.keys() == expected.keys()
    for uid, (count, gap) in expected.items():
        assert got[uid][0] == pytest.approx(count, rel=1e-5)
        assert got[uid][1] == pytest.approx(gap, rel=1e-5, abs=1e-5)
    assert len({service for _, service, _ in rows}) == 2  # two services, so the groupby really split them


def test_spec_round_trips_and_transforms_new_data_without_refitting(split_archive, tmp_path):
    _, whole = split_archive
    spec = fit_spec(whole, "6003_log")
    save_specs({"6003_log": spec}, str(tmp_path / "feature_spec.json"))
    loaded = load_specs(str(tmp_path / "feature_spec.json"))["6003_log"]
    assert loaded == spec

    new = whole.head(3).with_columns(
        pl.Series("http_request_http_method", ["BREW", None, "GET"]),
        pl.Series("http_request_url_path", ["/never/seen/before", "/api/users/42", None]),
        pl.Series("http_response_latency", [1e9, None, 5.0]),
    )
    features = extract(new, loaded)
    assert features["cat__http_request_http_method"].to_list()[:2] == [UNSEEN_CODE, MISSING_CODE]
    assert features["cat__http_request_url_path"].to_list()[2] == MISSING_CODE
    assert features["cat__http_request_url_path"].to_list()[0] == UNSEEN_CODE
    assert features["cat__http_request_url_path"].to_list()[1] >= 2  # /api/users/<id> is known
    latency = features["num__http_response_latency"].to_list()
    assert latency[0] == pytest.approx(spec.clip)  # clipped
    assert latency[1] == 0.0  # imputed with the median
    assert "num__http_response_latency__missing" not in features.columns  # never missing at fit time


def test_per_request_identifiers_are_not_categorical():
    """Ids that every event of one request or session repeats pass the distinct-count test
    (a quarter of the rows) yet are new every day: they are dropped, with the reason kept,
    while recurring categories of any cardinality stay."""
    import numpy as np

    rng = np.random.default_rng(3)
    requests = 600  # 4 events each, within 300 ms, spread over a day
    start = np.sort(rng.integers(0, 86_400_000, requests)) + 1_768_900_000_000
    request = np.repeat(np.arange(requests), 4)
    user = rng.integers(0, 60, requests)[request]
    frame = pl.DataFrame({
        "metadata_uid": [f"e{i}" for i in range(4 * requests)],
        "time": start[request] + np.tile([0, 100, 200, 300], requests),
        "unmapped_request_key": [f"r{r:05d}" for r in request],  # no OCSF name: found by its lifetime
        "actor_session_uid": [f"sess-{u:03d}" for u in user],  # one per user all day: found by its name
        "actor_user_uid": [f"user-{u:03d}" for u in user],
        "http_request_http_method": rng.choice(["GET", "POST", "PUT"], 4 * requests),
    })
    spec = fit_spec(frame, "6003_log")
    assert {f.column for f in spec.categorical} == {"actor_user_uid", "http_request_http_method"}
    assert len(next(f for f in spec.categorical if f.column == "actor_user_uid").vocabulary) == 60
    assert spec.dropped["unmapped_request_key"].startswith("id-like: 100% of rows carry a value seen only")
    assert spec.dropped["actor_session_uid"] == "id-like: identifies one session (new values with every session)"
    kept = fit_spec(frame, "6003_log", FeatureOptions(include=("unmapped_request_key",), occurrence_objects=()))
    assert {"unmapped_request_key", "actor_session_uid"} <= {f.column for f in kept.categorical}


def test_distributed_fit_equals_single_process_fit_whatever_the_file_order(ray_session, tmp_path):
    """Two staged files of one family with different columns: the referrer exists only in
    the second (URL paths, recognised by content). The Ray fit gives the spec of the
    single-process fit on all events with the files in either order, and the referrer is
    a URL-normalised feature."""
    import dataclasses
    import json

    first = api_events(150, seed=31)
    second = api_events(150, seed=32, start_ms=1_768_900_300_000)
    pages = ["home", "cart", "search", "help", "offers", "account", "orders"]
    for i, event in enumerate(second):
        event["http_request"]["referrer"] = f"/{pages[i % 7]}/{1000 + i}"
    for name, events in (("a.ndjson", first), ("b.ndjson", second)):
        (tmp_path / name).write_text("\n".join(json.dumps(e) for e in events) + "\n")
    archive = read_events([str(tmp_path / "a.ndjson"), str(tmp_path / "b.ndjson")], str(tmp_path / "out"))
    family = archive.families["6003_log"]
    assert len(family.files) == 2
    whole = pl.concat([pl.read_parquet(p) for p in family.files], how="diagonal_relaxed")
    local = fit_spec(whole, "6003_log")

    for files in (family.files, family.files[::-1]):
        reordered = dataclasses.replace(archive, families={"6003_log": dataclasses.replace(family, files=list(files))})
        assert fit_family(reordered, "6003_log", FeatureOptions()) == local
    referrer = next(f for f in local.categorical if f.column == "http_request_referrer")
    assert referrer.normaliser == "url"
    assert set(referrer.vocabulary) == {f"/{page}/<id>" for page in pages}


def test_an_entity_in_a_burst_is_a_feature_and_a_per_request_id_is_not():
    """A password spray: six hours of ordinary logons (20 users from 20 subnets, each back
    every two hours) and a 3-minute burst of 300 events from one IP against one user. The
    burst's user and IP are values seen only briefly, yet by many events: they stay
    categorical features. A per-request key (3 events each, never again) is dropped."""
    import numpy as np

    ordinary, burst = 60, 100  # requests of 3 events: 180 ordinary rows, 300 in the burst
    start = 1_768_900_000_000
    request_start = np.concatenate([
        start + np.arange(ordinary) * 360_000,  # every 6 minutes for 6 hours
        start + 3 * 3_600_000 + np.arange(burst) * 1_800,  # 100 requests in 3 minutes
    ])
    request = np.repeat(np.arange(ordinary + burst), 3)
    ordinary_request = request < ordinary
    frame = pl.DataFrame({
        "metadata_uid": [f"e{i}" for i in range(len(request))],
        "time": request_start[request] + np.tile([0, 100, 200], ordinary + burst),
        "user_name": np.where(ordinary_request, [f"user{r % 20:02d}" for r in request], "admin"),
        "src_endpoint_ip": np.where(ordinary_request, [f"10.0.{r % 20}.7" for r in request], "203.0.113.9"),
        "unmapped_request_key": [f"req-{r:04d}" for r in request],
    })
    spec = fit_spec(frame, "3002_log")
    features = {f.column: f for f in spec.categorical}
    assert set(features) == {"user_name", "src_endpoint_ip"}
    assert "admin" in features["user_name"].vocabulary
    assert "203.0.113.0/24" in features["src_endpoint_ip"].vocabulary
    assert spec.dropped["unmapped_request_key"].startswith("id-like: 100% of rows carry a value seen only")


def test_datetime_columns_are_not_features():
    """A Datetime-typed column and a `*_dt` datetime-profile string are instants, not
    categories or measures: neither becomes a feature, and extraction still works."""
    from datetime import datetime, timedelta, timezone

    rows = 200
    start = datetime(2026, 1, 20, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "metadata_uid": [f"e{i}" for i in range(rows)],
        "time": [1_768_867_200_000 + i * 600_000 for i in range(rows)],
        "service": ["shop"] * rows,
        "source_kind": ["log"] * rows,
        "unmapped_seen_at": pl.Series([start + timedelta(minutes=10 * i) for i in range(rows)],
                                      dtype=pl.Datetime("ms", "UTC")),
        "start_time_dt": [f"2026-01-2{i % 2}T00:00:00Z" for i in range(rows)],
        "http_request_http_method": ["GET", "POST"] * (rows // 2),
    })
    spec = fit_spec(frame, "6003_log")
    assert [f.column for f in spec.categorical] == ["http_request_http_method"]
    assert spec.numeric == ()
    assert set(extract(frame, spec).columns) >= {"cat__http_request_http_method"}


LOGON = ["User 17 logged in from 10.0.0.3", "User 942 logged in from 10.2.0.9", "User alice logged in from 10.2.0.7"]
DISK = ["Disk /dev/sda1 at 91% capacity", "Disk /dev/nvme0n1 at 45% capacity", "Disk /dev/sdb2 at 77% capacity"]
LOGON_TEMPLATE, DISK_TEMPLATE = "User <*> logged in from <ip>", "Disk <*> at <num>% capacity"


def message_frame(messages: list[str | None]) -> pl.DataFrame:
    rows = len(messages)
    return pl.DataFrame({
        "metadata_uid": [f"e{i}" for i in range(rows)],
        "time": [1_768_900_000_000 + i * 60_000 for i in range(rows)],
        "service": ["shop"] * rows,
        "source_kind": ["log"] * rows,
        "message": pl.Series(messages, dtype=pl.String),
    })


def test_drain_mines_one_template_per_message_shape_and_keeps_it_for_new_values():
    """Masks first (numbers, IPs), then Drain: the logon and disk variants give two
    templates, which new variable values (an unseen user, device, address, percentage)
    match unchanged, through the Polars masks and through drain3's own masking alike."""
    from ocsf_ray.features.normalise import MESSAGE_MASKS, message_template
    from ocsf_ray.features.templates import match_templates, mine_templates, template_miner

    masked = pl.DataFrame({"m": LOGON + DISK}).select(message_template(pl.col("m"))).to_series().to_list()
    state = mine_templates(masked, MESSAGE_MASKS)
    assert state.templates == (LOGON_TEMPLATE, DISK_TEMPLATE)  # in cluster-id order
    assert [m.mask_with for m in state.masking] == ["str", "uuid", "ip", "name", "hex", "num"]

    unseen = ["User bob logged in from 172.16.5.4", "User 3 logged in from 192.168.1.20",
              "Disk /dev/sdz9 at 12% capacity", "Kernel panic: not syncing"]
    new = pl.DataFrame({"m": unseen}).select(message_template(pl.col("m"))).to_series().to_list()
    assert match_templates(state, new) == [LOGON_TEMPLATE, LOGON_TEMPLATE, DISK_TEMPLATE, None]
    assert match_templates(state, masked) == [LOGON_TEMPLATE] * 3 + [DISK_TEMPLATE] * 3
    assert state.templates == (LOGON_TEMPLATE, DISK_TEMPLATE)  # matching changed nothing
    miner = template_miner(state)
    assert miner is template_miner(state)  # built once per state
    assert [c.get_template() if c else None for c in map(miner.match, unseen)] == \
        [LOGON_TEMPLATE, LOGON_TEMPLATE, DISK_TEMPLATE, None]
    with pytest.raises(ValueError):
        mine_templates(masked, MESSAGE_MASKS, sim_th=0.0)


def test_drain_state_round_trips_through_the_spec_json(tmp_path):
    """The templates and Drain parameters are plain JSON in the FeatureSpec; a saved and
    loaded spec maps a new message of a known shape to its template's code, a message of a
    new shape to the unseen code, and a missing one to the missing code. A spec fitted
    before Drain (a "message" feature without templates) still loads and uses the masks."""
    import json

    from ocsf_ray.features.spec import FIRST_CODE, FeatureSpec

    spec = fit_spec(message_frame((LOGON + DISK) * 4), "6003_log")
    feature = next(f for f in spec.categorical if f.column == "message")
    assert set(feature.vocabulary) == {LOGON_TEMPLATE, DISK_TEMPLATE}
    data = json.loads(json.dumps(spec.to_dict()))
    saved = next(c for c in data["categorical"] if c["column"] == "message")["templates"]
    assert saved["templates"] == [LOGON_TEMPLATE, DISK_TEMPLATE]
    assert (saved["depth"], saved["sim_th"], saved["max_children"]) == (4, 0.4, 100)
    assert {"regex_pattern", "mask_with"} == set(saved["masking"][0])
    assert FeatureSpec.from_dict(data) == spec

    save_specs({"6003_log": spec}, str(tmp_path / "feature_spec.json"))
    loaded = load_specs(str(tmp_path / "feature_spec.json"))["6003_log"]
    assert loaded == spec
    new = message_frame(["User carol logged in from 172.16.5.4", "Disk /dev/sdq3 at 5% capacity",
                         "Kernel panic: not syncing", "User 5 logged out", None])
    codes = extract(new, loaded)["cat__message"].to_list()
    vocabulary = next(f for f in loaded.categorical if f.column == "message").vocabulary
    assert codes == [FIRST_CODE + vocabulary.index(LOGON_TEMPLATE), FIRST_CODE + vocabulary.index(DISK_TEMPLATE),
                     UNSEEN_CODE, UNSEEN_CODE, MISSING_CODE]

    old = json.loads(json.dumps(data))
    for c in old["categorical"]:
        c.pop("templates")
        if c["column"] == "message":
            c["vocabulary"] = ["User <num> logged in from <ip>"]
    legacy = FeatureSpec.from_dict(old)
    assert next(f for f in legacy.categorical if f.column == "message").templates is None
    codes = extract(message_frame(["User 8 logged in from 10.9.9.9", "User bob logged in from 10.9.9.9"]), legacy)
    assert codes["cat__message"].to_list() == [FIRST_CODE, UNSEEN_CODE]  # regex masks alone


def test_fitted_message_features_have_template_vocabulary():
    """The fit path: a message column's vocabulary is its Drain templates (most frequent
    first), its id-like and coverage checks see templates (six distinct variable values per
    shape would make the raw text id-like), and the codes of the fitted frame are all known."""
    from ocsf_ray.features.normalise import message_template

    logons = [f"User {chr(97 + i // 26)}{chr(97 + i % 26)} logged in from 10.0.{i % 7}.{i}" for i in range(60)]
    disks = [f"Disk /dev/sd{chr(97 + i)}{i % 4} at {i}% capacity" for i in range(26)]
    frame = message_frame(logons + disks)
    masked = frame.select(message_template(pl.col("message"))).to_series()
    assert masked.n_unique() > 0.5 * frame.height  # the masked text alone is id-like: it would be dropped
    spec = fit_spec(frame, "6003_log")
    feature = next(f for f in spec.categorical if f.column == "message")
    assert feature.normaliser == "message" and feature.templates is not None
    assert feature.vocabulary == (LOGON_TEMPLATE, DISK_TEMPLATE)  # 60 logons, 26 disk reports
    assert set(feature.templates.templates) == {LOGON_TEMPLATE, DISK_TEMPLATE}
    assert (extract(frame, spec)["cat__message"] >= 2).all()
