"""Attribute types from the OCSF schema, as the ingestion checks them row by row.

OCSF defines every attribute once, in its dictionary: an attribute called `severity_id`
is an `integer_t` in every object that has one, `time` a `timestamp_t`, `metadata` a
`metadata` object, `cvss` an array of `cvss` objects. The dictionary comes from the
compiled schema that `pydantic-ocsf` ships inside its wheel (no network); the datetime
profile adds `<name>_dt` (`datetime_t`, RFC 3339 text) beside each `timestamp_t`.

A flattened column (`src_endpoint_port`) is typed by the longest `_`-joined suffix of its
name that the dictionary defines (`port` → `port_t` → integer). Columns under `unmapped`
hold producer data the schema does not fix, so they have no schema type.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from dataclasses import dataclass

SCHEMA_PACKAGE = "pydantic-ocsf"
SCHEMA_VERSION = "1.7.0"

# OCSF scalar types by the base type they derive from (`port_t` → `integer_t`, ...).
KINDS = {"integer_t": "int", "long_t": "int", "float_t": "float", "boolean_t": "bool",
         "timestamp_t": "timestamp", "datetime_t": "datetime", "json_t": "json", "string_t": "str"}
UNMAPPED = "unmapped"


@dataclass(frozen=True)
class Attribute:
    """One dictionary attribute: `kind` is int, float, bool, timestamp, datetime, json, str
    or object (an OCSF object type; `generic` when it is the untyped `object`)."""

    name: str
    kind: str
    is_array: bool = False
    generic: bool = False

    @property
    def is_scalar(self) -> bool:
        return self.kind != "object"

    @property
    def is_id(self) -> bool:
        """An integer identifier or enum (`class_uid`, `severity_id`): never negative."""
        return self.kind == "int" and self.name.endswith(("_id", "_uid"))


@functools.cache
def dictionary() -> dict[str, Attribute]:
    """The OCSF attribute dictionary by name, with the datetime profile's `_dt` siblings.

    Raises RuntimeError when the schema package is not installed (a packaging fault)."""
    try:
        dist = importlib.metadata.distribution(SCHEMA_PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(f"the OCSF schema package {SCHEMA_PACKAGE} is not installed") from err
    path = dist.locate_file(f"ocsf/schemas/v{SCHEMA_VERSION.replace('.', '_')}.json")
    with open(path, encoding="utf-8") as handle:
        schema = json.load(handle)["dictionary"]
    bases = {name: t.get("type", name) for name, t in schema["types"]["attributes"].items()}

    def kind(type_name: str) -> str:
        seen = set()
        while type_name not in KINDS and type_name in bases and type_name not in seen:
            seen.add(type_name)
            type_name = bases[type_name]
        return KINDS.get(type_name, "object")

    attributes = {}
    for name, spec in schema["attributes"].items():
        type_name = spec.get("type", "string_t")
        attributes[name] = Attribute(name, kind(type_name), bool(spec.get("is_array")), type_name == "object")
    for name, attribute in list(attributes.items()):
        if attribute.kind == "timestamp":
            attributes.setdefault(f"{name}_dt", Attribute(f"{name}_dt", "datetime"))
    return attributes


def attribute(name: str) -> Attribute | None:
    """The dictionary attribute of a JSON key, or None when OCSF does not define it."""
    return dictionary().get(name)


def column_attribute(column: str) -> Attribute | None:
    """The attribute a flattened column holds: the longest `_`-suffix of its name that the
    dictionary defines (`http_request_url_port` → `port`); None under `unmapped` or when
    no suffix is an OCSF attribute."""
    if column == UNMAPPED or column.startswith(UNMAPPED + "_"):
        return None
    parts = column.split("_")
    for start in range(len(parts)):
        found = dictionary().get("_".join(parts[start:]))
        if found is not None:
            return found
    return None
