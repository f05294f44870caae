"""Ingestion settings with their defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestOptions:
    """How raw OCSF records become canonical events.

    service_fields: where an event names its service, first present wins; producers
        disagree (spans say `service.name`, API logs `api.service.name`, app logs only
        `metadata.product.name`, hosts `device.hostname`).
    trace_fields / metric_fields: a non-null value in any of these marks a span / a
        metric sample, whatever its class_uid (the seed sample's spans are 6003).
    config_classes: OCSF classes that record configuration state changes.
    family_by: canonical columns whose values name an event family; everything after
        ingestion learns one model per family.
    """

    service_fields: tuple[str, ...] = (
        "service_name", "service", "api_service_name", "metadata_product_name", "device_hostname",
    )
    trace_fields: tuple[str, ...] = ("span_uid", "span_id", "trace_span_uid")
    metric_fields: tuple[str, ...] = ("metric_name",)
    config_classes: tuple[int, ...] = (5002, 5019)
    family_by: tuple[str, ...] = ("class_uid", "source_kind")
    rows_per_chunk: int = 262_144
