"""OCSF building blocks: class constants, nested struct columns and the common envelope.

Every source builds its table from these, so that all shards of a source share one
Arrow schema (explicit types, fixed field order) and read back as one dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .config import OCSF_VERSION


@dataclass(frozen=True)
class OcsfClass:
    uid: int
    name: str
    category_uid: int
    category_name: str
    activities: dict[int, str]


API_ACTIVITY = OcsfClass(6003, "API Activity", 6, "Application Activity",
                         {1: "Create", 2: "Read", 3: "Update", 4: "Delete"})
APPLICATION_ERROR = OcsfClass(6008, "Application Error", 6, "Application Activity", {1: "General Error"})
AUTHENTICATION = OcsfClass(3002, "Authentication", 3, "Identity & Access Management", {1: "Logon"})
CONFIG_STATE_CHANGE = OcsfClass(5019, "Device Config State Change", 5, "Discovery", {1: "Log"})
# OCSF has no metric class; the seed sample's producer uses 99 "Metric", and so do we.
METRIC = OcsfClass(99, "Metric", 6, "Application Activity", {0: "Observe"})

SEVERITY = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}
STATUS = {0: "Unknown", 1: "Success", 2: "Failure"}


def const(value, n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n)


def nulls(n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    return pa.nulls(n, type_)


def i32(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int32))


def i64(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64))


def struct(mask: np.ndarray | None = None, **children: pa.Array) -> pa.StructArray:
    """A struct column; rows where `mask` is True are null objects."""
    return pa.StructArray.from_arrays(
        list(children.values()), names=list(children),
        mask=None if mask is None else pa.array(np.asarray(mask, dtype=bool)),
    )


def lookup(table: dict[int, str], codes: np.ndarray) -> pa.StringArray:
    """Caption strings for enum codes, e.g. severity_id -> severity."""
    keys = np.array(sorted(table))
    return pa.array([table[k] for k in keys]).take(pa.array(np.searchsorted(keys, codes)))


def product(name: pa.Array, vendor: str, version: pa.Array) -> pa.StructArray:
    n = len(name)
    return struct(name=name, vendor_name=const(vendor, n), version=version)


def envelope(
    classes: tuple[OcsfClass, ...],
    which: np.ndarray,
    *,
    uid: pa.Array,
    product: pa.StructArray,
    time: np.ndarray,
    activity_id: np.ndarray,
    severity_id: np.ndarray,
    status_id: np.ndarray,
    message: pa.Array,
    profiles: list[str] | None = None,
) -> dict[str, pa.Array]:
    """Columns every OCSF event carries; `which[i]` picks row i's class from `classes`."""
    n = len(which)
    pick = lambda attr: np.array([getattr(c, attr) for c in classes])[which]  # noqa: E731
    class_uid = pick("uid")
    names = {c.uid: c.name for c in classes}
    categories = {c.category_uid: c.category_name for c in classes}
    activity_names = {c.uid * 100 + a: name for c in classes for a, name in c.activities.items()}
    type_uid = class_uid.astype(np.int64) * 100 + activity_id
    profile_type = pa.list_(pa.string())
    metadata = struct(
        uid=uid,
        version=const(OCSF_VERSION, n),
        product=product,
        profiles=(pa.array([profiles] * n, profile_type) if profiles else nulls(n, profile_type)),
    )
    return {
        "metadata": metadata,
        "time": i64(time),
        "class_uid": i32(class_uid),
        "class_name": lookup(names, class_uid),
        "category_uid": i32(pick("category_uid")),
        "category_name": lookup(categories, pick("category_uid")),
        "activity_id": i32(activity_id),
        "activity_name": lookup(activity_names, type_uid),
        "type_uid": i64(type_uid),
        "severity_id": i32(severity_id),
        "severity": lookup(SEVERITY, severity_id),
        "status_id": i32(status_id),
        "status": lookup(STATUS, status_id),
        "message": message,
    }


def table(columns: dict[str, pa.Array], order: np.ndarray) -> pa.Table:
    """Columns as a table with rows in `order` (sources sort their rows by time)."""
    return pa.table(columns).take(pa.array(order))
