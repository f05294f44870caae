"""Spans as OCSF API Activity (6003) events with the `trace` profile.

One event per span, so the call graph can be mined from parent -> child spans.
An event's `time` is the span's end, when an exporter emits it; a caller's span
thus comes after the callee spans it waited for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .ocsf import API_ACTIVITY, const, envelope, i64, product, struct, table
from .spans import NONE, Spans
from .strings import event_uids, hex128, hex_ids

if TYPE_CHECKING:
    from .plan import Shard, World

SOURCE_CODE = 2


def trace_events(world: World, shard: Shard, spans: Spans):
    """The OCSF table of a shard's spans and their incident labels, in time order."""
    topo = world.topology
    n = len(spans)
    start = np.floor(spans.start).astype(np.int64)
    duration = np.round(spans.duration).astype(np.int64)
    end = start + duration
    order = np.argsort(end, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    failed = spans.failure != NONE
    span_uid = hex_ids(spans.span_id, 16)
    has_parent = spans.parent >= 0
    parent_uid = span_uid.take(pa.array(np.maximum(spans.parent, 0), mask=~has_parent))
    service = pa.array(topo.names).take(pa.array(spans.service))
    operation = pa.array(topo.endpoints.operation).take(pa.array(spans.endpoint))
    columns = envelope(
        (API_ACTIVITY,), np.zeros(n, dtype=np.int64),
        uid=event_uids(world.run_tag, SOURCE_CODE, shard.hour, shard.part, rank),
        product=product(const("opentelemetry-collector", n), "OpenTelemetry", const("0.115.0", n)),
        time=end,
        activity_id=topo.endpoints.activity_id[spans.endpoint],
        severity_id=np.where(failed, 4, 1),
        status_id=np.where(failed, 2, 1),
        message=operation,
        profiles=["trace"],
    )
    columns |= {
        "start_time": i64(start),
        "end_time": i64(end),
        "duration": i64(duration),
        "trace": struct(uid=hex128(spans.trace_hi, spans.trace_lo).take(pa.array(spans.request))),
        "span": struct(
            uid=span_uid, parent_uid=parent_uid, operation=operation,
            status_code=pc.if_else(pa.array(failed), "ERROR", "OK"),
        ),
        "service": struct(name=service, version=world.changes.version_at(spans.service, start)),
        "device": struct(hostname=pa.array(topo.host_names).take(pa.array(spans.host))),
    }
    return table(columns, order), spans.incident[order]
