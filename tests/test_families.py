"""A mixed archive splits into event families with the right source_kind and service."""

from __future__ import annotations

import polars as pl

from ocsf_ray.io import IngestOptions, read_events
from conftest import collect
from ocsf_shapes import mixed_archive


def test_mixed_archive_splits_into_families(ray_session, tmp_path, write_ndjson):
    for name, records in mixed_archive().items():
        write_ndjson(name, records)
    archive = read_events([str(tmp_path)], str(tmp_path / "out"))

    assert {name: fam.rows for name, fam in archive.families.items()} == {
        "6003_log": 3, "6003_trace": 4, "6008_log": 2, "99_metric": 5, "5019_config": 1, "3002_log": 2,
    }
    events = pl.concat(
        [collect(archive.dataset(f)).select(
            "metadata_uid", "source_kind", "service") for f in archive.families],
    )
    by_uid = {uid: (kind, service) for uid, kind, service in events.iter_rows()}
    assert by_uid["api-0"] == ("log", "cart")  # api.service.name
    assert by_uid["span-0"] == ("trace", "cart")  # service.name, span fields
    assert by_uid["err-0"] == ("log", "billing")  # only metadata.product.name
    assert by_uid["m-0"] == ("metric", "node-7")  # only device.hostname
    assert by_uid["cfg-0"] == ("config", "billing")
    assert by_uid["auth-0"] == ("log", "idp")


def test_family_grouping_and_service_order_are_configurable(ray_session, tmp_path, write_ndjson):
    for name, records in mixed_archive().items():
        write_ndjson(name, records)
    options = IngestOptions(family_by=("source_kind",), service_fields=("device_hostname", "service_name"))
    archive = read_events([str(tmp_path)], str(tmp_path / "out"), options)
    assert set(archive.families) == {"log", "trace", "metric", "config"}
    errors = collect(archive.dataset("log"))
    assert set(errors.filter(pl.col("class_uid") == 6008)["service"]) == {"h1"}
